"""soccer: push the ball into a goal frame that stands at the reset vector."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import quat_wxyz_to_rotmat, rotmat_to_quat_xyzw, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm
from mtbench.envs.metaworld.tasks.reach_push_pick import pad_gripping_caging


class Soccer(MetaWorldTask):
    name, mtbench_id, xml = "soccer-v3", 43, "sawyer_xyz/sawyer_soccer.xml"
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.6, 0.03)
    obj_high = (0.1, 0.7, 0.03)
    goal_low = (-0.1, 0.8, 0.0)
    goal_high = (0.1, 0.9, 0.0)
    TARGET_RADIUS = 0.07  # Meta-World overrides the base class's 0.05 for this task
    OBJ_RADIUS = 0.013

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        # the ball's height is the scene's 0.03, whatever the reset vector says
        s.obj_init_pos[ids] = torch.cat((vec[:, :2], s.const((0.03,)).expand(len(ids), 1)), dim=1)
        s.target_pos[ids] = vec[:, 3:]
        s.set_body_pos(ids, "goal_whole", vec[:, 3:])
        s.set_obj_xyz(ids, s.obj_init_pos[ids])

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        # Meta-World converts the ball body's rotation matrix with scipy
        return s.body("soccer_ball"), rotmat_to_quat_xyzw(quat_wxyz_to_rotmat(s.body_quat("soccer_ball")))

    def evaluate(self, s, obs, action):
        radius = self.TARGET_RADIUS
        obj, target = obs[:, 4:7], s.target_pos
        # x errors weigh triple, so the ball has to come in straight through the goal mouth
        scale = s.const((3.0, 1.0, 1.0))
        target_to_obj = norm((obj - target) * scale)
        # sic: the margin measures the ball from its own start, not from the target (0 at reset)
        in_place = tolerance(target_to_obj, 0.0, radius, norm((obj - s.obj_init_pos) * scale), "long_tail")
        # past the goal line but wide of the posts: the in-place term is docked
        goal_line = target[:, 1] - 0.1
        wide = (obj[:, 1] > goal_line) & ((obj[:, 0] - target[:, 0]).abs() > 0.10)
        docked = (in_place - 2.0 * ((obj[:, 1] - goal_line) / (1.0 - goal_line))).clamp(0.0, 1.0)
        in_place = torch.where(wide, docked, in_place)
        grasped = pad_gripping_caging(
            s, obj, obj_radius=self.OBJ_RADIUS, grip_margin=self.OBJ_RADIUS + 0.01, xz_margin=0.005
        )
        reward = 3.0 * grasped + 6.5 * in_place
        reward = torch.where(target_to_obj < radius, torch.full_like(reward, 10.0), reward)
        # success is judged on the unweighted distance
        return reward, norm(obj - target) <= 0.07
