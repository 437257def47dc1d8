"""Record reference Meta-World rollouts (any v3 task; MT10 by default) from the real package into an ``.npz``.

Our ``mtbench`` package re-implements Meta-World on a newer MuJoCo where Meta-World's own env classes
no longer run, so the only way to check our observations, rewards and success flags against the
original is to record them once from the original code and compare offline.  This script does that.

Usage (any python will do; numpy is not needed outside the reference venv)::

    python tools/record_reference.py [--out tests/data/reference_mt10.npz] [--tasks TASK ...] [--steps 150]
    python tools/record_reference.py --tasks coffee-pull-v3 coffee-push-v3 --out tests/data/reference_coffee.npz

The tests load every ``tests/data/reference_*.npz`` and merge them (each task in one file only).

It (re)creates the isolated virtualenv ``.venv-ref`` with the pinned Meta-World release if needed and
then re-executes itself inside that venv (``--inside``), where the recording happens.

File layout (every key is a plain array, so ``np.load`` works without ``allow_pickle``):

* ``meta/*``: versions, seeds, step budget and the list of recorded tasks.
* ``{task}/{field}``: one row per recorded step, concatenated over the task's episodes.  Row 0 of
  each episode is the state returned by ``env.reset()`` (``is_reset`` True, zero action, NaN reward).
  ``{task}/episode`` / ``{task}/step_episode`` map rows to episodes, ``{task}/t`` is the step index.
* ``{task}/body_pos``, ``{task}/site_pos``: the model's ``body_pos`` / ``site_pos`` per episode
  (Meta-World moves drawers, doors, windows, boxes by editing the model at reset).
* ``{task}/attr/{name}``: per-step snapshots of the instance attributes the task's reward reads.
* ``{task}/info/{name}``: the numeric entries of the ``info`` dict returned by ``env.step``.
* ``{task}/goals`` / ``{task}/goals_seed7``: the 50 ``rand_vec`` s of ``MT1(task, seed=42|7)``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy only exists inside the reference venv; keep the launcher stdlib-only.
    import numpy as np

METAWORLD_VERSION = "3.1.1"
"""Pinned Meta-World release whose behaviour is the reference."""
REFERENCE_REQUIREMENTS: tuple[str, ...] = (f"metaworld=={METAWORLD_VERSION}", "packaging")
"""What the reference venv needs: ``packaging`` is imported by gymnasium's MuJoCo envs but is not a
declared dependency, so a bare ``pip install metaworld`` yields a venv where ``import metaworld`` fails."""

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = REPO_ROOT / ".venv-ref"
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "reference_mt10.npz"

MT10_TASKS: tuple[str, ...] = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)

GOAL_SEED = 42
"""Seed of ``metaworld.MT1`` whose ``train_tasks`` provide the recorded goals."""
ALT_GOAL_SEED = 7
"""Second benchmark seed whose goal list is stored too, to test seed-dependent goal sampling."""
ACTION_SEED = 12345
"""Base seed of the numpy generator used for action noise and random actions."""
NOISE_STD = 0.1

EPISODES: tuple[tuple[str, int], ...] = (
    ("expert", 0),
    ("expert_noise", 1),
    ("random", 2),
)
"""(episode kind, index into ``train_tasks``) recorded for every task, in this order."""

COMMON_ATTRS: tuple[str, ...] = ("TARGET_RADIUS", "max_path_length", "curr_path_length", "action_scale")
"""Attributes every Meta-World env reads in ``step``/``evaluate_state``."""

TASK_ATTRS: dict[str, tuple[str, ...]] = {
    "reach-v3": ("maxReachDist",),
    "push-v3": ("objHeight", "heightTarget", "maxPushDist", "maxPlacingDist"),
    "pick-place-v3": ("objHeight", "heightTarget", "maxPushDist", "maxPlacingDist"),
    "door-open-v3": ("objHeight", "maxPullDist", "target_reward", "door_qpos_adr", "door_qvel_adr"),
    "drawer-open-v3": ("maxDist", "target_reward"),
    "drawer-close-v3": ("maxDist", "target_reward"),
    "button-press-topdown-v3": ("_obj_to_target_init", "maxDist"),
    "peg-insert-side-v3": ("peg_head_pos_init", "objHeight", "heightTarget", "maxPlacingDist", "liftThresh"),
    "window-open-v3": ("window_handle_pos_init", "maxPullDist", "target_reward"),
    "window-close-v3": ("window_handle_pos_init", "maxPullDist", "target_reward", "liftThresh"),
}
"""Task-specific numeric attributes read from ``self`` by ``compute_reward``/``evaluate_state``
(found by reading each env file in ``metaworld/envs``); the v1 reward's ones are included as well.
Tasks not listed here get every small numeric instance attribute (see ``discover_attrs``)."""

EPISODE_ATTRS: dict[str, str] = {
    "obj_init_pos": "obj_init_pos",
    "target_pos": "_target_pos",
    "init_tcp": "init_tcp",
    "init_left_pad": "init_left_pad",
    "init_right_pad": "init_right_pad",
    "hand_init_pos": "hand_init_pos",
    "rand_vec": "_last_rand_vec",
}
"""Stored key -> env attribute for the per-episode quantities the shared reward helpers read."""

PHYSICS_FIELDS: tuple[str, ...] = ("qpos", "qvel", "mocap_pos", "mocap_quat", "qacc_warmstart", "ctrl")
"""``MjData`` fields that, with ``time`` and the model edits, pin down the simulator state."""


# --------------------------------------------------------------------------------------------------
# Launcher (runs under any python, stdlib only)
# --------------------------------------------------------------------------------------------------


def venv_python(venv_dir: Path) -> Path:
    """Path of the venv's interpreter; a function so the Windows layout is handled in one place."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def installed_metaworld_version(python: Path) -> str | None:
    """Version of Meta-World importable by ``python``, or None, to decide whether setup is needed.

    Runs from the filesystem root so that nothing in the repository can shadow the installed package.
    """
    if not python.exists():
        return None
    probe = "import importlib.metadata as m, metaworld; print(m.version('metaworld'))"
    result = subprocess.run([str(python), "-c", probe], check=False, capture_output=True, text=True, cwd=os.sep)
    if result.returncode != 0:
        return None
    return result.stdout.strip().splitlines()[-1]


