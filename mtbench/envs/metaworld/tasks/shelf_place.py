"""shelf-place: pick the block up and put it on a shelf that stands at the reset vector."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm


class ShelfPlace(MetaWorldTask):
    name, mtbench_id, xml = "shelf-place-v3", 42, "sawyer_xyz/sawyer_shelf_placing.xml"
    hand_init_pos = (0.0, 0.6000000238418579, 0.20000000298023224)  # sic: Meta-World's float32 (0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.5, 0.019)
    obj_high = (0.1, 0.6, 0.021)
    goal_low = (-0.1, 0.8, 0.299)
    goal_high = (0.1, 0.9, 0.301)

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec, 0.1)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        # the reset vector's goal is the shelf top; the shelf body stands 0.3 below it and the goal is read
        # back as the goal site's offset plus the shelf position, as Meta-World does
        shelf = vec[:, 3:] - s.const((0.0, 0.0, 0.3))
        s.set_body_pos(ids, "shelf", shelf)
        s.target_pos[ids] = s.const(s.model.site("goal").pos) + shelf
        # the block keeps the height it settled at during the hand reset
        z = s.const(s.reset_info.obj_body_pos["obj"][2]).expand(len(ids), 1)
        s.obj_init_pos[ids] = torch.cat((vec[:, :2], z), dim=1)
        s.set_obj_xyz(ids, s.obj_init_pos[ids])

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("obj"), s.geom_quat("objGeom")

    def evaluate(self, s, obs, action):
        radius = 0.05
        obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], s.target_pos
        obj_to_target = norm(obj - target)
        in_place = tolerance(obj_to_target, 0.0, radius, norm(s.obj_init_pos - target), "long_tail")
        grasped = s.caging(
            action, obj, obj_radius=0.02, pad_success_thresh=0.05, object_reach_radius=0.01, xz_thresh=0.01
        )
        reward = hamacher_product(grasped, in_place)
        # below the shelf top and in front of or under the shelf: the in-place term used for the lift bonus
        # is docked (in front, the more the lower and nearer) or zeroed (under it)
        low = (obj[:, 2] > 0.0) & (obj[:, 2] < 0.24)
        low_and_level = low & (target[:, 0] - 0.15 < obj[:, 0]) & (obj[:, 0] < target[:, 0] + 0.15)
        front = target[:, 1] - 3 * radius
        in_front = low_and_level & (front < obj[:, 1]) & (obj[:, 1] < target[:, 1])
        loss = hamacher_product((obj[:, 1] - front) / (3 * radius), (0.24 - obj[:, 2]) / 0.24)
        in_place = torch.where(in_front, (in_place - loss).clamp(0.0, 1.0), in_place)
        in_place = torch.where(low_and_level & (obj[:, 1] > target[:, 1]), torch.zeros_like(in_place), in_place)
        lifted = (norm(obj - s.tcp_center) < 0.025) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > s.obj_init_pos[:, 2])
        reward = torch.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
        reward = torch.where(obj_to_target < radius, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.07
