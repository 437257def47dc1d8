"""Batched physics: one interface (`SceneBlock`), two engines (`cpu`: MuJoCo C, `warp`: MuJoCo Warp)."""

from __future__ import annotations

import mujoco
import torch

from mtbench.sim.base import SceneBlock

ENGINES = ("cpu", "warp")


def make_block(
    engine: str,
    model: mujoco.MjModel,
    n: int,
    device: torch.device,
    nthread: int | None = None,
    per_world: tuple[str, ...] = (),
) -> SceneBlock:
    """Build `n` worlds of `model` on `engine`; errors name the fix. `per_world` names MjModel fields that
    get a value per world (domain randomisation: "geom_friction", "body_mass", "body_ipos", ...), readable
    and writable as `block.fields[name]`; `body_pos` is always per world."""
    if engine == "cpu":
        if device.type != "cpu":
            raise ValueError(
                f"engine 'cpu' keeps its state in host memory; use device='cpu' or engine='warp' (got {device})"
            )
        from mtbench.sim.cpu import CpuBlock

        return CpuBlock(model, n, nthread=nthread, per_world=per_world)
    if engine == "warp":
        from mtbench.sim.warp import WarpBlock

        return WarpBlock(model, n, device=device, per_world=per_world)
    raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
