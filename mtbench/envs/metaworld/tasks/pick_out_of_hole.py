"""pick-out-of-hole and bin-picking: lift a small object out of a hole (a bin) and carry it to the goal,
the hand kept above a log-shaped funnel floor so that it does not run into the rim."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm


def _funnel_floor(radius: torch.Tensor, threshold: float, scale: float, height: float) -> torch.Tensor:
    """The floor of a funnel centred where `radius` is measured: 0 within `threshold`, rising with log."""
    far = radius > threshold
    safe = torch.where(far, radius - threshold, torch.ones_like(radius))
    return torch.where(far, scale * torch.log(safe) + height, torch.zeros_like(radius))


class _LiftOut(MetaWorldTask):
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_high = (0.5, 1.0, 0.5)
    floor_margin: float  # how far below the floor the hand's reward decays
    pinch_opening: float  # gripper openings below this hold nothing
    caging_params: dict[str, float | bool]  # `s.caging` radii, thresholds, effort and density

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        # Meta-World observes the body's raw (w, x, y, z) quaternion here
        return s.body("obj"), s.body_quat("obj")

    def _floor(self, s: TaskState, hand: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _in_place(self, s: TaskState, obj_to_target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _reward(self, s: TaskState, obs: torch.Tensor, action: torch.Tensor, hand: torch.Tensor) -> torch.Tensor:
        """The shared shaping: grasp x place, plus a bonus once the object is held up, the hand above the
        floor; `hand` is where the floor and the near-object test measure the hand."""
        obj = obs[:, 4:7]
        obj_to_target = norm(obj - s.target_pos)
        in_place = self._in_place(s, obj_to_target)
        floor = self._floor(s, hand)
        below = tolerance((floor - hand[:, 2]).clamp(min=0.0), 0.0, 0.01, self.floor_margin, "long_tail")
        above_floor = torch.where(hand[:, 2] >= floor, torch.ones_like(floor), below)
        grasped = s.caging(action, obj, **self.caging_params)
        reward = hamacher_product(grasped, in_place)
        held = (norm(obj - hand) < 0.04) & (obj[:, 2] - 0.02 > s.obj_init_pos[:, 2]) & ~(obs[:, 3] < self.pinch_opening)
        reward = torch.where(held, reward + 1.0 + 5.0 * hamacher_product(in_place, above_floor), reward)
        # Meta-World's base TARGET_RADIUS
        return torch.where(obj_to_target < 0.05, torch.full_like(reward, 10.0), reward)


class PickOutOfHole(_LiftOut):
    name, mtbench_id, xml = "pick-out-of-hole-v3", 30, "sawyer_xyz/sawyer_pick_out_of_hole.xml"
    hand_low = (-0.5, 0.40, -0.05)
    obj_low = (0.0, 0.75, 0.02)
    obj_high = (0.0, 0.75, 0.02)
    goal_low = (-0.1, 0.5, 0.15)
    goal_high = (0.1, 0.6, 0.3)
    floor_margin, pinch_opening = 0.02, 0.33
    caging_params = dict(
        obj_radius=0.015,
        pad_success_thresh=0.02,
        object_reach_radius=0.01,
        xz_thresh=0.03,
        desired_gripper_effort=0.1,
        high_density=True,
    )

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec[:, :3]
        s.target_pos[ids] = vec[:, 3:]
        s.set_obj_xyz(ids, vec[:, :3])

    def _floor(self, s: TaskState, hand: torch.Tensor) -> torch.Tensor:
        return _funnel_floor(norm(hand[:, :2] - s.obj_init_pos[:, :2]), 0.03, 0.015, 0.15)

    def _in_place(self, s: TaskState, obj_to_target: torch.Tensor) -> torch.Tensor:
        # Meta-World declares `_TARGET_RADIUS = 0.02` for this task; only this bound reads the value
        return tolerance(obj_to_target, 0.0, 0.02, norm(s.obj_init_pos - s.target_pos), "long_tail")

    def evaluate(self, s, obs, action):
        # the fingertip centre stands for the hand here
        reward = self._reward(s, obs, action, s.tcp_center)
        return reward, norm(obs[:, 4:7] - s.target_pos) <= 0.07


class BinPicking(_LiftOut):
    name, mtbench_id, xml = "bin-picking-v3", 2, "sawyer_xyz/sawyer_bin_picking.xml"
    hand_low = (-0.5, 0.40, 0.07)
    obj_low = (-0.21, 0.65, 0.02)
    obj_high = (-0.03, 0.75, 0.02)
    # the goal part of the reset vector is drawn but unused: the goal is the fixed target bin
    goal_low = (0.1199, 0.699, -0.001)
    goal_high = (0.1201, 0.701, 0.001)
    floor_margin, pinch_opening = 0.05, 0.43
    caging_params = dict(
        obj_radius=0.015,
        pad_success_thresh=0.05,
        object_reach_radius=0.01,
        xz_thresh=0.01,
        desired_gripper_effort=0.7,
        high_density=True,
    )

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        # the object keeps the height it settled at during the hand reset
        z = s.const(s.reset_info.obj_body_pos["obj"][2]).expand(len(ids), 1)
        s.obj_init_pos[ids] = torch.cat((vec[:, :2], z), dim=1)
        s.target_pos[ids] = s.const(s.reset_info.obj_body_pos["bin_goal"])
        s.set_obj_xyz(ids, s.obj_init_pos[ids])
        margin = s.episode.get("target_to_obj_init")
        if margin is None:
            margin = s.episode["target_to_obj_init"] = s.target_pos.new_zeros(s.n)
        margin[ids] = torch.nan  # filled in by the episode's first step

    def _floor(self, s: TaskState, hand: torch.Tensor) -> torch.Tensor:
        # two funnels, round the start and round the target bin; the lower one counts
        return torch.minimum(
            _funnel_floor(norm(hand[:, :2] - s.obj_init_pos[:, :2]), 0.03, 0.02, 0.2),
            _funnel_floor(norm(hand[:, :2] - s.target_pos[:, :2]), 0.03, 0.02, 0.2),
        )

    def _in_place(self, s: TaskState, obj_to_target: torch.Tensor) -> torch.Tensor:
        # sic: Meta-World sets the margin on the episode's first step, not at reset, i.e. after one action
        margin = s.episode.get("target_to_obj_init")
        if margin is None:  # scoring recorded states without a reset (the parity replay)
            margin = s.episode["target_to_obj_init"] = torch.full_like(obj_to_target, torch.nan)
        margin.copy_(torch.where(torch.isnan(margin), obj_to_target, margin))
        return tolerance(obj_to_target, 0.0, 0.05, margin, "long_tail")

    def evaluate(self, s, obs, action):
        # the observed hand position stands for the hand here
        reward = self._reward(s, obs, action, obs[:, :3])
        return reward, norm(obs[:, 4:7] - s.target_pos) <= 0.05
