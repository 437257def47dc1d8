"""reach, push and pick-place, their wall variants, and push-back: one object on the table (a puck; a block
in push-back), object and goal drawn at least 15 cm apart."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm

# the caging radii and thresholds Meta-World gives a 1.5 cm puck held by the pads (push, the wall variants,
# hand-insert)
PUCK_CAGING = dict(obj_radius=0.015, pad_success_thresh=0.05, object_reach_radius=0.01, xz_thresh=0.005)


class _Puck(MetaWorldTask):
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.6, 0.02)
    obj_high = (0.1, 0.7, 0.02)

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        # the wall variants and push-back read objGeom's position instead: that geom sits unrotated at the
        # body's origin, so it is the same point
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
        grasped = s.caging(action, obj, **PUCK_CAGING, high_density=True)
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


def pad_gripping_caging(
    s: TaskState, obj: torch.Tensor, obj_radius: float, grip_margin: float, xz_margin: float
) -> torch.Tensor:
    """push-back's and soccer's own caging: signed pad offsets as pick-place's, plus a tighter "gripping"
    band in y that counts once the object is caged; the gripper action plays no part. The margins use
    `init_left_pad`/`init_right_pad`, Meta-World's live views of `data.xpos`: the *current* pads."""
    pad_margin = 0.05
    left, right = s.body("leftpad"), s.body("rightpad")
    right_delta, left_delta = obj[:, 1] - right[:, 1], left[:, 1] - obj[:, 1]
    right_margin = (right_delta.abs() - pad_margin).abs()
    left_margin = (left_delta.abs() - pad_margin).abs()
    y_caging = hamacher_product(
        tolerance(right_delta, obj_radius, pad_margin, right_margin, "long_tail"),
        tolerance(left_delta, obj_radius, pad_margin, left_margin, "long_tail"),
    )
    y_gripping = hamacher_product(
        tolerance(right_delta, obj_radius, grip_margin, right_margin, "long_tail"),
        tolerance(left_delta, obj_radius, grip_margin, left_margin, "long_tail"),
    )
    xz = [0, 2]
    xz_caging = tolerance(
        norm(s.tcp_center[:, xz] - obj[:, xz]),
        0.0,
        xz_margin,
        norm(s.obj_init_pos[:, xz] - s.init_tcp[:, xz]) - xz_margin,
        "long_tail",
    )
    caging = hamacher_product(y_caging, xz_caging)
    gripping = torch.where(caging > 0.95, y_gripping, torch.zeros_like(y_gripping))
    return (caging + gripping) / 2


