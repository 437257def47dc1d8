"""Hand settling with a task's fixed body already moved, for resets where that body touches the hand or an
object during Meta-World's 50-step hand reset.

Meta-World's `reset` places the moved body (door, peg, wall) before `_reset_hand` settles the arm, so
whatever the body touches during those 50 control steps (a finger resting on a lock lever, a nut spun by
the peg) carries into the episode. Our template settles once with the body out of the way; worlds whose
body can reach are settled again here on the C backend, one world at a time (about 7-15 ms each the first
time a position is seen; cached, so a fixed goal table settles each goal once). This is not the hot path
of most tasks: only resets with the body within reach pay it, and only for tasks that call it.
"""

from __future__ import annotations

import functools

import mujoco
import numpy as np
import torch

from mtbench.envs.metaworld.scene import hand_reset, load_model
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState
from mtbench.sim.base import STATE_FIELDS


@functools.cache
def _scratch_model(xml: str) -> mujoco.MjModel:
    """One private copy of each scene to settle in: copying a Meta-World model costs ~3.6 ms, more than half
    of a settle, and resets call this from the env's thread only."""
    return load_model(xml)


@functools.lru_cache(maxsize=4096)
def settled_state(
    xml: str, hand_init_pos: tuple[float, ...], body: str, pos: tuple[float, ...], extra_substeps: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """State (numpy arrays by field) after the hand reset with `body` at `pos`, then `extra_substeps`
    more substeps with mocap and fingers held (door-lock's reset runs some), and the fingertip centre
    Meta-World reads as `init_tcp` right after the hand reset."""
    model = _scratch_model(xml)
    bid = model.body(body).id
    saved = model.body_pos[bid].copy()
    model.body_pos[bid] = pos
    try:
        info = hand_reset(model, np.array(hand_init_pos, dtype=np.float64))
    finally:
        model.body_pos[bid] = saved
    if not extra_substeps:
        return info.state, info.tcp
    data = mujoco.MjData(model)
    for name, value in info.state.items():
        getattr(data, name)[:] = value
    mujoco.mj_step(model, data, nstep=extra_substeps)
    return {name: getattr(data, name).copy() for name in STATE_FIELDS}, info.tcp


def resettle(
    s: TaskState,
    task: MetaWorldTask,
    ids: torch.Tensor,
    body: str,
    pos: torch.Tensor,
    near: torch.Tensor,
    extra_substeps: int = 0,
    set_tcp: bool = False,
) -> None:
    """Worlds `ids` whose `body` position `pos` (k, 3) is `near` (k,) bool start from the hand settled
    with the body there (and, with `set_tcp`, take that episode's `init_tcp`). Call before placing objects."""
    sel = near.nonzero().squeeze(1)
    if not sel.numel():
        return
    settled = [
        settled_state(task.xml, tuple(task.hand_init_pos), body, tuple(p), extra_substeps)
        for p in pos[sel].detach().cpu().double().numpy().tolist()
    ]
    for name in STATE_FIELDS:
        getattr(s.sim, name)[ids[sel]] = s.const(np.stack([state[name] for state, _ in settled]))
    if set_tcp:
        s.init_tcp[ids[sel]] = s.const(np.stack([tcp for _, tcp in settled]))
