"""basketball: pick the ball up and drop it through the hoop of a basket that stands at the reset vector."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm

_BALL_Z = 0.029999999329447746  # sic: Meta-World keeps the ball's start height as float32(0.03)


class Basketball(MetaWorldTask):
    name, mtbench_id, xml = "basketball-v3", 1, "sawyer_xyz/sawyer_basketball.xml"
    hand_init_pos = (0.0, 0.6000000238418579, 0.20000000298023224)  # sic: Meta-World's float32 (0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.6, 0.0299)
    obj_high = (0.1, 0.7, 0.0301)
    goal_low = (-0.1, 0.85, 0.0)
    goal_high = (0.1, 0.9 + 1e-7, 0.0)
    # the reset vector places the basket; the goal slot shows the hoop, offset from it
    goal_space = ((-0.1, 0.85 - 0.083, 0.2499), (0.1, 0.9 + 1e-7 - 0.083, 0.2501))
    TARGET_RADIUS = 0.08  # Meta-World overrides the base class's 0.05 for this task

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = torch.cat((vec[:, :2], s.const((_BALL_Z,)).expand(len(ids), 1)), dim=1)
        s.set_body_pos(ids, "basket_goal", vec[:, 3:])
        # the goal site sits at the hoop, a fixed offset from the basket's origin (the hoop's bodies are
        # static and unrotated); Meta-World also writes the goal site's model pos, which MuJoCo ignores for
        # a site on its body's frame
        hoop = s.reset_info.obj_body_pos["hooplink"] - s.reset_info.obj_body_pos["basket_goal"]
        s.target_pos[ids] = vec[:, 3:] + s.const(hoop)
        s.set_obj_xyz(ids, s.obj_init_pos[ids])

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        # Meta-World observes the body's raw (w, x, y, z) quaternion here
        return s.body("bsktball"), s.body_quat("bsktball")

    def evaluate(self, s, obs, action):
        radius = self.TARGET_RADIUS
        obj, tcp_opened = obs[:, 4:7], obs[:, 3]
        # aim at the hoop's centre at height 0.3, height errors weighted double
        target = torch.cat((s.target_pos[:, :2], torch.full_like(s.target_pos[:, 2:], 0.3)), dim=1)
        scale = s.const((1.0, 1.0, 2.0))
        target_to_obj = norm((obj - target) * scale)
        in_place = tolerance(target_to_obj, 0.0, radius, norm((s.obj_init_pos - target) * scale), "long_tail")
        grasped = s.caging(
            action,
            obj,
            obj_radius=0.025,
            pad_success_thresh=0.06,
            object_reach_radius=0.01,
            xz_thresh=0.005,
            high_density=True,
        )
        lifted = (norm(obj - s.tcp_center) < 0.035) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > s.obj_init_pos[:, 2])
        grasped = torch.where(lifted, torch.ones_like(grasped), grasped)
        reward = hamacher_product(grasped, in_place)
        reward = torch.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
        reward = torch.where(target_to_obj < radius, torch.full_like(reward, 10.0), reward)
        return reward, target_to_obj <= radius
