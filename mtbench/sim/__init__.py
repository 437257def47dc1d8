"""Batched physics: one interface (`SceneBlock`), two engines (`cpu`: MuJoCo C, `warp`: MuJoCo Warp)."""

from __future__ import annotations

import mujoco
import torch

from mtbench.sim.base import SceneBlock

ENGINES = ("cpu", "warp")


def make_block(
    engine: str, model: mujoco.MjModel, n: int, device: torch.device, nthread: int | None = None
) -> SceneBlock:
    """Build `n` worlds of `model` on `engine`; errors name the fix."""
    if engine == "cpu":
        if device.type != "cpu":
            raise ValueError(
                f"engine 'cpu' keeps its state in host memory; use device='cpu' or engine='warp' (got {device})"
            )
        from mtbench.sim.cpu import CpuBlock

        return CpuBlock(model, n, nthread=nthread)
    if engine == "warp":
        from mtbench.sim.warp import WarpBlock

        return WarpBlock(model, n, device=device)
    raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