def ensure_reference_venv(venv_dir: Path) -> Path:
    """Create ``venv_dir`` with the pinned Meta-World unless it is already usable; return its python.

    The reference must run in its own venv because Meta-World pins an older MuJoCo than our project.
    """
    python = venv_python(venv_dir)
    version = installed_metaworld_version(python)
    if version == METAWORLD_VERSION:
        return python
    if not python.exists():
        print(f"[record_reference] creating {venv_dir}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    print(f"[record_reference] installing {' '.join(REFERENCE_REQUIREMENTS)} into {venv_dir}", flush=True)
    subprocess.run([str(python), "-m", "pip", "install", *REFERENCE_REQUIREMENTS], check=True)
    version = installed_metaworld_version(python)
    if version != METAWORLD_VERSION:
        raise RuntimeError(f"{venv_dir}: metaworld {METAWORLD_VERSION} still not importable (got {version})")
    return python


def reexec_inside(python: Path, argv: list[str]) -> None:
    """Replace this process by the same script running in the reference venv (never returns)."""
    script = str(Path(__file__).resolve())
    os.execv(str(python), [str(python), script, *argv, "--inside"])


# --------------------------------------------------------------------------------------------------
# Recorder (runs inside the reference venv)
# --------------------------------------------------------------------------------------------------


def decode_rand_vecs(tasks: list[Any]) -> np.ndarray:
    """Stack the ``rand_vec`` of each pickled Meta-World ``Task``, in benchmark order."""
    import numpy as np

    return np.stack([np.asarray(pickle.loads(task.data)["rand_vec"], dtype=np.float64) for task in tasks])


def model_names(model: Any, obj_type: Any, count: int) -> np.ndarray:
    """Names of all bodies/sites/geoms, so tests can index arrays by name instead of magic ids."""
    import mujoco
    import numpy as np

    return np.array([mujoco.mj_id2name(model, obj_type, i) or "" for i in range(count)])


def as_float_array(value: Any) -> np.ndarray:
    """Copy an attribute to a float64 array; copying matters because some attributes alias MjData."""
    import numpy as np

    return np.array(value, dtype=np.float64, copy=True)


def discover_attrs(env: Any) -> tuple[str, ...]:
    """Every numeric instance attribute of a freshly reset env with at most 16 entries: a superset of
    what a task's reward can read from ``self``, so a new task needs no hand-made list."""
    import numpy as np

    skip = set(COMMON_ATTRS) | set(EPISODE_ATTRS.values()) | {"np_random", "render_mode", "camera_id"}
    names = []
    for name, value in sorted(vars(env).items()):
        if name in skip or name.startswith("__"):
            continue
        if isinstance(value, (bool, int, float, np.number)) or (
            isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and 0 < value.size <= 16
        ):
            names.append(name)
    return tuple(names)


def snapshot_step(env: Any, task: str) -> dict[str, np.ndarray]:
    """Everything stored for one row besides obs/action/reward: physics state and reward inputs."""
    import numpy as np

    data = env.data
    row: dict[str, np.ndarray] = {field: np.array(getattr(data, field), copy=True) for field in PHYSICS_FIELDS}
    row["time"] = np.float64(data.time)
    for key, attr in EPISODE_ATTRS.items():
        row[key] = as_float_array(getattr(env, attr))
    # Current values next to the "init" ones make aliasing (views into MjData) visible in the data.
    row["tcp_center"] = as_float_array(env.tcp_center)
    row["leftpad"] = as_float_array(env.data.body("leftpad").xpos)
    row["rightpad"] = as_float_array(env.data.body("rightpad").xpos)
    for name in COMMON_ATTRS + TASK_ATTRS[task]:
        if hasattr(env, name):
            row[f"attr/{name}"] = as_float_array(getattr(env, name))
    return row


def pick_action(kind: str, policy: Any, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Choose one step's action for an episode of the given kind (the float32 array passed to ``step``)."""
    import numpy as np

    if kind == "random":
        return rng.uniform(-1.0, 1.0, size=4).astype(np.float32)
    action = np.asarray(policy.get_action(obs), dtype=np.float64)
    if kind == "expert_noise":
        action = np.clip(action + rng.normal(0.0, NOISE_STD, size=4), -1.0, 1.0)
    return action.astype(np.float32)


def record_episode(
    env: Any, task: str, policy: Any, kind: str, steps: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Reset ``env`` and roll out ``steps`` steps, returning one dict per row (reset row included)."""
    import numpy as np

    obs, _ = env.reset()
    row = snapshot_step(env, task)
    row.update(
        obs=np.array(obs, dtype=np.float64),
        action=np.zeros(4, dtype=np.float32),
        reward=np.float64(np.nan),
        success=False,
        truncated=False,
        is_reset=True,
        info={},
    )
    rows = [row]
    for _ in range(steps):
        action = pick_action(kind, policy, obs, rng)
        obs, reward, _, truncated, info = env.step(action)
        row = snapshot_step(env, task)
        row.update(
            obs=np.array(obs, dtype=np.float64),
            action=action,
            reward=np.float64(reward),
            success=bool(info["success"]),
            truncated=bool(truncated),
            is_reset=False,
            info={k: float(v) for k, v in info.items()},
        )
        rows.append(row)
        if truncated:  # Meta-World raises on a step past max_path_length.
            break
    return rows


def stack_rows(task: str, rows: list[dict[str, Any]], episode_of_row: list[int]) -> dict[str, np.ndarray]:
    """Turn per-row dicts into ``{task}/{field}`` arrays with the step on the leading axis."""
    import numpy as np

    out: dict[str, np.ndarray] = {}
    fields = [key for key in rows[0] if key != "info"]
    for field in fields:
        out[f"{task}/{field}"] = np.stack([np.asarray(row[field]) for row in rows])
    out[f"{task}/reward"] = out[f"{task}/reward"].astype(np.float64)
    out[f"{task}/success"] = out[f"{task}/success"].astype(bool)
    info_keys = sorted({key for row in rows for key in row["info"]})
    for key in info_keys:
        out[f"{task}/info/{key}"] = np.array([row["info"].get(key, np.nan) for row in rows], dtype=np.float64)
    episode = np.asarray(episode_of_row, dtype=np.int64)
    out[f"{task}/episode"] = episode
    out[f"{task}/step_episode"] = episode
    starts = np.flatnonzero(out[f"{task}/is_reset"])
    out[f"{task}/t"] = np.arange(len(rows)) - starts[episode]
    return out


def record_task(task: str, steps: int, task_index: int) -> dict[str, np.ndarray]:
    """Record all episodes of one task with a benchmark-constructed env, plus its goal lists."""
    import metaworld
    import mujoco
    import numpy as np
    from metaworld.policies import ENV_POLICY_MAP

    benchmark = metaworld.MT1(task, seed=GOAL_SEED)
    env = benchmark.train_classes[task]()
    policy = ENV_POLICY_MAP[task]()
    if task not in TASK_ATTRS:
        env.set_task(benchmark.train_tasks[0])
        env.reset()
        TASK_ATTRS[task] = discover_attrs(env)
    model = env.model
    out: dict[str, np.ndarray] = {
        f"{task}/body_pos_default": np.array(model.body_pos, copy=True),
        f"{task}/site_pos_default": np.array(model.site_pos, copy=True),
        f"{task}/body_names": model_names(model, mujoco.mjtObj.mjOBJ_BODY, model.nbody),
        f"{task}/site_names": model_names(model, mujoco.mjtObj.mjOBJ_SITE, model.nsite),
        f"{task}/geom_names": model_names(model, mujoco.mjtObj.mjOBJ_GEOM, model.ngeom),
        f"{task}/joint_names": model_names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt),
        f"{task}/goals": decode_rand_vecs(benchmark.train_tasks),
        f"{task}/goals_seed7": decode_rand_vecs(metaworld.MT1(task, seed=ALT_GOAL_SEED).train_tasks),
        f"{task}/env_class": np.array(type(env).__name__),
        f"{task}/policy_class": np.array(type(policy).__name__),
        f"{task}/episode_kind": np.array([kind for kind, _ in EPISODES]),
        f"{task}/episode_goal_index": np.array([goal for _, goal in EPISODES], dtype=np.int64),
    }
    rows: list[dict[str, Any]] = []
    episode_of_row: list[int] = []
    body_pos, site_pos = [], []
    for episode, (kind, goal_index) in enumerate(EPISODES):
        env.set_task(benchmark.train_tasks[goal_index])
        rng = np.random.default_rng([ACTION_SEED, task_index, episode])
        episode_rows = record_episode(env, task, policy, kind, steps, rng)
        # Model edits happen inside reset() only, so reading them after the rollout is equivalent.
        body_pos.append(np.array(model.body_pos, copy=True))
        site_pos.append(np.array(model.site_pos, copy=True))
        rows += episode_rows
        episode_of_row += [episode] * len(episode_rows)
        successes = sum(bool(row["success"]) for row in episode_rows)
        print(f"  {task:26s} {kind:13s} goal={goal_index} rows={len(episode_rows)} success_steps={successes}")
    out.update(stack_rows(task, rows, episode_of_row))
    out[f"{task}/body_pos"] = np.stack(body_pos)
    out[f"{task}/site_pos"] = np.stack(site_pos)
    # Bounds used by Meta-World to clip step() observations and to clip the mocap target.
    out[f"{task}/obs_low"] = np.asarray(env.sawyer_observation_space.low, dtype=np.float64)
    out[f"{task}/obs_high"] = np.asarray(env.sawyer_observation_space.high, dtype=np.float64)
    out[f"{task}/mocap_low"] = np.asarray(env.mocap_low, dtype=np.float64)
    out[f"{task}/mocap_high"] = np.asarray(env.mocap_high, dtype=np.float64)
    env.close()
    return out


def metadata(tasks: list[str], steps: int) -> dict[str, np.ndarray]:
    """Versions and settings, so a test can tell which reference it compares against."""
    import importlib.metadata

    import mujoco
    import numpy as np

    return {
        "meta/metaworld_version": np.array(importlib.metadata.version("metaworld")),
        "meta/mujoco_version": np.array(mujoco.__version__),
        "meta/gymnasium_version": np.array(importlib.metadata.version("gymnasium")),
        "meta/numpy_version": np.array(np.__version__),
        "meta/steps": np.array(steps, dtype=np.int64),
        "meta/tasks": np.array(tasks),
        "meta/goal_seed": np.array(GOAL_SEED, dtype=np.int64),
        "meta/alt_goal_seed": np.array(ALT_GOAL_SEED, dtype=np.int64),
        "meta/action_seed": np.array(ACTION_SEED, dtype=np.int64),
        "meta/noise_std": np.array(NOISE_STD, dtype=np.float64),
        "meta/episode_kind": np.array([kind for kind, _ in EPISODES]),
    }


def record(out_path: Path, tasks: list[str], steps: int) -> None:
    """Record every requested task and write one compressed ``.npz``."""
    import importlib.metadata

    import numpy as np

    installed = importlib.metadata.version("metaworld")
    if installed != METAWORLD_VERSION:
        warnings.warn(f"recording with metaworld {installed}, expected {METAWORLD_VERSION}", stacklevel=1)
    # The scripted policies warn whenever their P-gain saturates; that is expected and only noise here.
    warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    unknown = sorted(set(tasks) - set(ALL_V3_ENVIRONMENTS))
    if unknown:
        raise SystemExit(f"unknown tasks {unknown}; valid: {sorted(ALL_V3_ENVIRONMENTS)}")
    arrays = metadata(tasks, steps)
    for task in tasks:
        # MT10 keeps its historical action seeds; other tasks are seeded by their place in Meta-World's list
        index = MT10_TASKS.index(task) if task in MT10_TASKS else 100 + list(ALL_V3_ENVIRONMENTS).index(task)
        arrays.update(record_task(task, steps, index))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **arrays)
    size_mb = out_path.stat().st_size / 1e6
    print(f"[record_reference] wrote {out_path} ({len(arrays)} arrays, {size_mb:.2f} MB)")


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command line; ``--inside`` is internal and marks the re-executed process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    parser.add_argument("--tasks", nargs="+", default=list(MT10_TASKS), metavar="TASK", help="Meta-World v3 names")
    parser.add_argument("--steps", type=int, default=150, help="env steps per episode (after reset)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Launch in the reference venv, or record when already there."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if sorted(args.tasks) != sorted(MT10_TASKS) and args.out == DEFAULT_OUT:
        raise SystemExit("give --out tests/data/reference_<group>.npz when recording tasks other than MT10")
    if not args.inside:
        python = ensure_reference_venv(VENV_DIR)
        # Resolve --out now so the re-executed process does not depend on how the path was spelled.
        forwarded = [a for a in argv if a != "--inside"]
        if "--out" not in forwarded:
            forwarded += ["--out", str(args.out.resolve())]
        reexec_inside(python, forwarded)
    record(args.out.resolve(), list(args.tasks), args.steps)


if __name__ == "__main__":
    main()
