"""plate-slide and its back/side variants: slide a flat puck on an x/y slide pair into or out of a goal
net. The puck's channel is fixed; the reset vector is (object, goal), where the object part is fixed per
task: the puck's start, or for the back variants the net the puck starts in (sic: the rewards then
measure from the net's origin, 10 cm from the puck)."""

from __future__ import annotations

import numpy as np
import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm

_RADIUS = 0.05


class _PlateSlide(MetaWorldTask):
    # Meta-World stores this start as float32, so the mocap target carries float32 rounding
    hand_init_pos = tuple(float(v) for v in np.float32((0.0, 0.6, 0.2)))
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    puck_at_reset: tuple[float, float]  # the x and y slide joints written at reset
    # which reset quantity the goal net (body "puck_goal") moves to: "target", "object", or None where
    # Meta-World writes `data.xpos`, which the next mj_forward overwrites (sic), so the net stays put
    net_follows: str | None = None

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec[:, :3]
        s.target_pos[ids] = vec[:, 3:]
        if self.net_follows is not None:
            s.set_body_pos(ids, "puck_goal", vec[:, 3:] if self.net_follows == "target" else vec[:, :3])
        # Meta-World's `_set_obj_xyz` here writes the two slides and leaves qvel as the hand reset left it
        adr = int(s.model.joint("goal_slidex").qposadr[0])
        s.sim.qpos[ids, adr : adr + 2] = s.const(self.puck_at_reset)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.geom("puck"), s.geom_quat("puck")

    def evaluate(self, s, obs, action):
        """The back and side variants: reach the puck, then get paid for its progress only while the
        fingertips are down at the table (z <= 3 cm) next to it."""
        tcp, obj = s.tcp_center, obs[:, 4:7]
        obj_to_target = norm(obj - s.target_pos)
        in_place_margin = norm(s.obj_init_pos - s.target_pos) - _RADIUS
        in_place = tolerance(obj_to_target, 0.0, _RADIUS, in_place_margin, "long_tail")
        tcp_to_obj = norm(tcp - obj)
        grasp_margin = norm(s.init_tcp - s.obj_init_pos) - _RADIUS
        near = tolerance(tcp_to_obj, 0.0, _RADIUS, grasp_margin, "long_tail")
        pushing = (tcp[:, 2] <= 0.03) & (tcp_to_obj < 0.07)
        reward = torch.where(pushing, 2.0 + 7.0 * in_place, 1.5 * near)
        reward = torch.where(obj_to_target < _RADIUS, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.07


class PlateSlide(_PlateSlide):
    name, mtbench_id, xml = "plate-slide-v3", 36, "sawyer_xyz/sawyer_plate_slide.xml"
    obj_low = obj_high = (0.0, 0.6, 0.0)
    goal_low, goal_high = (-0.1, 0.85, 0.0), (0.1, 0.9, 0.0)
    puck_at_reset, net_follows = (0.0, 0.0), "target"

    def evaluate(self, s, obs, action):
        obj = obs[:, 4:7]
        obj_to_target = norm(obj - s.target_pos)
        in_place = tolerance(obj_to_target, 0.0, _RADIUS, norm(s.obj_init_pos - s.target_pos), "long_tail")
        near = tolerance(norm(s.tcp_center - obj), 0.0, _RADIUS, norm(s.init_tcp - s.obj_init_pos), "long_tail")
        reward = 8.0 * hamacher_product(near, in_place)
        reward = torch.where(obj_to_target < _RADIUS, torch.full_like(reward, 10.0), reward)
        return reward, obj_to_target <= 0.07


class PlateSlideBack(_PlateSlide):
    name, mtbench_id, xml = "plate-slide-back-v3", 34, "sawyer_xyz/sawyer_plate_slide.xml"
    obj_low = obj_high = (0.0, 0.85, 0.0)
    goal_low, goal_high = (-0.1, 0.6, 0.015), (0.1, 0.6, 0.015)
    puck_at_reset = (0.0, 0.15)  # in the net at its default place


class PlateSlideSide(_PlateSlide):
    name, mtbench_id, xml = "plate-slide-side-v3", 35, "sawyer_xyz/sawyer_plate_slide_sideway.xml"
    obj_low = obj_high = (0.0, 0.6, 0.0)
    goal_low, goal_high = (-0.3, 0.54, 0.0), (-0.25, 0.66, 0.0)
    puck_at_reset = (0.0, 0.0)


class PlateSlideBackSide(_PlateSlide):
    name, mtbench_id, xml = "plate-slide-back-side-v3", 33, "sawyer_xyz/sawyer_plate_slide_sideway.xml"
    obj_low = obj_high = (-0.25, 0.6, 0.0)
    goal_low, goal_high = (-0.05, 0.6, 0.015), (0.15, 0.6, 0.015)
    puck_at_reset, net_follows = (-0.15, 0.0), "object"  # the puck starts in the net
