"""hand-insert: push the block across the table and down into the hole at the reset vector."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm
from mtbench.envs.metaworld.tasks.reach_push_pick import PUCK_CAGING


class HandInsert(MetaWorldTask):
    name, mtbench_id, xml = "hand-insert-v3", 22, "sawyer_xyz/sawyer_table_with_hole.xml"
    hand_init_pos = (0.0, 0.6000000238418579, 0.20000000298023224)  # sic: Meta-World's float32 (0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, -0.15)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.6, 0.05)
    obj_high = (0.1, 0.7, 0.05)
    goal_low = (-0.04, 0.8, -0.0201)
    goal_high = (0.04, 0.88, -0.0199)
    TARGET_RADIUS = 0.05

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        # the block starts at the scene's height 0.05, above the table; the reset vector's z is unused
        s.obj_init_pos[ids] = torch.cat((vec[:, :2], s.const((0.05,)).expand(len(ids), 1)), dim=1)
        s.target_pos[ids] = vec[:, 3:]
        s.set_obj_xyz(ids, s.obj_init_pos[ids])

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        # Meta-World observes the body's raw (w, x, y, z) quaternion here
        return s.body("obj"), s.body_quat("obj")

    def evaluate(self, s, obs, action):
        radius = self.TARGET_RADIUS
        obj, tcp_opened = obs[:, 4:7], obs[:, 3]
        target_to_obj = norm(obj - s.target_pos)
        in_place = tolerance(target_to_obj, 0.0, radius, norm(s.obj_init_pos - s.target_pos), "long_tail")
        grasped = s.caging(action, obj, **PUCK_CAGING, high_density=True)
        reward = hamacher_product(grasped, in_place)
        near = (norm(obj - s.tcp_center) < 0.02) & (tcp_opened > 0)
        reward = torch.where(near, reward + 1.0 + 7.0 * in_place, reward)
        reward = torch.where(target_to_obj < radius, torch.full_like(reward, 10.0), reward)
        return reward, target_to_obj <= radius
