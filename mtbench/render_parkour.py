"""Pictures of the parkour suite for a person to check by eye: an MP4 per terrain type following one robot (the
env's `view`: MuJoCo's tracking camera on the trunk) and a PNG overview of the terrain grid. Not the hot path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from mtbench.envs.core import MultiTaskVecEnv
from mtbench.render import record_episode, write_videos


def record_parkour(
    env: MultiTaskVecEnv, act: Callable[[MultiTaskVecEnv], torch.Tensor], steps: int, out_dir: Path, every: int = 2
) -> list[Path]:
    """One episode from a fresh reset: an MP4 per terrain type following world 0 of its block (real time at the
    env's policy rate `dt`), and the terrain overview PNG."""
    from mtbench.envs.parkour.terrains import overview_png

    frames = record_episode(env, act, steps, every)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_videos(frames, env.task_names, out_dir, fps=int(round(1.0 / (env.dt * every))))
    paths.append(Path(overview_png(str(out_dir / "terrains.png"))))
    return paths
