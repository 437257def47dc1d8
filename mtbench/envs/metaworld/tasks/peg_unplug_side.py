"""peg-unplug-side: pull the plug sideways out of the socket in a wall placed at the reset vector."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import tolerance
from mtbench.envs.metaworld.settle import resettle, settled_state
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm
from mtbench.sim.base import SceneBlock

_PLUG_OFFSET = (0.044, 0.0, 0.131)  # plugged in, relative to the wall
_PULL = (0.15, 0.0, 0.0)  # the goal, relative to the plugged-in plug
# The plug's XML pose is in the socket of the wall's XML pose; Meta-World settles the hand with the wall
# already moved, so the plug falls onto the table, or against the wall when the wall's 10 cm half-length
# plus the plug's 4 cm radius still reach it in y (1 cm added). A wall position out of reach, for the
# settling the template state stands for:
_WALL_REACHES_PLUG = 0.15
_WALL_OUT_OF_REACH = (-0.2, 0.8, 0.0)


class PegUnplugSide(MetaWorldTask):
    name, mtbench_id, xml = "peg-unplug-side-v3", 29, "sawyer_xyz/sawyer_peg_unplug_side.xml"
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.25, 0.6, -0.001)
    obj_high = (-0.15, 0.8, 0.001)
    # the goal box only bounds the observation: the wall's box shifted by plug offset + pull
    goal_low = tuple(a + b for a, b in zip(obj_low, (0.194, 0.0, 0.131)))
    goal_high = tuple(a + b for a, b in zip(obj_high, (0.194, 0.0, 0.131)))

    # the reset vector is the wall position only
    reset_space_has_goal = False

    def make_state(self, sim: SceneBlock) -> TaskState:
        """The template settles with the wall out of the plug's reach, as most of Meta-World's resets do."""
        s = super().make_state(sim)
        settled, _ = settled_state(self.xml, tuple(self.hand_init_pos), "box", _WALL_OUT_OF_REACH)
        s.template = {name: s.const(value) for name, value in settled.items()}
        return s

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        plug_y = s.const(s.model.body("plug1").pos[1])
        resettle(s, self, ids, "box", vec, (vec[:, 1] - plug_y).abs() < _WALL_REACHES_PLUG)
        s.set_body_pos(ids, "box", vec)
        plug = vec + s.const(_PLUG_OFFSET)
        joint = s.model.joint(s.model.body("plug1").jntadr[0])
        qpos, dof = int(joint.qposadr[0]), int(joint.dofadr[0])
        s.sim.qpos[ids, qpos : qpos + 3] = plug
        s.sim.qpos[ids, qpos + 3 : qpos + 7] = s.const((1.0, 0.0, 0.0, 0.0))
        # sic: Meta-World's `_set_obj_xyz` here stops only the linear velocity of the plug; the spin it
        # picked up during the hand settling stays
        s.sim.qvel[ids, dof : dof + 3] = 0.0
        s.sim.forward(ids)
        s.obj_init_pos[ids] = s.site("pegEnd")[ids]
        s.target_pos[ids] = plug + s.const(_PULL)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.site("pegEnd"), s.body_quat("plug1")

    def evaluate(self, s, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], s.tcp_center
        tcp_to_obj = norm(obj - tcp)
        obj_to_target = norm(obj - s.target_pos)
        grasped = s.caging(
            action,
            obj,
            obj_radius=0.025,
            pad_success_thresh=0.05,
            object_reach_radius=0.01,
            xz_thresh=0.005,
            desired_gripper_effort=0.8,
            high_density=True,
        )
        in_place = tolerance(obj_to_target, 0.0, 0.05, norm(s.obj_init_pos - s.target_pos), "long_tail")
        # pulling pays once the plug is 1.5 cm out and the fingers are still apart around it
        pulled = (tcp_opened > 0.5) & (obj[:, 0] - s.obj_init_pos[:, 0] > 0.015)
        reward = 2.0 * grasped
        reward = torch.where(pulled & (tcp_to_obj < 0.035), 1.0 + reward + 5.0 * in_place, reward)
        reward = torch.where(obj_to_target <= 0.05, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.07
