"""MTBench on MuJoCo: massively parallel multi-task RL benchmark (Meta-World on MuJoCo C and MuJoCo Warp)."""

from __future__ import annotations

import os
import sys

# MuJoCo picks its GL backend at import: a headless Linux box (no X display) renders offscreen via EGL
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from mtbench.envs.vec_env import MultiTaskVecEnv  # noqa: E402

__version__ = "0.1.0"


def make(
    task: str | int | list = "mt10",
    num_envs: int | None = None,
    device: str | None = None,
    backend: str = "auto",
    seed: int = 0,
    **options,
) -> MultiTaskVecEnv:
    """Build a `MultiTaskVecEnv`.

    task: "mt10" | "mt25" | "mt50", a task name ("reach-v3" or MTBench's "reach"), an MTBench id (0..49), or a list.
    num_envs: total envs (default: one per task), split evenly unless `task_counts` is given.
    device: "cpu" or "cuda[:i]" (default: CUDA if torch sees it, else CPU). backend: "auto" | "cpu" | "warp".
    options: task_counts, episode_length (150), goal_mode ("rand" | "fixed" | "metaworld"), reward_scale (1.0),
      terminate_on_success (False), random_init_progress (False), check_actions (True), nthread.
    """
    return MultiTaskVecEnv(task=task, num_envs=num_envs, device=device, engine=backend, seed=seed, **options)


__all__ = ["MultiTaskVecEnv", "make"]
