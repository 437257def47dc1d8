"""assembly and disassemble: a round nut with a wrench handle, put onto or lifted off a peg.

Pieces shared by the tool tasks live here too: the shaping of "long tool" rewards (snap the handle's x
to the hand, score the tool's orientation against a resting quaternion; hammer and box-close use them).
"""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import tolerance
from mtbench.envs.metaworld.settle import resettle
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm


def snap_x_to_hand(obj: torch.Tensor, hand: torch.Tensor, half_length: float) -> torch.Tensor:
    """The caging reward treats objects as spheres; for a handle of length `2 * half_length` along x,
    Meta-World moves the object's x onto the hand's while the hand is anywhere along the handle."""
    along = (obj[:, 0] - hand[:, 0]).abs() < half_length
    return torch.cat((torch.where(along, hand[:, 0], obj[:, 0])[:, None], obj[:, 1:]), dim=1)


def quat_alignment(quat: torch.Tensor, ideal: tuple[float, float, float, float], scale: float) -> torch.Tensor:
    """1 at the ideal (w, x, y, z) quaternion, falling linearly with the Euclidean distance between the
    quaternions' components (Meta-World's stand-in for an angle), 0 from `scale` on."""
    error = norm(quat - quat.new_tensor(ideal))
    return (1.0 - error / scale).clamp(min=0.0)


_LAID_DOWN = (0.707, 0.0, 0.0, 0.707)  # the nut lying flat, turned as the XML places it
# xy distance within which the peg (radius 2 cm) can touch the nut's ring (outer radius 6.9 cm), plus 1 cm
_PEG_REACHES_NUT = 0.1


class _Nut(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_assembly_peg.xml"
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    HANDLE_LENGTH = 0.02
    medium_density: bool  # the grab reward's caging density: medium (assembly) or high (disassemble)

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec, 0.1)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        # the observed position is the handle's grip site, the orientation the nut body's
        return s.site("RoundNut-8"), s.body_quat("RoundNut")

    def _grab(self, s: TaskState, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        handle = snap_x_to_hand(obs[:, 4:7], obs[:, :3], self.HANDLE_LENGTH / 2.0)
        return s.caging(
            action,
            handle,
            obj_radius=0.015,
            pad_success_thresh=0.02,
            object_reach_radius=0.01,
            xz_thresh=0.01,
            high_density=not self.medium_density,
            medium_density=self.medium_density,
        )


class Assembly(_Nut):
    name, mtbench_id = "assembly-v3", 0
    hand_init_pos = (0.0, 0.6, 0.2)
    obj_low = (0.0, 0.6, 0.02)
    obj_high = (0.0, 0.6, 0.02)
    goal_low = (-0.1, 0.75, 0.1)
    goal_high = (0.1, 0.85, 0.1)
    medium_density = True

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec[:, :3]
        s.target_pos[ids] = vec[:, 3:]
        s.set_obj_xyz(ids, vec[:, :3])
        # the goal is the peg's top; the peg body stands 5 cm below it
        s.set_body_pos(ids, "peg", vec[:, 3:] - s.const((0.0, 0.0, 0.05)))

    def evaluate(self, s, obs, action):
        center = s.site("RoundNut")
        error = s.target_pos - center
        radius = norm(error[:, :2])
        success = (radius < 0.02) & (error[:, 2] > 0.0)
        # a log funnel over the peg: the nut must stay high until it is above the peg, then drop;
        # the funnel's neck widens once the nut is on the peg
        neck = torch.where(success, radius.new_tensor(0.02), radius.new_tensor(0.01))
        outside = radius > neck
        funnel = torch.where(outside, 0.02 * torch.log(torch.where(outside, radius - neck, 1.0)) + 0.2, 0.0)
        scaled = torch.cat((error[:, :2], (funnel - center[:, 2])[:, None]), dim=1) * s.const((1.0, 1.0, 3.0))
        lifted = ((center[:, 2] > 0.02) | (radius < neck)).to(radius.dtype)
        in_place = 0.1 * lifted + 0.9 * tolerance(norm(scaled), 0.0, 0.02, 0.4, "long_tail")
        reward = (2.0 * self._grab(s, obs, action) + 6.0 * in_place) * quat_alignment(obs[:, 7:11], _LAID_DOWN, 0.4)
        return torch.where(success, torch.full_like(reward, 10.0), reward), success


class Disassemble(_Nut):
    name, mtbench_id = "disassemble-v3", 12
    hand_init_pos = (0.0, 0.4, 0.2)
    obj_low = (0.0, 0.6, 0.025)
    obj_high = (0.1, 0.75, 0.02501)
    # the goal half of the reset vector only decides redraws; the goal is 15 cm above the nut
    goal_low = (-0.1, 0.6, 0.1699)
    goal_high = (0.1, 0.75, 0.1701)
    goal_space = ((-0.1, 0.6, 0.1749), (0.1, 0.75, 0.1751))
    medium_density = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        nut = vec[:, :3]
        peg = nut + s.const((0.0, 0.0, 0.03))
        # the peg lands inside the nut's ring where the nut lies during the hand settling, and spins it
        ring = norm(peg[:, :2] - s.template["qpos"][9:11]) < _PEG_REACHES_NUT
        resettle(s, self, ids, "peg", peg, ring)
        s.obj_init_pos[ids] = nut
        s.target_pos[ids] = nut + s.const((0.0, 0.0, 0.15))
        s.set_body_pos(ids, "peg", peg)
        s.set_obj_xyz(ids, nut)

    def evaluate(self, s, obs, action):
        center = s.site("RoundNut")
        lifted = (center[:, 2] > 0.02).to(center.dtype)
        to_goal = norm(s.target_pos + s.const((0.0, 0.0, 0.1)) - center)
        in_place = 0.1 * lifted + 0.9 * tolerance(to_goal, 0.0, 0.02, 0.2, "long_tail")
        reward = (2.0 * self._grab(s, obs, action) + 6.0 * in_place) * quat_alignment(obs[:, 7:11], _LAID_DOWN, 0.4)
        success = obs[:, 6] > s.target_pos[:, 2]
        return torch.where(success, torch.full_like(reward, 10.0), reward), success
