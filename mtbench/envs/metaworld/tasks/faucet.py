"""faucet-open and faucet-close: turn the faucet handle about its base, placed at the reset vector, to
the left or to the right."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm

_HANDLE_LENGTH = 0.175


class _Faucet(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_faucet.xml"
    hand_init_pos = (0.0, 0.4, 0.2)
    hand_low = (-0.5, 0.40, -0.15)
    hand_high = (0.5, 1.0, 0.5)
    goal_low, goal_high = hand_low, hand_high  # Meta-World's goal_space is the hand box
    TARGET_RADIUS = 0.07  # Meta-World's `_target_radius`; its `TARGET_RADIUS` is not read
    handle_site: str
    turn: float  # +1: the goal is to the right of the base (open), -1: to the left (close)
    obj_shift: tuple[float, float, float]  # added to the observed handle before the reward reads it

    # the reset vector is the faucet base position only
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.set_body_pos(ids, "faucetBase", vec)
        s.target_pos[ids] = vec + s.const((self.turn * _HANDLE_LENGTH, 0.0, 0.125))

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.site(self.handle_site) + s.const((0.0, 0.0, -0.01)), s.body_quat("faucetBase")

    def evaluate(self, s, obs, action):
        radius = self.TARGET_RADIUS
        obj, target = obs[:, 4:7] + s.const(self.obj_shift), s.target_pos
        target_to_obj = norm(obj - target)
        # sic: both margins start from the faucet base (`obj_init_pos`), not from the handle
        init_to_target = norm(s.obj_init_pos - target)
        in_place = tolerance(target_to_obj, 0.0, radius, (init_to_target - radius).abs(), "long_tail")
        reach_radius = 0.01
        tcp_to_obj_init = norm(s.obj_init_pos - s.init_tcp)
        reach = tolerance(
            norm(obj - s.tcp_center), 0.0, reach_radius, (tcp_to_obj_init - reach_radius).abs(), "gaussian"
        )
        success = target_to_obj <= radius
        reward = 2.0 * (2.0 * reach + 3.0 * in_place)
        return torch.where(success, torch.full_like(reward, 10.0), reward), success


class FaucetOpen(_Faucet):
    # Meta-World's reset never recomputes kinematics after the hand reset's last substep (faucet-close
    # does), so its reset observation shows the hand one substep (2.5 ms) back: 5e-5 m off (measured)
    reset_obs_stale_in_reference = True
    name, mtbench_id = "faucet-open-v3", 20
    obj_low = (-0.05, 0.8, 0.0)
    obj_high = (0.05, 0.85, 0.0)
    handle_site, turn, obj_shift = "handleStartOpen", 1.0, (-0.04, 0.0, 0.03)


class FaucetClose(_Faucet):
    name, mtbench_id = "faucet-close-v3", 19
    obj_low = (-0.1, 0.8, 0.0)
    obj_high = (0.1, 0.85, 0.0)
    handle_site, turn, obj_shift = "handleStartClose", -1.0, (0.0, 0.0, 0.0)