def _around_wall(
    s: TaskState, obj: torch.Tensor, midpoint: torch.Tensor, scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The wall variants' two in-place terms: towards a midpoint that clears the wall (errors weighted by
    `scale`), then towards the target."""
    radius = 0.05
    to_mid = tolerance(
        norm((obj - midpoint) * scale), 0.0, radius, norm((s.obj_init_pos - midpoint) * scale), "long_tail"
    )
    to_target = tolerance(norm(obj - s.target_pos), 0.0, radius, norm(s.obj_init_pos - s.target_pos), "long_tail")
    return to_mid, to_target


class ReachWall(Reach):
    name, mtbench_id, xml = "reach-wall-v3", 41, "sawyer_xyz/sawyer_reach_wall_v3.xml"
    obj_low = (-0.05, 0.6, 0.015)
    obj_high = (0.05, 0.65, 0.015)
    goal_low = (-0.05, 0.85, 0.05)
    goal_high = (0.05, 0.9, 0.3)


class PushWall(Push):
    name, mtbench_id, xml = "push-wall-v3", 39, "sawyer_xyz/sawyer_push_wall_v3.xml"
    obj_low = (-0.05, 0.6, 0.015)
    obj_high = (0.05, 0.65, 0.015)
    goal_low = (-0.05, 0.85, 0.01)
    goal_high = (0.05, 0.9, 0.02)

    def evaluate(self, s, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], s.tcp_center
        # the midpoint rides at the puck's current height, so only x and y steer it round the wall
        midpoint = torch.stack((torch.full_like(obj[:, 0], -0.05), torch.full_like(obj[:, 0], 0.77), obj[:, 2]), 1)
        to_mid, to_target = _around_wall(s, obj, midpoint, s.const((3.0, 1.0, 1.0)))
        grasped = s.caging(action, obj, **PUCK_CAGING, high_density=True)
        pushing = torch.where(
            obj[:, 1] > 0.75, 2.0 * grasped + 1.0 + 4.0 + 3.0 * to_target, 2.0 * grasped + 1.0 + 4.0 * to_mid
        )
        reward = torch.where((norm(obj - tcp) < 0.02) & (tcp_opened > 0), pushing, 2.0 * grasped)
        obj_to_target = norm(obj - s.target_pos)
        reward = torch.where(obj_to_target < 0.05, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.07


class PickPlaceWall(PickPlace):
    name, mtbench_id, xml = "pick-place-wall-v3", 32, "sawyer_xyz/sawyer_pick_place_wall_v3.xml"
    obj_low = (-0.05, 0.6, 0.015)
    obj_high = (0.05, 0.65, 0.015)
    goal_low = (-0.05, 0.85, 0.05)
    goal_high = (0.05, 0.9, 0.3)

    def evaluate(self, s, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], s.tcp_center
        # lift over the wall first: a midpoint above it, height errors weighted triple
        midpoint = torch.stack(
            (s.target_pos[:, 0], torch.full_like(obj[:, 0], 0.77), torch.full_like(obj[:, 0], 0.25)), 1
        )
        to_mid, to_target = _around_wall(s, obj, midpoint, s.const((1.0, 1.0, 3.0)))
        # unlike pick-place, the base class's caging (no density averaging)
        grasped = s.caging(action, obj, **PUCK_CAGING)
        reward = hamacher_product(grasped, to_mid)
        lifted = (norm(obj - tcp) < 0.02) & (tcp_opened > 0) & (obj[:, 2] - 0.015 > s.obj_init_pos[:, 2])
        carried = torch.where(obj[:, 1] > 0.75, reward + 1.0 + 4.0 + 3.0 * to_target, reward + 1.0 + 4.0 * to_mid)
        reward = torch.where(lifted, carried, reward)
        obj_to_target = norm(obj - s.target_pos)
        reward = torch.where(obj_to_target < 0.05, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.07


class PushBack(Push):
    name, mtbench_id, xml = "push-back-v3", 37, "sawyer_xyz/sawyer_push_back_v3.xml"
    hand_init_pos = (0.0, 0.6000000238418579, 0.20000000298023224)  # sic: Meta-World's float32 (0, 0.6, 0.2)
    obj_low = (-0.1, 0.8, 0.02)
    obj_high = (0.1, 0.85, 0.02)
    goal_low = (-0.1, 0.6, 0.0199)
    goal_high = (0.1, 0.7, 0.0201)
    OBJ_RADIUS = 0.007

    def evaluate(self, s, obs, action):
        radius = 0.05
        obj, tcp_opened = obs[:, 4:7], obs[:, 3]
        target_to_obj = norm(obj - s.target_pos)
        target_to_obj_init = norm(s.obj_init_pos - s.target_pos)
        in_place = tolerance(target_to_obj, 0.0, radius, target_to_obj_init, "long_tail")
        grasped = pad_gripping_caging(
            s, obj, obj_radius=self.OBJ_RADIUS, grip_margin=self.OBJ_RADIUS + 0.003, xz_margin=0.01
        )
        reward = hamacher_product(grasped, in_place)
        # pushing counts with the fingers near, half closed, once the puck has moved 1 cm towards the goal
        pushing = (
            (norm(obj - s.tcp_center) < 0.01)
            & (tcp_opened > 0)
            & (tcp_opened < 0.55)
            & (target_to_obj_init - target_to_obj > 0.01)
        )
        reward = torch.where(pushing, reward + 1.0 + 5.0 * in_place, reward)
        reward = torch.where(target_to_obj < radius, torch.full_like(reward, 10.0), reward)
        return reward, target_to_obj <= 0.07
