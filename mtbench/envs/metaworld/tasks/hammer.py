"""hammer: pick the hammer up by its handle and drive the nail into the block."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm
from mtbench.envs.metaworld.tasks.assembly import quat_alignment, snap_x_to_hand

_BLOCK_POS = (0.24, 0.85, 0.0)  # Meta-World writes the block's XML position again at every reset


class Hammer(MetaWorldTask):
    name, mtbench_id, xml = "hammer-v3", 21, "sawyer_xyz/sawyer_hammer.xml"
    hand_init_pos = (0.0, 0.4, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.4, 0.0)
    obj_high = (0.1, 0.5, 0.0)
    goal_low = (0.2399, 0.7399, 0.109)
    goal_high = (0.2401, 0.7401, 0.111)
    HANDLE_LENGTH = 0.14

    # the reset vector is the hammer position only; the goal is a site on the fixed block
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.set_body_pos(ids, "box", s.const(_BLOCK_POS).expand(len(ids), 3))
        s.obj_init_pos[ids] = vec
        s.set_obj_xyz(ids, vec)  # the hammer keeps the tilt it settled to
        s.sim.forward(ids)
        s.target_pos[ids] = s.site("goal")[ids]

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.cat((s.body("hammer"), s.body("nail_link")), dim=1)
        return pos, torch.cat((s.body_quat("hammer"), s.body_quat("nail_link")), dim=1)

    def evaluate(self, s, obs, action):
        hand, hammer = obs[:, :3], obs[:, 4:7]
        head = hammer + s.const((0.16, 0.06, 0.0))
        grab = s.caging(
            action,
            snap_x_to_hand(hammer, hand, self.HANDLE_LENGTH / 2.0),
            obj_radius=0.015,
            pad_success_thresh=0.02,
            object_reach_radius=0.01,
            xz_thresh=0.01,
            high_density=True,
        )
        lifted = (head[:, 2] > 0.02).to(head.dtype)
        in_place = 0.1 * lifted + 0.9 * tolerance(norm(s.target_pos - head), 0.0, 0.02, 0.2, "long_tail")
        # the hammer lying flat on its side, as it rests on the table
        reward = (2.0 * grab + 6.0 * in_place) * quat_alignment(obs[:, 7:11], (1.0, 0.0, 0.0, 0.0), 0.4)
        success = s.joint_qpos("NailSlideJoint") > 0.09
        # the nail alone is easy to knock in; the success reward needs a well-shaped approach as well
        return torch.where(success & (reward > 5.0), torch.full_like(reward, 10.0), reward), success
