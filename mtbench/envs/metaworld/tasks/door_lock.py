"""door-lock and door-unlock: turn the lock lever of a door placed at the reset vector, down to lock it
or sideways to unlock it."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.scene import FRAME_SKIP
from mtbench.envs.metaworld.settle import resettle, settled_state
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm
from mtbench.sim.base import SceneBlock

_LOCK_LENGTH = 0.1  # Meta-World's `_lock_length`: the press term's margin
# Meta-World's `reset` calls `reset_model` twice with the same frozen reset vector, so the hand settling
# of the second call runs with the door already at this episode's place. Where the door stands close, the
# left finger comes to rest on the lock lever (hand up to 16 mm off, lever turned up to 0.02 rad; 13 of the
# 50 seeded goals): door y up to 0.8275 for door x <= 0, less further right (measured on a 1 cm x, 2.5 mm y
# grid). Doors nearer than this settle again per world; the others start from the template, settled with
# the door at its scene position, clear of the hand.
_LEVER_REACHES_HAND_Y = 0.835
_DOOR_CLEAR = (0.0, 0.9, 0.15)


class _DoorLock(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_door_lock.xml"
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, -0.15)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.8, 0.15)
    obj_high = (0.1, 0.85, 0.15)
    lock_site: str  # the lever point the observation shows
    target_shift: tuple[float, float, float]  # goal relative to the lock's hinge
    extra_substeps: int  # physics substeps Meta-World's reset runs after moving the door

    # the reset vector is the door position only
    reset_space_has_goal = False

    def make_state(self, sim: SceneBlock) -> TaskState:
        s = super().make_state(sim)
        state, _ = settled_state(self.xml, tuple(self.hand_init_pos), "door", _DOOR_CLEAR, self.extra_substeps)
        s.template = {name: s.const(value) for name, value in state.items()}
        return s

    def _settle_near_doors(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        """Worlds whose door can reach the hand start from the hand settled against the lever, and take
        that episode's `init_tcp`; the others get the template's back."""
        s.init_tcp[ids] = s.const(s.reset_info.tcp)
        near = vec[:, 1] < _LEVER_REACHES_HAND_Y
        resettle(s, self, ids, "door", vec, near, self.extra_substeps, set_tcp=True)

    def _set_lever(self, s: TaskState, ids: torch.Tensor) -> None:
        """Put the lever where the task starts, before the hinge position is read."""
        raise NotImplementedError

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        self._settle_near_doors(s, ids, vec)
        s.set_body_pos(ids, "door", vec)
        self._set_lever(s, ids)
        s.sim.forward(ids)
        # the lever turns about the lock_link origin, so this is the hinge and stays put in an episode
        # (Meta-World keeps a live view of `xpos` here; it never moves)
        s.obj_init_pos[ids] = s.body("lock_link")[ids]
        s.target_pos[ids] = s.obj_init_pos[ids] + s.const(self.target_shift)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.site(self.lock_site), s.body_quat("door_link")


class DoorLock(_DoorLock):
    # Meta-World's reset observation reads the kinematics its last reset substep started from (it steps
    # without a final mj_forward): the hand one substep (2.5 ms) back, up to 0.2 mm off (measured)
    reset_obs_stale_in_reference = True
    name, mtbench_id = "door-lock-v3", 14
    goal_low, goal_high = _DoorLock.hand_low, _DoorLock.hand_high  # Meta-World's goal_space is the hand box
    lock_site, target_shift = "lockStartLock", (0.0, -0.04, -0.1)
    # one control step's worth of substeps after moving the door (mocap and fingers held as the hand
    # reset left them); `init_tcp` is read before them
    extra_substeps = FRAME_SKIP

    def _set_lever(self, s: TaskState, ids: torch.Tensor) -> None:
        pass  # the lever stays as the settled reset state has it: up

    def evaluate(self, s, obs, action):
        obj = obs[:, 4:7]
        scale = s.const((0.25, 1.0, 0.5))
        tcp_to_obj = norm((obj - s.body("leftpad")) * scale)
        # sic: the margin is measured from `init_left_pad`, a live view of the left pad, i.e. from where
        # the pad is now: margin and distance are equal
        near_lock = tolerance(tcp_to_obj, 0.0, 0.01, tcp_to_obj, "long_tail")
        obj_to_target = (s.target_pos[:, 2] - obj[:, 2]).abs()
        pressed = tolerance(obj_to_target, 0.0, 0.005, _LOCK_LENGTH, "long_tail")
        reward = 2.0 * hamacher_product(obs[:, 3].clamp(min=0.0), near_lock) + 8.0 * pressed
        return reward, obj_to_target <= 0.02


class DoorUnlock(_DoorLock):
    name, mtbench_id = "door-unlock-v3", 15
    goal_low = (0.0, 0.64, 0.2100)
    goal_high = (0.2, 0.7, 0.2111)
    lock_site, target_shift = "lockStartUnlock", (0.1, -0.04, 0.0)
    extra_substeps = 0

    def _set_lever(self, s: TaskState, ids: torch.Tensor) -> None:
        # turned down (locked); Meta-World writes 1.5708, not pi/2
        s.sim.qpos[ids, 9] = 1.5708
        s.sim.qvel[ids, 9] = 0.0

    def evaluate(self, s, obs, action):
        gripper, lock = obs[:, :3], obs[:, 4:7]
        # the hand's "shoulder" above and behind the fingers pushes the lever sideways
        offset, scale = s.const((0.0, 0.055, 0.07)), s.const((0.25, 1.0, 0.5))
        shoulder_to_lock = norm((gripper + offset - lock) * scale)
        shoulder_to_lock_init = norm((s.init_tcp + offset - s.obj_init_pos) * scale)
        ready = tolerance(shoulder_to_lock, 0.0, 0.02, shoulder_to_lock_init, "long_tail")
        obj_to_target = (s.target_pos[:, 0] - lock[:, 0]).abs()
        pushed = tolerance(obj_to_target, 0.0, 0.005, _LOCK_LENGTH, "long_tail")
        return 2.0 * ready + 8.0 * pushed, obj_to_target <= 0.02
