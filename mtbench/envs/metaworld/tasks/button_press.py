"""button-press and its variants: press the button in a box placed at the reset vector, straight down
(topdown) or from the front, with or without a wall in front of the box."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm


class _ButtonPress(MetaWorldTask):
    hand_init_pos = (0.0, 0.4, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    goal_low, goal_high = hand_low, hand_high  # Meta-World's goal_space is the hand box
    episode_attrs = {"obj_to_target_init": "_obj_to_target_init"}
    axis: int  # the button travels along z (topdown) or y (front)
    button_offset: tuple[float, float, float]  # from the button body to its face
    zero_button: bool  # the front-facing tasks write the button joint (`_set_obj_xyz(0)`) at reset
    near_radius: float  # the reach term is 1 within this distance of the button face
    press_within: float  # pressing pays once the fingertips are this close
    weights: tuple[float, float]  # (reach, press)
    success_radius: float

    # the reset vector is the box position only
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.set_body_pos(ids, "box", vec)
        if self.zero_button:
            s.sim.qpos[ids, 9] = 0.0
            s.sim.qvel[ids, 9] = 0.0
        s.sim.forward(ids)  # the goal is the box's "hole" site once the box has moved
        s.target_pos[ids] = s.site("hole")[ids]
        init = s.episode.get("obj_to_target_init")
        if init is None:
            init = s.episode["obj_to_target_init"] = s.target_pos.new_zeros(s.n)
        init[ids] = (s.target_pos[ids, self.axis] - s.site("buttonStart")[ids, self.axis]).abs()

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("button") + s.const(self.button_offset), s.body_quat("button")

    def _gripper(self, obs: torch.Tensor) -> torch.Tensor:
        """The gripper factor of the reach term; Meta-World calls it `tcp_closed` but it is the opening
        (sic): these tasks pay for an open gripper."""
        return obs[:, 3].clamp(min=0.0)

    def _reward(
        self, obs: torch.Tensor, tcp_to_obj: torch.Tensor, near: torch.Tensor, pressed: torch.Tensor
    ) -> torch.Tensor:
        reach_w, press_w = self.weights
        reward = reach_w * hamacher_product(self._gripper(obs), near)
        return torch.where(tcp_to_obj <= self.press_within, reward + press_w * pressed, reward)

    def evaluate(self, s, obs, action):
        obj, tcp = obs[:, 4:7], s.tcp_center
        tcp_to_obj = norm(obj - tcp)
        # sic: the reach margin is measured from the button's current position, not its initial one
        near = tolerance(tcp_to_obj, 0.0, self.near_radius, norm(obj - s.init_tcp), "long_tail")
        obj_to_target = (s.target_pos[:, self.axis] - obj[:, self.axis]).abs()
        pressed = tolerance(obj_to_target, 0.0, 0.005, s.episode["obj_to_target_init"], "long_tail")
        return self._reward(obs, tcp_to_obj, near, pressed), obj_to_target <= self.success_radius


class ButtonPressTopdown(_ButtonPress):
    name, mtbench_id, xml = "button-press-topdown-v3", 4, "sawyer_xyz/sawyer_button_press_topdown.xml"
    obj_low = (-0.1, 0.8, 0.115)
    obj_high = (0.1, 0.9, 0.115)
    axis, button_offset, zero_button = 2, (0.0, 0.0, 0.193), False
    near_radius, press_within, weights, success_radius = 0.01, 0.03, (5.0, 5.0), 0.024

    def _gripper(self, obs: torch.Tensor) -> torch.Tensor:
        # the one variant that pays for a closed gripper
        return 1.0 - obs[:, 3]


class ButtonPressTopdownWall(_ButtonPress):
    name, mtbench_id, xml = "button-press-topdown-wall-v3", 5, "sawyer_xyz/sawyer_button_press_topdown_wall.xml"
    obj_low = (-0.1, 0.8, 0.115)
    obj_high = (0.1, 0.9, 0.115)
    axis, button_offset, zero_button = 2, (0.0, 0.0, 0.193), False
    near_radius, press_within, weights, success_radius = 0.01, 0.03, (5.0, 5.0), 0.024


class ButtonPress(_ButtonPress):
    name, mtbench_id, xml = "button-press-v3", 6, "sawyer_xyz/sawyer_button_press.xml"
    obj_low = (-0.1, 0.85, 0.115)
    obj_high = (0.1, 0.9, 0.115)
    axis, button_offset, zero_button = 1, (0.0, -0.193, 0.0), True
    near_radius, press_within, weights, success_radius = 0.05, 0.05, (2.0, 8.0), 0.02


class ButtonPressWall(_ButtonPress):
    name, mtbench_id, xml = "button-press-wall-v3", 7, "sawyer_xyz/sawyer_button_press_wall.xml"
    obj_low = (-0.05, 0.85, 0.1149)
    obj_high = (0.05, 0.9, 0.1151)
    axis, button_offset, zero_button = 1, (0.0, -0.193, 0.0), True
    near_radius, press_within, success_radius = 0.01, 0.07, 0.03

    def _reward(
        self, obs: torch.Tensor, tcp_to_obj: torch.Tensor, near: torch.Tensor, pressed: torch.Tensor
    ) -> torch.Tensor:
        # far from the button: reach with the gripper closed; close by: a flat bonus, more for an open
        # gripper, plus the squared press term (the wall makes the approach worth more than elsewhere)
        far = 2.0 * hamacher_product((1.0 - obs[:, 3]) / 2.0, near)
        close = 2.0 + 2.0 * (1.0 + obs[:, 3]) + 4.0 * pressed**2
        return torch.where(tcp_to_obj > self.press_within, far, close)
