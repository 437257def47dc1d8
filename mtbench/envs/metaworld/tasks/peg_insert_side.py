"""peg-insert-side: pick the peg up and push its head sideways into the hole of a box."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import (
    hamacher_product,
    quat_wxyz_to_rotmat,
    rect_prism_tolerance,
    rotmat_to_quat_xyzw,
    tolerance,
)
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm

_HOLE_OFFSET = (0.03, 0.0, 0.13)


class PegInsertSide(MetaWorldTask):
    name, mtbench_id, xml = "peg-insert-side-v3", 28, "sawyer_xyz/sawyer_peg_insertion_side.xml"
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (0.0, 0.5, 0.02)
    obj_high = (0.2, 0.7, 0.02)
    goal_low = (-0.35, 0.4, -0.001)
    goal_high = (-0.25, 0.7, 0.001)
    # the reset vector places the box; the goal slot shows the hole, offset from it
    goal_space = (
        tuple(a + b for a, b in zip(goal_low, _HOLE_OFFSET)),
        tuple(a + b for a, b in zip(goal_high, _HOLE_OFFSET)),
    )
    TARGET_RADIUS = 0.07  # Meta-World overrides the base class's 0.05 for this task
    episode_attrs = {"peg_head_pos_init": "peg_head_pos_init"}

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec, 0.1)

    def _peg_head_at_reset(self, s: TaskState) -> torch.Tensor:
        """The pegHead site where the settled hand-reset state leaves the peg, read before the peg moves."""
        local = s.const(s.model.site("pegHead").pos)
        quat = s.template["qpos"][12:16]
        return s.const(s.reset_info.obj_body_pos["peg"]) + quat_wxyz_to_rotmat(quat) @ local

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        peg, box = vec[:, :3], vec[:, 3:]
        head = s.episode.get("peg_head_pos_init")
        if head is None:
            head = s.episode["peg_head_pos_init"] = s.target_pos.new_zeros(s.n, 3)
        head[ids] = self._peg_head_at_reset(s)
        s.obj_init_pos[ids] = peg
        s.set_obj_xyz(ids, peg)
        s.set_body_pos(ids, "box", box)
        s.target_pos[ids] = box + s.const(_HOLE_OFFSET)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        # the pegGrasp site shares the peg body's frame
        return s.site("pegGrasp"), rotmat_to_quat_xyzw(quat_wxyz_to_rotmat(s.body_quat("peg")))

    def evaluate(self, s, obs, action):
        obj, tcp_opened, tcp, target = obs[:, 4:7], obs[:, 3], s.tcp_center, s.target_pos
        tcp_to_obj = norm(obj - tcp)
        # y and z errors weigh double, so the peg has to be lifted before it goes in
        scale = s.const((1.0, 2.0, 2.0))
        obj_to_target = norm((s.site("pegHead") - target) * scale)
        margin = norm((s.episode["peg_head_pos_init"] - target) * scale)
        in_place = tolerance(obj_to_target, 0.0, self.TARGET_RADIUS, margin, "long_tail")
        boxes = [
            rect_prism_tolerance(
                s.site("pegHead"),
                s.site(f"bottom_right_corner_collision_box_{i}"),
                s.site(f"top_left_corner_collision_box_{i}"),
            )
            for i in (1, 2)
        ]
        in_place = hamacher_product(in_place, hamacher_product(boxes[1], boxes[0]))
        grasped = s.caging(
            action,
            obj,
            obj_radius=0.0075,
            pad_success_thresh=0.03,
            object_reach_radius=0.01,
            xz_thresh=0.005,
            high_density=True,
        )
        lifted = (tcp_to_obj < 0.08) & (tcp_opened > 0) & (obj[:, 2] - 0.01 > s.obj_init_pos[:, 2])
        grasped = torch.where(lifted, torch.ones_like(grasped), grasped)
        reward = hamacher_product(grasped, in_place)
        reward = torch.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
        success = obj_to_target <= 0.07
        return torch.where(success, torch.full_like(reward, 10.0), reward), success
