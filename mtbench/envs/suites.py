"""The suite registry: which env class serves a task, and the per-suite defaults the runner and the command line
need (evaluation episodes and options, config names), in one place instead of string checks spread over them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mtbench.envs.core import MultiTaskVecEnv
from mtbench.envs.metaworld.env import MetaWorldVecEnv
from mtbench.envs.metaworld.registry import METAWORLD_NAMES, task_class
from mtbench.envs.metaworld.registry import resolve as metaworld_resolve
from mtbench.envs.parkour.env import ParkourVecEnv
from mtbench.envs.parkour.settings import is_parkour_task
from mtbench.envs.parkour.settings import resolve as parkour_resolve
from mtbench.envs.parkour.terrains import TERRAIN_NAMES


@dataclass(frozen=True)
class Suite:
    """One task suite: its env class, which tasks it owns, and its defaults."""

    name: str
    env_class: type[MultiTaskVecEnv]
    is_task: Callable[[object], bool]
    """True when a task given without `suite=` belongs to this suite."""
    resolve: Callable[..., tuple[list[int], list[str]]]
    """`resolve(task, setting=None) -> (ids, names)`; ValueError naming the valid tasks."""
    eval_episodes: int
    """Default evaluation episodes per task."""
    eval_options: Mapping[str, object]
    """Env options of evaluation envs: whole episodes, fresh starts."""
    default_train: str | None = None
    """The `train=` config the suite defaults to (None: the runner's own default)."""
    default_network: str | None = None
    """The `network=` config the suite defaults to (None: the runner's own default)."""
    options_key: str = "env"
    """The training config's section holding this suite's env options (`env.*` or `parkour.*`)."""
    setting_of: Callable[..., str | None] = lambda task, setting=None: None
    """`setting_of(task, setting=None)`: the named setting `task` runs in (parkour: "parkour_hard", ...; None for a
    suite without settings), the key of a train profile's per-setting `max_iterations` (train/ppo_go1.yaml)."""


def _metaworld_resolve(task, setting: str | None = None) -> tuple[list[int], list[str]]:
    if setting is not None:
        raise ValueError(f"setting={setting!r} is a parkour option; Meta-World tasks take none")
    ids = metaworld_resolve(task)
    for i in ids:
        task_class(i)  # NotImplementedError for a task not ported
    return ids, [METAWORLD_NAMES[i] for i in ids]


def _parkour_resolve(task, setting: str | None = None) -> tuple[list[int], list[str]]:
    _, ids = parkour_resolve(task, setting)
    return ids, [TERRAIN_NAMES[i] for i in ids]


def _parkour_setting(task, setting: str | None = None) -> str:
    return parkour_resolve(task, setting)[0].name


SUITES: dict[str, Suite] = {
    "metaworld": Suite(
        name="metaworld",
        env_class=MetaWorldVecEnv,
        is_task=lambda task: not is_parkour_task(task),
        resolve=_metaworld_resolve,
        eval_episodes=50,  # Meta-World's 50 goals per task
        eval_options=MappingProxyType(dict(goal_mode="rand", terminate_on_success=False, random_init_progress=False)),
    ),
    "parkour": Suite(
        name="parkour",
        env_class=ParkourVecEnv,
        is_task=is_parkour_task,
        resolve=_parkour_resolve,
        eval_episodes=100,  # per terrain type over its 10 rows: the paper's 200 terrains x 10 runs
        # every row (difficulty) in turn, even after a curriculum run
        eval_options=MappingProxyType(dict(curriculum=False, random_init_progress=False)),
        default_train="ppo_go1",
        default_network="mlp_go1",
        options_key="parkour",
        setting_of=_parkour_setting,
    ),
}


def suite_of(task, suite: str | None = None) -> Suite:
    """The suite named `suite` ("auto" or None: the one that owns `task`); ValueError naming the choices."""
    if suite is None or suite == "auto":
        return next(s for s in SUITES.values() if s.is_task(task))
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {['auto', *SUITES]}")
    return SUITES[suite]
