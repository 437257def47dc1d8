"""button-press-topdown: press the button in a box placed at the reset vector straight down."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm


class ButtonPressTopdown(MetaWorldTask):
    name, mtbench_id, xml = "button-press-topdown-v3", 4, "sawyer_xyz/sawyer_button_press_topdown.xml"
    hand_init_pos = (0.0, 0.4, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.8, 0.115)
    obj_high = (0.1, 0.9, 0.115)
    goal_low, goal_high = hand_low, hand_high  # Meta-World's goal_space is the hand box
    episode_attrs = {"obj_to_target_init": "_obj_to_target_init"}

    # the reset vector is the box position only
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.set_body_pos(ids, "box", vec)
        s.sim.forward(ids)  # the goal is the box's "hole" site once the box has moved
        s.target_pos[ids] = s.site("hole")[ids]
        init = s.episode.get("obj_to_target_init")
        if init is None:
            init = s.episode["obj_to_target_init"] = s.target_pos.new_zeros(s.n)
        init[ids] = (s.target_pos[ids, 2] - s.site("buttonStart")[ids, 2]).abs()

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("button") + s.const((0.0, 0.0, 0.193)), s.body_quat("button")

    def evaluate(self, s, obs, action):
        obj, tcp = obs[:, 4:7], s.tcp_center
        tcp_to_obj = norm(obj - tcp)
        # sic: the reach margin is measured from the button's current position, not its initial one
        near_button = tolerance(tcp_to_obj, 0.0, 0.01, norm(obj - s.init_tcp), "long_tail")
        obj_to_target = (s.target_pos[:, 2] - obj[:, 2]).abs()
        pressed = tolerance(obj_to_target, 0.0, 0.005, s.episode["obj_to_target_init"], "long_tail")
        reward = 5.0 * hamacher_product(1.0 - obs[:, 3], near_button)
        reward = torch.where(tcp_to_obj <= 0.03, reward + 5.0 * pressed, reward)
        return reward, obj_to_target <= 0.024
