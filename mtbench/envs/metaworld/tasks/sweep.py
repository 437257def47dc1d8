"""sweep and sweep-into: push a block across the table, off its edge (sweep) or into a hole (sweep-into)."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm

_OBJ_RADIUS = 0.02
_PAD_MARGIN = 0.05


class _Sweep(MetaWorldTask):
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.6, 0.02)
    obj_high = (0.1, 0.7, 0.02)
    grip_margin: float  # how far past the block's radius the pads may sit and still grip it
    xz_margin: float  # fingertip-to-block distance in xz that counts as caged

    def _caging(self, s: TaskState, obj: torch.Tensor) -> torch.Tensor:
        """The sweep family's own caging: signed pad offsets, a tighter "gripping" band inside the caging
        band, and no gripper effort. Its margins use `init_left_pad`/`init_right_pad`, which Meta-World
        stores as live views of `data.xpos`: they are the *current* pad positions."""
        left, right = s.body("leftpad"), s.body("rightpad")
        to_left, to_right = left[:, 1] - obj[:, 1], obj[:, 1] - right[:, 1]
        left_margin = ((obj[:, 1] - left[:, 1]).abs() - _PAD_MARGIN).abs()
        right_margin = ((obj[:, 1] - right[:, 1]).abs() - _PAD_MARGIN).abs()

        def band(d: torch.Tensor, upper: float, margin: torch.Tensor) -> torch.Tensor:
            return tolerance(d, _OBJ_RADIUS, upper, margin, "long_tail")

        y_caging = hamacher_product(band(to_right, _PAD_MARGIN, right_margin), band(to_left, _PAD_MARGIN, left_margin))
        grip = _OBJ_RADIUS + self.grip_margin
        y_gripping = hamacher_product(band(to_right, grip, right_margin), band(to_left, grip, left_margin))
        xz = [0, 2]
        xz_start = norm(s.obj_init_pos[:, xz] - s.init_tcp[:, xz]) - self.xz_margin
        xz_caging = tolerance(norm(s.tcp_center[:, xz] - obj[:, xz]), 0.0, self.xz_margin, xz_start, "long_tail")
        caging = hamacher_product(y_caging, xz_caging)
        gripping = torch.where(caging > 0.95, y_gripping, torch.zeros_like(y_gripping))
        return (caging + gripping) / 2.0

    def _score(self, s: TaskState, obj: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        radius = 0.05
        obj_to_target = norm(obj - target)
        in_place = tolerance(obj_to_target, 0.0, radius, norm(s.obj_init_pos - target), "long_tail")
        grasped = self._caging(s, obj)
        reward = 2.0 * grasped + 6.0 * hamacher_product(grasped, in_place)
        reward = torch.where(obj_to_target < radius, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= radius


class Sweep(_Sweep):
    name, mtbench_id, xml = "sweep-v3", 47, "sawyer_xyz/sawyer_sweep_v3.xml"
    goal_low = (0.49, 0.6, 0.00)
    goal_high = (0.51, 0.7, 0.02)
    grip_margin, xz_margin = 0.01, 0.005

    # the reset vector is the block position only; the goal is past the table's edge in line with it
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        k = len(ids)
        block = torch.cat((vec[:, :2], s.const([0.02]).expand(k, 1)), dim=1)
        s.obj_init_pos[ids] = block
        s.target_pos[ids] = torch.stack((s.const(0.5).expand(k), vec[:, 1], s.const(0.01).expand(k)), dim=1)
        s.set_obj_xyz(ids, block)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("obj"), s.body_quat("obj")

    def evaluate(self, s, obs, action):
        return self._score(s, obs[:, 4:7], s.target_pos)


class SweepInto(_Sweep):
    name, mtbench_id, xml = "sweep-into-v3", 46, "sawyer_xyz/sawyer_table_with_hole.xml"
    goal_low = (-0.001, 0.8399, 0.0199)
    goal_high = (0.001, 0.8401, 0.0201)
    grip_margin, xz_margin = 0.005, 0.01
    HOLE = (0.0, 0.84, 0.02)  # the goal; the goal half of the reset vector is drawn but never used

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        # the block must start 15 cm from the hole in xy
        return norm(vec[:, :2] - vec.new_tensor(self.HOLE[:2])) < 0.15

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        # the block keeps the height the hand-reset state leaves it at
        z = s.const([s.reset_info.obj_body_pos["obj"][2]]).expand(len(ids), 1)
        block = torch.cat((vec[:, :2], z), dim=1)
        s.obj_init_pos[ids] = block
        s.target_pos[ids] = s.const(self.HOLE)
        s.set_obj_xyz(ids, block)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("obj"), s.geom_quat("objGeom")

    def evaluate(self, s, obs, action):
        obj = obs[:, 4:7]
        # the hole counts at the block's own height, so only xy matters
        target = torch.cat((s.target_pos[:, :2], obj[:, 2:3]), dim=1)
        return self._score(s, obj, target)
