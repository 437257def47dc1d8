"""door-open and door-close: swing the hinged door by its handle; the door stands at the reset vector."""

from __future__ import annotations

import math

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm


class _Door(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_door_pull.xml"
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (0.0, 0.85, 0.15)
    obj_high = (0.1, 0.95, 0.15)
    door_angle: float  # doorjoint qpos written at reset
    target_shift: tuple[float, float, float]  # goal relative to the door

    # the reset vector is the door position only; the goal box just bounds the observation
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.target_pos[ids] = vec + s.const(self.target_shift)
        s.set_body_pos(ids, "door", vec)
        adr = s.model.joint("doorjoint")
        s.sim.qpos[ids, int(adr.qposadr[0])] = self.door_angle
        s.sim.qvel[ids, int(adr.dofadr[0])] = 0.0

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.geom("handle"), s.geom_quat("handle")


class DoorOpen(_Door):
    name, mtbench_id = "door-open-v3", 16
    hand_init_pos = (0.0, 0.6, 0.2)
    goal_low = (-0.3, 0.4, 0.1499)
    goal_high = (-0.2, 0.5, 0.1501)
    door_angle, target_shift = 0.0, (-0.3, -0.45, 0.0)

    def evaluate(self, s, obs, action):
        hand, door = obs[:, :3], obs[:, 4:7] + s.const((-0.05, 0.0, 0.0))
        # a log funnel around the handle keeps the hand above it until it is close in xy
        radius = norm(hand[:, :2] - door[:, :2])
        threshold = 0.12
        far = radius > threshold
        floor = torch.where(far, 0.04 * torch.log(torch.where(far, radius - threshold, 1.0)) + 0.4, 0.0)
        below = tolerance(floor - hand[:, 2], 0.0, 0.01, floor / 2.0, "long_tail")
        above_floor = torch.where(hand[:, 2] >= floor, torch.ones_like(floor), below)
        to_handle = norm(hand - door - s.const((0.05, 0.03, -0.01)))
        in_place = tolerance(to_handle, 0.0, threshold / 2.0, 0.5, "long_tail")
        ready = hamacher_product(above_floor, in_place)

        theta = s.joint_qpos("doorjoint")
        opened = 0.2 * (theta < -math.pi / 90.0).to(theta.dtype) + 0.8 * tolerance(
            math.pi / 2.0 + math.pi / 6 + theta, 0.0, 0.5, math.pi / 3.0, "long_tail"
        )
        grab = (action[:, 3].clamp(-1.0, 1.0) + 1.0) / 2.0
        reward = 2.0 * hamacher_product(ready, grab) + 8.0 * opened
        success = (obs[:, 4] - s.target_pos[:, 0]).abs() <= 0.08
        return torch.where(success, torch.full_like(reward, 10.0), reward), success


class DoorClose(_Door):
    name, mtbench_id = "door-close-v3", 13
    # the 50-step hand reset ends mid-swing out here (joints still at ~2 rad/s), so the settled hand of
    # MuJoCo 4 and the reference's 3.3 part by 1.4 mm (measured; 3.3 with our reset reproduces it exactly)
    hand_init_pos = (-0.5, 0.6, 0.2)
    goal_low = (0.2, 0.65, 0.1499)
    goal_high = (0.3, 0.75, 0.1501)
    # the door starts swung open (Meta-World writes -1.5708, not -pi/2)
    door_angle, target_shift = -1.5708, (0.2, -0.2, 0.0)
    TARGET_RADIUS = 0.05

    def evaluate(self, s, obs, action):
        radius = self.TARGET_RADIUS
        obj, target = obs[:, 4:7], s.target_pos
        tcp_to_target = norm(s.tcp_center - target)
        obj_to_target = norm(obj - target)
        in_place = tolerance(obj_to_target, 0.0, radius, norm(s.obj_init_pos - target), "gaussian")
        # the hand is paid for reaching the goal itself, with a margin from where it started to the handle
        hand_margin = norm(s.hand_init_pos - obj) + 0.1
        hand_in_place = tolerance(tcp_to_target, 0.0, 0.25 * radius, hand_margin, "gaussian")
        reward = 3.0 * hand_in_place + 6.0 * in_place
        reward = torch.where(obj_to_target < radius, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.08
