"""stick-pull and stick-push: pick up a stick and use it to move a thermos on x/y slides."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import (
    gripper_caging,
    hamacher_product,
    quat_wxyz_to_rotmat,
    rotmat_to_quat_xyzw,
    tolerance,
)
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm

_STICK_Z = 0.02  # the stick's height at reset, whatever the reset vector's z


class _Stick(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_stick_obj.xml"
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_high = (0.5, 1.0, 0.5)
    episode_attrs = {"stick_init_pos": "stick_init_pos"}
    container_qpos: tuple[float, float]  # the thermos's (x, y) slide positions at reset
    insertion_shift: tuple[float, float, float]  # the observed thermos point, relative to its "insertion" site

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec, 0.1)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        stick = torch.cat((vec[:, :2], s.const([_STICK_Z]).expand(len(ids), 1)), dim=1)
        init = s.episode.get("stick_init_pos")
        if init is None:
            init = s.episode["stick_init_pos"] = s.target_pos.new_zeros(s.n, 3)
        init[ids] = stick
        s.set_obj_xyz(ids, stick)
        slide = int(s.model.joint("obj_slidex").qposadr[0])
        s.sim.qpos[ids, slide : slide + 2] = s.const(self.container_qpos)
        # sic: Meta-World zeroes qvel[16:18] for the two slides, whose dofs are 15 and 16
        s.sim.qvel[ids, int(s.model.joint("obj_slidey").dofadr[0])] = 0.0
        s.sim.forward(ids)
        # `obj_init_pos` is the thermos's fixed base, which the slides do not move
        s.obj_init_pos[ids] = s.body("object")[ids]
        s.target_pos[ids] = torch.cat((vec[:, 3:5], self._target_z(s, ids)), dim=1)

    def _target_z(self, s: TaskState, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.cat((s.body("stick"), s.site("insertion") + s.const(self.insertion_shift)), dim=1)
        stick_quat = rotmat_to_quat_xyzw(quat_wxyz_to_rotmat(s.body_quat("stick")))
        return pos, torch.cat((stick_quat, torch.zeros_like(stick_quat)), dim=1)


class StickPull(_Stick):
    name, mtbench_id = "stick-pull-v3", 44
    hand_low = (-0.5, 0.35, 0.05)
    obj_low = (-0.1, 0.55, 0.000)
    obj_high = (0.0, 0.65, 0.001)
    goal_low = (0.35, 0.45, 0.0199)
    goal_high = (0.45, 0.55, 0.0201)
    container_qpos = (0.0, 0.09)
    insertion_shift = (0.0, 0.0, 0.0)

    def _target_z(self, s: TaskState, ids: torch.Tensor) -> torch.Tensor:
        return s.const([_STICK_Z]).expand(len(ids), 1)

    @staticmethod
    def _inserted(handle: torch.Tensor, stick_end: torch.Tensor) -> torch.Tensor:
        """The stick's end is through the thermos's handle loop."""
        return (
            (stick_end[:, 0] >= handle[:, 0])
            & ((stick_end[:, 1] - handle[:, 1]).abs() <= 0.04)
            & ((stick_end[:, 2] - handle[:, 2]).abs() <= 0.06)
        )

    def evaluate(self, s, obs, action):
        radius = 0.05
        tcp, stick, handle, tcp_opened, target = s.tcp_center, obs[:, 4:7], obs[:, 11:14], obs[:, 3], s.target_pos
        stick_init = s.episode["stick_init_pos"]
        container = handle + s.const((0.05, 0.0, 0.0))
        container_init = s.obj_init_pos + s.const((0.05, 0.0, 0.0))
        # z errors weigh double while the stick is brought to the thermos
        scale = s.const((1.0, 1.0, 2.0))
        stick_in_place = tolerance(
            norm((stick - container) * scale), 0.0, radius, norm((stick_init - container_init) * scale), "long_tail"
        )
        stick_at_target = tolerance(norm(stick - target), 0.0, radius, norm(stick_init - target), "long_tail")
        container_in_place = tolerance(
            norm(container - target), 0.0, radius, norm(s.obj_init_pos - target), "long_tail"
        )
        # sic: the caging margins are measured from the thermos's base (`obj_init_pos`), not the stick
        grasped = s.caging(
            action,
            stick,
            obj_radius=0.014,
            pad_success_thresh=0.05,
            object_reach_radius=0.01,
            xz_thresh=0.01,
            high_density=True,
        )
        lifted = (norm(stick - tcp) < 0.02) & (tcp_opened > 0) & (stick[:, 2] - 0.01 > stick_init[:, 2])
        grasped = torch.where(lifted, torch.ones_like(grasped), grasped)
        both = hamacher_product(grasped, stick_in_place)
        inserted = self._inserted(handle, s.site("stick_end"))
        reward = torch.where(lifted, 1.0 + both + 5.0 * stick_in_place, both)
        pulling = 1.0 + both + 5.0 + 2.0 * stick_at_target + container_in_place
        reward = torch.where(lifted & inserted, pulling, reward)
        near = norm(handle - target) <= 0.12
        reward = torch.where(lifted & inserted & near, torch.full_like(reward, 10.0), reward)
        return reward, near & inserted


class StickPush(_Stick):
    name, mtbench_id = "stick-push-v3", 45
    hand_low = (-0.5, 0.40, 0.05)
    obj_low = (-0.08, 0.58, 0.000)
    obj_high = (-0.03, 0.62, 0.001)
    goal_low = (0.399, 0.55, 0.1319)
    goal_high = (0.401, 0.6, 0.1321)
    container_qpos = (0.0, 0.0)
    insertion_shift = (0.0, 0.09, 0.0)

    def _target_z(self, s: TaskState, ids: torch.Tensor) -> torch.Tensor:
        # the goal is at the height of the thermos's insertion point (the slides leave its z alone)
        return s.site("insertion")[ids, 2:3]

    def evaluate(self, s, obs, action):
        radius = 0.12
        tcp, stick, container, tcp_opened, target = s.tcp_center, obs[:, 4:7], obs[:, 11:14], obs[:, 3], s.target_pos
        stick_init = s.episode["stick_init_pos"]
        tip = stick + s.const((0.015, 0.0, 0.0))
        stick_in_place = tolerance(norm(tip - target), 0.0, radius, norm(stick_init - target) - radius, "long_tail")
        container_to_target = norm(container - target)
        container_in_place = tolerance(
            container_to_target, 0.0, radius, norm(s.obj_init_pos - target) - radius, "long_tail"
        )
        # stick-push's own caging measures its margins from the stick's start
        grasped = gripper_caging(
            action,
            tip,
            stick_init,
            s.init_tcp,
            tcp,
            s.body("leftpad"),
            s.body("rightpad"),
            obj_radius=0.04,
            pad_success_thresh=0.05,
            object_reach_radius=0.01,
            xz_thresh=0.01,
            high_density=True,
        )
        held = (norm(tip - tcp) < 0.02) & (tcp_opened > 0) & (tip[:, 2] - 0.01 > stick_init[:, 2])
        reward = torch.where(held, 2.0 + 5.0 * stick_in_place + 3.0 * container_in_place, grasped)
        near = container_to_target <= radius
        reward = torch.where(held & near, torch.full_like(reward, 10.0), reward)
        lifted = (tcp_opened > 0) & (stick[:, 2] - 0.01 > stick_init[:, 2])
        return reward, self._pads_touch_stick(s) & lifted & near

    @staticmethod
    def _pads_touch_stick(s: TaskState) -> torch.Tensor:
        """Meta-World's success also asks `touching_main_object`: both finger pads in contact with the
        stick with a positive normal force. The engines here expose no contacts, so we test the geometry
        instead: each pad box overlaps the stick box grown by the pad's contact margin (separating-axis
        test). On the recorded reference states this agrees with MuJoCo's contact forces on every row."""
        stick = s.model.geom("objGeom")
        touching = []
        for name in ("leftpad_geom", "rightpad_geom"):
            pad = s.model.geom(name)
            touching.append(
                _boxes_overlap(
                    s.geom(name) - s.geom("objGeom"),
                    s.sim.geom_xmat[:, stick.id].reshape(-1, 3, 3),
                    s.const(stick.size + pad.margin),
                    s.sim.geom_xmat[:, pad.id].reshape(-1, 3, 3),
                    s.const(pad.size),
                )
            )
        return touching[0] & touching[1]


def _boxes_overlap(
    offset: torch.Tensor, rot_a: torch.Tensor, half_a: torch.Tensor, rot_b: torch.Tensor, half_b: torch.Tensor
) -> torch.Tensor:
    """Separating-axis test of boxes A and B (centre offset B - A (n, 3), rotation matrices (n, 3, 3) whose
    columns are the box axes, half-extents (3,)): True where no face or edge-pair axis separates them."""
    axes_a, axes_b = rot_a.transpose(1, 2), rot_b.transpose(1, 2)  # (n, 3 axes, xyz)
    edges = torch.linalg.cross(axes_a[:, :, None, :], axes_b[:, None, :, :], dim=-1).flatten(1, 2)
    axes = torch.cat((axes_a, axes_b, edges), dim=1)  # (n, 15, 3)
    radius_a = ((axes @ rot_a).abs() * half_a).sum(-1)
    radius_b = ((axes @ rot_b).abs() * half_b).sum(-1)
    gap = (axes @ offset[:, :, None]).squeeze(-1).abs()
    return (gap <= radius_a + radius_b).all(dim=1)
