"""The MuJoCo C backend on all cores, through `mujoco.batch.Batch`.

`Batch` keeps each world as one mjSTATE_INTEGRATION row and steps the rows on a C++ thread pool, so
the hot path has no Python loop over worlds. Its bound arrays are live numpy views; we wrap them once
with `torch.from_numpy`, so the torch tensors the tasks see share memory with the engine.
"""

from __future__ import annotations

import os
import warnings

import mujoco
import numpy as np
import torch
from mujoco import batch as mjbatch

from mtbench.sim.base import SceneBlock

_BLOWUP_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)


_KINEMATICS_ONLY = int(mujoco.mjtDisableBit.mjDSBL_CONTACT) | int(mujoco.mjtDisableBit.mjDSBL_CONSTRAINT)


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _torch(a: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():  # derived outputs are read-only for numpy, and we never write them
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


class CpuBlock(SceneBlock):
    """`n` worlds of `model` stepped by MuJoCo C on `nthread` threads."""

    def __init__(self, model: mujoco.MjModel, n: int, nthread: int | None = None, per_world: tuple[str, ...] = ()):
        self.model = model
        self.n = n
        self.device = torch.device("cpu")
        self.dtype = torch.float64
        self.batch = mjbatch.Batch(model, nsim=n, nthread=nthread or default_threads())
        b = self.batch
        for name in ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart"):
            setattr(self, name, _torch(b.bind(name)))
        for name in ("xpos", "xquat", "site_xpos", "geom_xpos", "geom_xmat", "sensordata"):
            setattr(self, name, _torch(b.bind(name)))
        self.fields = {name: _torch(b.expand(name)) for name in ("body_pos", *per_world)}
        self.body_pos = self.fields["body_pos"]
        self._setconst = bool(set(per_world) - {"body_pos"})
        self._warn = b.warning
        self._blowup_ids = [int(w) for w in _BLOWUP_WARNINGS]
        # per-world option flags, so that `forward` can switch collision and constraints off around its own
        # call (see there) without touching the model the physics steps with
        self._flags = b.expand("opt.disableflags")
        self._flags_step = self._flags.copy()
        self.forward()

    def _blowup_count(self) -> np.ndarray:
        return self._warn[:, self._blowup_ids, 1].sum(axis=1)

    def step(self, nsubstep: int, kinematics: bool = True) -> torch.Tensor:
        before = self._blowup_count()
        self.batch.step(nstep=nsubstep)
        if kinematics:
            self._kinematics(None)
        bad = self._blowup_count() > before
        bad |= ~np.isfinite(self.batch.bind("qpos")).all(axis=1)
        bad |= ~np.isfinite(self.batch.bind("qvel")).all(axis=1)
        return torch.from_numpy(bad)

    def forward(self, ids: torch.Tensor | None = None) -> None:
        self._kinematics(None if ids is None else ids.numpy())

    def _kinematics(self, sel: np.ndarray | None) -> None:
        """The position stage with collision detection and constraints switched off: the derived fields the
        tasks read (poses of bodies, sites, geoms) are the same bit for bit, and a non-persistent batch
        recomputes everything at its next step, so nothing else sees the switch. It saves the position
        stage's largest costs (measured: 1.05x MT10 env-steps/s on 2 cores)."""
        self._flags[:] = self._flags_step | _KINEMATICS_ONLY
        try:
            self.batch.forward(sel, stage=mujoco.mjtStage.mjSTAGE_POS.value)
        finally:
            self._flags[:] = self._flags_step

    def sync_model(self) -> None:
        """`expand`ed fields are read live; masses and inertias also feed constants mj_setConst derives."""
        if self._setconst:
            self.batch.set_const()
