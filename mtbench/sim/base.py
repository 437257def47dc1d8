"""The backend-independent face of batched physics.

A `SceneBlock` holds `n` worlds of one `mujoco.MjModel`. Task code reads and writes it only through
torch tensors shaped `(n, ...)`, so the same task module runs on the MuJoCo C backend and on MuJoCo
Warp. State tensors (qpos, qvel, mocap, ctrl, warm start) are writable views; derived tensors
(xpos, xquat, site_xpos, geom_xpos, geom_xmat) describe the state after the last `step` or `forward`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType

import mujoco
import numpy as np
import torch


class SceneBlock(ABC):
    """`n` worlds of one model, stepped together."""

    model: mujoco.MjModel
    n: int
    device: torch.device
    dtype: torch.dtype

    # writable state views, (n, ...)
    qpos: torch.Tensor
    qvel: torch.Tensor
    ctrl: torch.Tensor
    mocap_pos: torch.Tensor
    mocap_quat: torch.Tensor
    qacc_warmstart: torch.Tensor
    # derived, (n, ...)
    xpos: torch.Tensor
    xquat: torch.Tensor
    site_xpos: torch.Tensor
    geom_xpos: torch.Tensor
    geom_xmat: torch.Tensor
    sensordata: torch.Tensor  # (n, nsensordata): on the CPU backend as of the stage `step` computed
    # per-world model fields, (n, ...): body_pos always, others as asked for at construction
    body_pos: torch.Tensor
    fields: dict[str, torch.Tensor]
    # fixed-size buffers (MuJoCo Warp; MuJoCo C grows its arena and has none): see mtbench.sim.capacity
    overflow: torch.Tensor | None = None
    """(n,) int sticky bitmask on `device` of the buffers each world overflowed; None for an engine without any.
    Never read while stepping (a host sync on CUDA): `mtbench.sim.capacity.check_overflow` reads it."""
    capacity: Mapping[str, int] = MappingProxyType({})
    """The buffer sizes in use, by setting name ("nconmax", "njmax")."""

    @abstractmethod
    def step(self, nsubstep: int, kinematics: bool = True) -> torch.Tensor:
        """Advance every world `nsubstep` physics steps, then recompute the kinematics (`kinematics=False`
        skips that where the engine can: a caller that reads only qpos, qvel and sensordata saves a
        position stage, collision detection included, per call on the CPU backend).

        Returns a bool `(n,)` mask of worlds whose state blew up (NaN/Inf or a MuJoCo instability
        warning) during this call; the caller must reset them.
        """

    @abstractmethod
    def forward(self, ids: torch.Tensor | None = None) -> None:
        """Recompute the kinematics after a state write; `ids` (long, on `device`) limits it to some
        worlds where the engine can do that cheaply, others may recompute all worlds."""

    @abstractmethod
    def sync_model(self) -> None:
        """Make writes to `body_pos` and the other per-world `fields` take effect (recompute what the engine
        derives from them)."""


def single_world_state(model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, np.ndarray]:
    """The state fields of one MjData that a reset copies into worlds."""
    return {
        "qpos": data.qpos.copy(),
        "qvel": data.qvel.copy(),
        "ctrl": data.ctrl.copy(),
        "mocap_pos": data.mocap_pos.copy(),
        "mocap_quat": data.mocap_quat.copy(),
        "qacc_warmstart": data.qacc_warmstart.copy(),
    }


STATE_FIELDS = ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart")
