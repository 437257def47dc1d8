"""handle-press, handle-pull and their sideways variants: a red grip on a vertical slide in a box placed
at the reset vector, pushed down to the box's goalPress site or pulled up to its goalPull site."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm

_FRONT, _SIDEWAYS = "sawyer_xyz/sawyer_handle_press.xml", "sawyer_xyz/sawyer_handle_press_sideways.xml"
# the box faces the robot (front) or stands off to the side at x = -0.3, turned 90 degrees (sideways)
_FRONT_BOX = ((-0.1, 0.8, -0.001), (0.1, 0.9, 0.001))
_SIDE_BOX = ((-0.35, 0.65, -0.001), (-0.25, 0.75, 0.001))


class _Handle(MetaWorldTask):
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    goal_low, goal_high = hand_low, hand_high  # the sideways tasks' goal_space is the hand box
    handle_at_reset: float  # the slide joint's qpos written at reset (0 is up, -0.1 down)
    goal_site: str  # the box's site that becomes the goal
    handle_site: str  # the handle's site in the observation

    # the reset vector is the box position only
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.set_body_pos(ids, "box", vec)
        joint = int(s.model.body("handle_link").jntadr[0])
        s.sim.qpos[ids, int(s.model.jnt_qposadr[joint])] = self.handle_at_reset
        s.sim.qvel[ids, int(s.model.jnt_dofadr[joint])] = 0.0
        s.sim.forward(ids)  # the goal and the handle's start are sites of the moved box
        s.target_pos[ids] = s.site(self.goal_site)[ids]

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.site(self.handle_site), torch.zeros(s.n, 4, dtype=s.sim.dtype, device=s.sim.device)


class _HandlePress(_Handle):
    handle_at_reset, goal_site, handle_site = -0.001, "goalPress", "handleStart"
    TARGET_RADIUS = 0.02
    episode_attrs = {"handle_init_pos": "_handle_init_pos"}

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        super().place(s, ids, vec)
        init = s.episode.get("handle_init_pos")
        if init is None:
            init = s.episode["handle_init_pos"] = s.target_pos.new_zeros(s.n, 3)
        init[ids] = s.site(self.handle_site)[ids]

    def evaluate(self, s, obs, action):
        radius, handle_radius = self.TARGET_RADIUS, 0.02
        obj, tcp, init = obs[:, 4:7], s.tcp_center, s.episode["handle_init_pos"]
        target_to_obj = (obj[:, 2] - s.target_pos[:, 2]).abs()
        init_to_target = (init[:, 2] - s.target_pos[:, 2]).abs()
        in_place = tolerance(target_to_obj, 0.0, radius, (init_to_target - radius).abs(), "long_tail")
        reach_margin = (norm(init - s.init_tcp) - handle_radius).abs()
        reach = tolerance(norm(obj - tcp), 0.0, handle_radius, reach_margin, "long_tail")
        success = target_to_obj <= radius
        reward = torch.where(success, torch.ones_like(reach), hamacher_product(reach, in_place))
        return 10.0 * reward, success


class HandlePressSide(_HandlePress):
    name, mtbench_id, xml = "handle-press-side-v3", 23, _SIDEWAYS
    obj_low, obj_high = _SIDE_BOX


class HandlePress(_HandlePress):
    name, mtbench_id, xml = "handle-press-v3", 24, _FRONT
    obj_low, obj_high = _FRONT_BOX
    goal_low, goal_high = (-0.1, 0.55, 0.04), (0.1, 0.70, 0.08)  # bounds only the observation's goal slot


class _HandlePull(_Handle):
    handle_at_reset, goal_site = -0.1, "goalPull"
    TARGET_RADIUS = 0.05
    obj_radius: float  # caging parameters
    pad_success_thresh: float
    success_radius: float

    def _in_place(self, s: TaskState, obj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(distance to the goal, in-place reward)."""
        raise NotImplementedError

    def _lifted(self, s: TaskState, obj: torch.Tensor) -> torch.Tensor:
        """Whether the handle counts as raised, which (held and open-gripped) unlocks the bonus."""
        raise NotImplementedError

    def evaluate(self, s, obs, action):
        obj, tcp_opened = obs[:, 4:7], obs[:, 3]
        target_to_obj, in_place = self._in_place(s, obj)
        grasped = s.caging(
            action,
            obj,
            obj_radius=self.obj_radius,
            pad_success_thresh=self.pad_success_thresh,
            object_reach_radius=0.01,
            xz_thresh=0.01,
            high_density=True,
        )
        reward = hamacher_product(grasped, in_place)
        lifted = (norm(obj - s.tcp_center) < 0.035) & (tcp_opened > 0) & self._lifted(s, obj)
        reward = torch.where(lifted, reward + 1.0 + 5.0 * in_place, reward)
        reward = torch.where(target_to_obj < self.TARGET_RADIUS, torch.full_like(reward, 10.0), reward)
        return reward, target_to_obj <= self.success_radius


class HandlePullSide(_HandlePull):
    name, mtbench_id, xml = "handle-pull-side-v3", 25, _SIDEWAYS
    obj_low, obj_high = (-0.35, 0.65, 0.0), (-0.25, 0.75, 0.0)
    handle_site, obj_radius, pad_success_thresh, success_radius = "handleCenter", 0.032, 0.06, 0.08

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        super().place(s, ids, vec)
        # Meta-World replaces the box position by the handle's, which the caging reward then reads
        s.obj_init_pos[ids] = s.site(self.handle_site)[ids]

    def _in_place(self, s, obj):
        target_to_obj = norm(obj - s.target_pos)
        margin = norm(s.obj_init_pos - s.target_pos)
        return target_to_obj, tolerance(target_to_obj, 0.0, self.TARGET_RADIUS, margin, "long_tail")

    def _lifted(self, s, obj):
        return obj[:, 2] - 0.01 > s.obj_init_pos[:, 2]


class HandlePull(_HandlePull):
    name, mtbench_id, xml = "handle-pull-v3", 26, _FRONT
    obj_low, obj_high = _FRONT_BOX
    goal_low, goal_high = (-0.1, 0.55, 0.04), (0.1, 0.70, 0.18)  # bounds only the observation's goal slot
    handle_site, obj_radius, pad_success_thresh = "handleRight", 0.022, 0.05
    success_radius = _HandlePull.TARGET_RADIUS

    def _in_place(self, s, obj):
        # height only; the margin is measured from the box's z (its floor), not the handle's
        target_to_obj = (s.target_pos[:, 2] - obj[:, 2]).abs()
        margin = (s.target_pos[:, 2] - s.obj_init_pos[:, 2]).abs()
        return target_to_obj, tolerance(target_to_obj, 0.0, self.TARGET_RADIUS, margin, "long_tail")

    def _lifted(self, s, obj):
        return obj[:, 1] - 0.01 > s.obj_init_pos[:, 2]  # sic: the handle's y against the box's z
