"""Parkour settings (reference §2.3, §2.9) and the resolution of `task=` into terrain ids and a setting.

A setting fixes the difficulty of each of the 10 rows of every terrain column and whether the terrain
curriculum runs:

* `parkour_easy`: every tile at difficulty 0; rows differ only by their seed. Envs go round-robin over rows.
* `parkour_hard`: row i at difficulty i/9; envs spread evenly (round-robin) over rows; no curriculum.
* `parkour_hard_cl`: the hard terrain with the curriculum: each env starts on a random row in [0, 2] and moves
  up or down by the goals it reached (rewards.curriculum_update).
* `parkour_flat`: the flat pre-training stage. Upstream trains it as `final_go1_easy task_id=[20]`, i.e. one task
  (flat) whose one-hot has a single entry; here likewise one block, terrain 20, all envs.

The paper settings train on terrain ids 0..20 (21 tasks, flat included, as upstream's exec scripts). Any subset of
terrain ids or names can be given instead, with `setting="easy" | "hard" | "hard_cl"` (default "hard").
"""

from __future__ import annotations

from dataclasses import dataclass

from mtbench.envs.parkour.terrains import FLAT, TERRAIN_NAMES

N_ROWS = 10
"""Difficulty levels (rows) per terrain column (§2.2)."""
MAX_INIT_LEVEL = 2
"""With the curriculum, envs start on a random row in [0, MAX_INIT_LEVEL] (`max_init_terrain_level`)."""
PAPER_TASKS = tuple(range(len(TERRAIN_NAMES)))
"""Terrain ids 0..20: the 20 obstacle courses and flat, as the multi-task exec scripts train."""


@dataclass(frozen=True)
class Setting:
    name: str
    difficulties: tuple[float, ...]
    curriculum: bool
    default_tasks: tuple[int, ...] = PAPER_TASKS


_EASY = (0.0,) * N_ROWS
_HARD = tuple(i / (N_ROWS - 1) for i in range(N_ROWS))
SETTINGS: dict[str, Setting] = {
    "parkour_easy": Setting("parkour_easy", _EASY, False),
    "parkour_hard": Setting("parkour_hard", _HARD, False),
    "parkour_hard_cl": Setting("parkour_hard_cl", _HARD, True),
    "parkour_flat": Setting("parkour_flat", _EASY, False, (FLAT,)),
}
DEFAULT_SUBSET_SETTING = "parkour_hard"


def is_parkour_task(task) -> bool:
    """True when `task` is a `parkour_*` name: what the suite registry (mtbench/envs/suites.py) dispatches on, so
    that a misspelt setting gets the parkour error naming the settings."""
    return isinstance(task, str) and task.lower().startswith("parkour_")


def _setting(name: str) -> Setting:
    key = name.lower()
    if not key.startswith("parkour_"):
        key = "parkour_" + key
    if key not in SETTINGS:
        raise ValueError(
            f"unknown parkour setting {name!r}; choose one of {sorted(SETTINGS)} (or easy / hard / hard_cl / flat)"
        )
    return SETTINGS[key]


def terrain_id(t) -> int:
    """A terrain id (0..20) from an id, a digit string or a terrain name; ValueError naming the valid ones."""
    if isinstance(t, bool):
        raise ValueError(f"terrain {t!r} is not a terrain id or name")
    if isinstance(t, int) or (hasattr(t, "__index__") and not isinstance(t, str)):
        tid = int(t)
        if not 0 <= tid < len(TERRAIN_NAMES):
            raise ValueError(
                f"unknown terrain id {tid}; parkour terrain ids are 0..{len(TERRAIN_NAMES) - 1} "
                f"(0 {TERRAIN_NAMES[0]} ... 20 flat)"
            )
        return tid
    if isinstance(t, str):
        s = t.strip()
        if s.lstrip("-").isdigit():
            return terrain_id(int(s))
        if s in TERRAIN_NAMES:
            return TERRAIN_NAMES.index(s)
        raise ValueError(f"unknown terrain {t!r}; use an id 0..{len(TERRAIN_NAMES) - 1} or one of {TERRAIN_NAMES}")
    raise ValueError(f"terrain {t!r} is not a terrain id or name")


def resolve(task, setting: str | None = None) -> tuple[Setting, list[int]]:
    """(setting, terrain ids) from `task`: a setting name ("parkour_hard", ...), or terrain ids / names (an int, a
    name, or a list of them) with `setting` ("easy" | "hard" | "hard_cl"; default "hard")."""
    if isinstance(task, str) and task.lower().startswith("parkour_"):
        st = _setting(task)
        if setting is not None and _setting(setting) != st:
            raise ValueError(f"task={task!r} is itself a setting; drop setting={setting!r} or pass terrain ids as task")
        return st, list(st.default_tasks)
    st = _setting(setting or DEFAULT_SUBSET_SETTING)
    items = list(task) if isinstance(task, (list, tuple)) else [task]
    if not items:
        raise ValueError("task is an empty list; give terrain ids 0..20 or a setting such as 'parkour_hard'")
    ids = [terrain_id(t) for t in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"terrain ids {ids} repeat; list each terrain once (use task_counts for more envs)")
    return st, ids
