"""coffee-button, coffee-pull and coffee-push: a coffee machine and a mug on the table; press the
machine's button, pull the mug away from under the spout, or push it there."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm

_SPOUT = (0.0, -0.22, 0.0)  # where the mug stands under the spout, relative to the machine


class _Coffee(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_coffee.xml"
    hand_init_pos = (0.0, 0.4, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)

    @staticmethod
    def _set_mug(s: TaskState, ids: torch.Tensor, pos: torch.Tensor) -> None:
        """Meta-World's `_set_obj_xyz` of this scene: the mug's free joint leads qpos, but it zeroes
        qvel[9:15], the velocities of the last arm joints and the fingers (sic), not the mug's."""
        s.sim.qpos[ids, 0:3] = pos
        s.sim.qvel[ids, 9:15] = 0.0


class CoffeeButton(_Coffee):
    name, mtbench_id = "coffee-button-v3", 8
    max_dist = 0.03  # the button's travel
    obj_low = (-0.1, 0.8, -0.001)
    obj_high = (0.1, 0.9, 0.001)
    # the button's goal box follows from the machine's, as Meta-World computes it
    goal_low = tuple(a + b for a, b in zip(obj_low, (-0.001, -0.22 + max_dist, 0.299)))
    goal_high = tuple(a + b for a, b in zip(obj_high, (0.001, -0.22 + max_dist, 0.301)))

    # the reset vector is the machine position only
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.set_body_pos(ids, "coffee_machine", vec)
        self._set_mug(s, ids, vec + s.const(_SPOUT))
        s.target_pos[ids] = vec + s.const((0.0, _SPOUT[1], 0.3)) + s.const((0.0, self.max_dist, 0.0))

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        quat = s.const((1.0, 0.0, 0.0, 0.0)).expand(s.n, 4)
        return s.site("buttonStart"), quat

    def evaluate(self, s, obs, action):
        obj = obs[:, 4:7]
        tcp_to_obj = norm(obj - s.tcp_center)
        # sic: the reach margin is measured from the button's current position, not its initial one
        near = tolerance(tcp_to_obj, 0.0, 0.05, norm(obj - s.init_tcp), "long_tail")
        obj_to_target = (s.target_pos[:, 1] - obj[:, 1]).abs()
        pressed = tolerance(obj_to_target, 0.0, 0.005, self.max_dist, "long_tail")
        # `tcp_closed` in Meta-World, but it is the opening (sic): an open gripper pays
        reward = 2.0 * hamacher_product(obs[:, 3].clamp(min=0.0), near)
        reward = torch.where(tcp_to_obj <= 0.05, reward + 8.0 * pressed, reward)
        return reward, obj_to_target <= 0.02


class _CoffeeMug(_Coffee):
    machine_at_goal: bool  # the machine stands behind the goal (push) or behind the mug (pull)

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        mug, goal = vec[:, :3], vec[:, 3:]
        self._set_mug(s, ids, mug)
        s.obj_init_pos[ids] = mug
        s.set_body_pos(ids, "coffee_machine", (goal if self.machine_at_goal else mug) - s.const(_SPOUT))
        s.target_pos[ids] = goal

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("obj"), s.geom_quat("mug")

    def evaluate(self, s, obs, action):
        obj, tcp_opened, target = obs[:, 4:7], obs[:, 3], s.target_pos
        # x and y errors weigh double
        scale = s.const((2.0, 2.0, 1.0))
        target_to_obj = norm((obj - target) * scale)
        in_place = tolerance(target_to_obj, 0.0, 0.05, norm((s.obj_init_pos - target) * scale), "long_tail")
        tcp_to_obj = norm(obj - s.tcp_center)
        grasped = s.caging(
            action,
            obj,
            obj_radius=0.02,
            pad_success_thresh=0.05,
            object_reach_radius=0.04,
            xz_thresh=0.05,
            desired_gripper_effort=0.7,
            medium_density=True,
        )
        reward = hamacher_product(grasped, in_place)
        reward = torch.where((tcp_to_obj < 0.04) & (tcp_opened > 0), reward + 1.0 + 5.0 * in_place, reward)
        reward = torch.where(target_to_obj < 0.05, torch.full_like(reward, 10.0), reward)
        return reward, norm(obj - target) <= 0.07


class CoffeePull(_CoffeeMug):
    name, mtbench_id = "coffee-pull-v3", 9
    obj_low = (-0.05, 0.7, -0.001)
    obj_high = (0.05, 0.75, 0.001)
    goal_low = (-0.1, 0.55, -0.001)
    goal_high = (0.1, 0.65, 0.001)
    machine_at_goal = False


class CoffeePush(_CoffeeMug):
    name, mtbench_id = "coffee-push-v3", 10
    obj_low = (-0.1, 0.55, -0.001)
    obj_high = (0.1, 0.65, 0.001)
    goal_low = (-0.05, 0.7, -0.001)
    goal_high = (0.05, 0.75, 0.001)
    machine_at_goal = True
