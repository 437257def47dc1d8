"""reach, push and pick-place: one puck on the table, object and goal drawn at least 15 cm apart."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm


class _Puck(MetaWorldTask):
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.6, 0.02)
    obj_high = (0.1, 0.7, 0.02)

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("obj"), s.geom_quat("objGeom")

    def _rest_z(self, s: TaskState) -> torch.Tensor:
        """`fix_extreme_obj_pos` keeps the puck body's height in the settled reset state."""
        return s.const(s.reset_info.obj_body_pos["obj"][2])


class Reach(_Puck):
    name, mtbench_id, xml = "reach-v3", 40, "sawyer_xyz/sawyer_reach_v3.xml"
    goal_low = (-0.1, 0.8, 0.05)
    goal_high = (0.1, 0.9, 0.3)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.target_pos[ids] = vec[:, 3:]
        s.obj_init_pos[ids] = vec[:, :3]
        s.set_obj_xyz(ids, vec[:, :3])

    def evaluate(self, s, obs, action):
        tcp_to_target = norm(s.tcp_center - s.target_pos)
        margin = norm(s.hand_init_pos - s.target_pos)
        in_place = tolerance(tcp_to_target, 0.0, 0.05, margin, "long_tail")
        return 10.0 * in_place, tcp_to_target <= 0.05


class Push(_Puck):
    name, mtbench_id, xml = "push-v3", 38, "sawyer_xyz/sawyer_push_v3.xml"
    goal_low = (-0.1, 0.8, 0.01)
    goal_high = (0.1, 0.9, 0.02)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        z = self._rest_z(s).expand(len(ids), 1)
        s.target_pos[ids] = torch.cat((vec[:, 3:5], z), dim=1)
        s.obj_init_pos[ids] = torch.cat((vec[:, :2], z), dim=1)
        s.set_obj_xyz(ids, s.obj_init_pos[ids])

    def evaluate(self, s, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], s.tcp_center
        tcp_to_obj = norm(obj - tcp)
        target_to_obj = norm(obj - s.target_pos)
        in_place = tolerance(target_to_obj, 0.0, 0.05, norm(s.obj_init_pos - s.target_pos), "long_tail")
        grasped = s.caging(
            action,
            obj,
            obj_radius=0.015,
            pad_success_thresh=0.05,
            object_reach_radius=0.01,
            xz_thresh=0.005,
            high_density=True,
        )
        reward = 2.0 * grasped
        reward = torch.where((tcp_to_obj < 0.02) & (tcp_opened > 0), 2.0 * reward + 1.0 + 5.0 * in_place, reward)
        reward = torch.where(target_to_obj < 0.05, torch.full_like(reward, 10.0), reward)
        return reward, target_to_obj <= 0.05


class PickPlace(_Puck):
    name, mtbench_id, xml = "pick-place-v3", 31, "sawyer_xyz/sawyer_pick_place_v3.xml"
    goal_low = (-0.1, 0.8, 0.05)
    goal_high = (0.1, 0.9, 0.3)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.target_pos[ids] = vec[:, 3:]
        s.obj_init_pos[ids] = vec[:, :3]
        s.set_obj_xyz(ids, vec[:, :3])

    def _caging(self, s: TaskState, obj: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """pick-place's own caging: signed pad offsets. Its margins use `init_left_pad`/`init_right_pad`,
        which Meta-World stores as live views of `data.xpos`: they are the *current* pad positions."""
        pad_margin, xz_margin_ok, radius = 0.05, 0.005, 0.015
        left, right = s.body("leftpad"), s.body("rightpad")
        right_margin = ((obj[:, 1] - right[:, 1]).abs() - pad_margin).abs()
        left_margin = ((obj[:, 1] - left[:, 1]).abs() - pad_margin).abs()
        right_caging = tolerance(obj[:, 1] - right[:, 1], radius, pad_margin, right_margin, "long_tail")
        left_caging = tolerance(left[:, 1] - obj[:, 1], radius, pad_margin, left_margin, "long_tail")
        y_caging = hamacher_product(left_caging, right_caging)
        xz = [0, 2]
        tcp = s.tcp_center
        xz_margin = norm(s.obj_init_pos[:, xz] - s.init_tcp[:, xz]) - xz_margin_ok
        xz_caging = tolerance(norm(tcp[:, xz] - obj[:, xz]), 0.0, xz_margin_ok, xz_margin, "long_tail")
        closed = action[:, 3].clamp(0.0, 1.0)
        caging = hamacher_product(y_caging, xz_caging)
        gripping = torch.where(caging > 0.97, closed, torch.zeros_like(closed))
        return (hamacher_product(caging, gripping) + caging) / 2

    def evaluate(self, s, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], s.tcp_center
        obj_to_target = norm(obj - s.target_pos)
        tcp_to_obj = norm(obj - tcp)
        in_place = tolerance(obj_to_target, 0.0, 0.05, norm(s.obj_init_pos - s.target_pos), "long_tail")
        reward = hamacher_product(self._caging(s, obj, action), in_place)
        lifted = (tcp_to_obj < 0.02) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > s.obj_init_pos[:, 2])
        reward = torch.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
        reward = torch.where(obj_to_target < 0.05, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.07
