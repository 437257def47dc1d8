"""Meta-World scenes: the MJCF files of the installed `metaworld` package, and the per-task state that a
reset starts from.

Meta-World's reset settles the hand for 50 control steps with the mocap at `hand_init_pos` from
`mj_resetData`, so that state is the same for every episode of a task. We compute it once per task in C
and copy it into worlds at reset, instead of simulating 250 substeps per reset.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import mujoco
import numpy as np

FRAME_SKIP = 5
# Meta-World's mocap weld: identity anchor, the hand rotated by quat (-1, 0, 0, 0), torque scale 5.
_WELD_DATA = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0])
_GRIPPER_QUAT = np.array([1.0, 0.0, 1.0, 0.0])


def asset_path(xml: str) -> str:
    """Path of a Meta-World v3 scene inside the installed `metaworld` package (never copied here)."""
    import metaworld

    path = os.path.join(os.path.dirname(metaworld.__file__), "assets", xml)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; install the pinned metaworld package (pip install -e .)")
    return path


@functools.cache
def _compiled(xml: str) -> mujoco.MjModel:
    model = mujoco.MjModel.from_xml_path(asset_path(xml))
    # MuJoCo 4 turns multi-contact convex collision on by default; the reference (MuJoCo 3.3) had it off.
    # With it on, a puck settles 0.56 mm higher than in the reference; off, within 2 um. MuJoCo Warp
    # also rejects box/mesh pairs with margins under MULTICCD. One switch, both backends.
    model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_MULTICCD)
    for i in range(model.neq):
        if model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
            model.eq_data[i, : _WELD_DATA.size] = _WELD_DATA
    return model


def load_model(xml: str) -> mujoco.MjModel:
    """A fresh copy of the scene with Meta-World's mocap weld parameters (callers may edit it)."""
    import copy

    return copy.copy(_compiled(xml))


@dataclass(frozen=True)
class HandReset:
    """The settled state after Meta-World's `_reset_hand`, and the readings it takes there.

    `tcp` (Meta-World's `init_tcp`) and `obj_body_pos` (every body's position) are read right after
    `mj_step` as Meta-World does, i.e. from the kinematics of the last substep's start."""

    state: dict[str, np.ndarray]
    tcp: np.ndarray
    obj_body_pos: dict[str, np.ndarray]


def hand_reset(model: mujoco.MjModel, hand_init_pos: np.ndarray, steps: int = 50) -> HandReset:
    data = mujoco.MjData(model)
    mujoco.mj_resetData(model, data)
    mocap = model.body_mocapid[model.body("mocap").id]
    for _ in range(steps):
        data.mocap_pos[mocap] = hand_init_pos
        data.mocap_quat[mocap] = _GRIPPER_QUAT
        data.ctrl[:] = (-1.0, 1.0)
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        mujoco.mj_rnePostConstraint(model, data)
    tcp = (data.site("rightEndEffector").xpos + data.site("leftEndEffector").xpos) / 2.0
    state = {
        "qpos": data.qpos.copy(),
        "qvel": data.qvel.copy(),
        "ctrl": data.ctrl.copy(),
        "mocap_pos": data.mocap_pos.copy(),
        "mocap_quat": data.mocap_quat.copy(),
        "qacc_warmstart": data.qacc_warmstart.copy(),
    }
    bodies = {model.body(i).name: data.xpos[i].copy() for i in range(model.nbody)}
    return HandReset(state, tcp.copy(), bodies)
