"""MTBench on MuJoCo: massively parallel multi-task RL benchmark (Meta-World and Go1 parkour on MuJoCo C and
MuJoCo Warp)."""

from __future__ import annotations

import os
import sys

# MuJoCo picks its GL backend at import: a headless Linux box (no X display) renders offscreen via EGL
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from mtbench.envs.core import MultiTaskVecEnv  # noqa: E402

__version__ = "0.1.0"


def make(
    task: str | int | list = "mt10",
    num_envs: int | None = None,
    device: str | None = None,
    backend: str = "auto",
    seed: int = 0,
    suite: str | None = None,
    **options,
) -> MultiTaskVecEnv:
    """Build a multi-task vector env of the suite that owns `task` (mtbench/envs/suites.py): `MetaWorldVecEnv`
    (Meta-World) or `ParkourVecEnv` (Go1 parkour), both `MultiTaskVecEnv`s.

    task: Meta-World: "mt10" | "mt25" | "mt50", a task name ("reach-v3" or MTBench's "reach"), an MTBench id
      (0..49), or a list. Parkour: "parkour_easy" | "parkour_hard" | "parkour_hard_cl" | "parkour_flat", or
      terrain ids / names (0..20) with suite="parkour" (ids alone would mean Meta-World tasks).
    num_envs: total envs (default: one per task), split evenly unless `task_counts` is given.
    device: "cpu" or "cuda[:i]" (default: CUDA if torch sees it, else CPU). backend: "auto" | "cpu" | "warp".
    suite: None / "auto" (from the task) | "metaworld" | "parkour".
    options (Meta-World): task_counts, episode_length (150), goal_mode ("rand" | "fixed" | "metaworld"),
      reward_scale (1.0), terminate_on_success (False), random_init_progress (False), check_actions (True), nthread.
    options (parkour): see `mtbench.envs.parkour.ParkourVecEnv` (setting, episode_length 2000, domain_rand, ...).
    options (both): nconmax, njmax: MuJoCo Warp's contact slots and constraint rows per world, for every scene
      (default None: each scene's measured need x 2, mtbench/envs/*/capacity.py). `env.check_sim()` raises when
      they overflowed; call it once per training iteration, not per step (it syncs with the device).
    """
    from mtbench.envs.suites import suite_of

    env_class = suite_of(task, suite).env_class
    return env_class(task=task, num_envs=num_envs, device=device, backend=backend, seed=seed, **options)


def _register_gymnasium_ids() -> None:
    """`gymnasium.make_vec("MTBench/MT10", ...)` and the other ids (mtbench/envs/gym_registration.py) work after
    `import mtbench`: gymnasium 1.x loads no plugin entry points."""
    from mtbench.envs.gym_registration import register_envs

    register_envs()


_register_gymnasium_ids()

__all__ = ["MultiTaskVecEnv", "make"]
