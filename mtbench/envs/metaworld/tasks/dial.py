"""dial-turn: turn a knob on a dial placed at the reset vector by pushing its rim."""

from __future__ import annotations

import numpy as np
import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm

_DIAL_RADIUS = 0.05
# where the fingertips push from, relative to the rim point
_PUSH_OFFSET = (0.05, 0.02, 0.09)


class DialTurn(MetaWorldTask):
    # reset_model moves the dial and reads the observation without mj_forward: the hand in it is one
    # substep stale (7.7e-5 m; verified by calling mj_forward after the reference's reset)
    reset_obs_stale_in_reference = True
    name, mtbench_id, xml = "dial-turn-v3", 11, "sawyer_xyz/sawyer_dial.xml"
    # Meta-World stores this start as float32, so the mocap target carries float32 rounding
    hand_init_pos = tuple(float(v) for v in np.float32((0.0, 0.6, 0.2)))
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.7, 0.0)
    obj_high = (0.1, 0.8, 0.0)
    goal_low = (-0.1, 0.73, 0.0299)
    goal_high = (0.1, 0.83, 0.0301)
    TARGET_RADIUS = 0.07
    episode_attrs = {"push_pos_init": "dial_push_position"}

    # the reset vector is the dial position only; the goal box just bounds the observation
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.target_pos[ids] = vec + s.const((0.0, 0.03, 0.03))
        s.set_body_pos(ids, "dial", vec)
        s.sim.forward(ids)  # the push point at reset is read from the moved dial
        init = s.episode.get("push_pos_init")
        if init is None:
            init = s.episode["push_pos_init"] = s.target_pos.new_zeros(s.n, 3)
        init[ids] = self._rim(s)[ids] + s.const(_PUSH_OFFSET)

    def _rim(self, s: TaskState) -> torch.Tensor:
        """The rim point the knob's pointer faces: -y from the dial's centre at angle 0."""
        angle = s.joint_qpos("knob_Joint_1")
        offset = torch.stack((torch.sin(angle), -torch.cos(angle), torch.zeros_like(angle)), dim=1)
        return s.body("dial") + _DIAL_RADIUS * offset

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return self._rim(s), s.body_quat("dial")  # sic: MuJoCo's (w, x, y, z) order, as Meta-World has it

    def evaluate(self, s, obs, action):
        radius, reach_radius = self.TARGET_RADIUS, 0.005
        obj, tcp, push_init = obs[:, 4:7], s.tcp_center, s.episode["push_pos_init"]
        # sic: the distance to the goal is the rim point's, the margin the push point's at reset
        target_to_obj = norm(obj - s.target_pos)
        in_place_margin = (norm(push_init - s.target_pos) - radius).abs()
        in_place = tolerance(target_to_obj, 0.0, radius, in_place_margin, "long_tail")
        tcp_to_push = norm(obj + s.const(_PUSH_OFFSET) - tcp)
        reach_margin = (norm(push_init - s.init_tcp) - reach_radius).abs()
        reach = tolerance(tcp_to_push, 0.0, reach_radius, reach_margin, "gaussian")
        reach = hamacher_product(reach, action[:, 3].clamp(0.0, 1.0))
        return 10.0 * hamacher_product(reach, in_place), target_to_obj <= radius
