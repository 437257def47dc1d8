"""Batched physics: one interface (`SceneBlock`), two backends (`cpu`: MuJoCo C, `warp`: MuJoCo Warp)."""

from __future__ import annotations

import mujoco
import torch

from mtbench.sim.base import SceneBlock

BACKENDS = ("cpu", "warp")
"""The physics backends a block runs on (the envs add "auto", see mtbench.envs.core.BACKENDS)."""


def make_block(
    backend: str,
    model: mujoco.MjModel,
    n: int,
    device: torch.device,
    nthread: int | None = None,
    per_world: tuple[str, ...] = (),
    nconmax: int | None = None,
    njmax: int | None = None,
) -> SceneBlock:
    """Build `n` worlds of `model` on `backend`; errors name the fix. `per_world` names MjModel fields that
    get a value per world (domain randomisation: "geom_friction", "body_mass", "body_ipos", ...), readable
    and writable as `block.fields[name]`; `body_pos` is always per world. `nconmax`/`njmax`: MuJoCo Warp's
    contact slots and constraint rows per world (None: mtbench.sim.warp's defaults); MuJoCo C ignores them,
    it grows its arena as needed."""
    if backend == "cpu":
        if device.type != "cpu":
            raise ValueError(
                f"backend 'cpu' keeps its state in host memory; use device='cpu' or backend='warp' (got {device})"
            )
        from mtbench.sim.cpu import CpuBlock

        return CpuBlock(model, n, nthread=nthread, per_world=per_world)
    if backend == "warp":
        from mtbench.sim.warp import WarpBlock

        sizes = {k: v for k, v in (("nconmax", nconmax), ("njmax", njmax)) if v is not None}
        return WarpBlock(model, n, device=device, per_world=per_world, **sizes)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
