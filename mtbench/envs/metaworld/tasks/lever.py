"""lever-pull: swing a lever on a stand placed at the reset vector from horizontal to straight up."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm

_LEVER_RADIUS = 0.2
# the lever's hinge sits 0.12 to the side of and 0.25 above the stand's origin; its handle starts one
# lever radius towards the robot (horizontal) and is wanted one radius above the hinge (straight up)
_HANDLE_AT_RESET = (0.12, -_LEVER_RADIUS, 0.25)
_HANDLE_RAISED = (0.12, 0.0, 0.25 + _LEVER_RADIUS)
# The observed quaternion is the blue handle mesh's frame, i.e. its principal axes of inertia. The mesh
# is nearly a sphere, so the axes are ill-conditioned: MuJoCo 4 compiles them 0.05 degrees away from
# MuJoCo 3.3 (quaternion entries differ by 4.6e-4). We keep 3.3's frame; the geom is visual only.
_HANDLE_MESH_QUAT_MUJOCO33 = (0.662500038723091, 0.662500038723091, -0.24717139537556432, 0.24717139537556432)


class LeverPull(MetaWorldTask):
    # reset_model moves the stand and reads the observation without mj_forward: the hand in it is one
    # substep stale (5e-5 m; verified by calling mj_forward after the reference's reset)
    reset_obs_stale_in_reference = True
    name, mtbench_id, xml = "lever-pull-v3", 27, "sawyer_xyz/sawyer_lever_pull.xml"
    # Meta-World stores this start as float32, so the mocap target carries float32 rounding
    hand_init_pos = tuple(float(v) for v in np.float32((0.0, 0.4, 0.2)))
    hand_low = (-0.5, 0.40, -0.15)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.7, 0.0)
    obj_high = (0.1, 0.8, 0.0)
    goal_low, goal_high = hand_low, hand_high  # Meta-World's goal_space is the hand box

    # the reset vector is the stand position only
    reset_space_has_goal = False

    def model(self) -> mujoco.MjModel:
        """The scene with the handle mesh's frame as MuJoCo 3.3 compiled it (see above)."""
        model = super().model()
        model.geom_quat[model.geom("objGeom").id] = _HANDLE_MESH_QUAT_MUJOCO33
        return model

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.set_body_pos(ids, "lever", vec)
        s.target_pos[ids] = vec + s.const(_HANDLE_RAISED)  # the goal site, moved there too, is only drawn

    def _lever_at_reset(self, s: TaskState) -> torch.Tensor:
        """Meta-World's `_lever_pos_init` (a per-episode attribute there; it follows the stand)."""
        return s.obj_init_pos + s.const(_HANDLE_AT_RESET)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.site("leverStart"), s.geom_quat("objGeom")

    def evaluate(self, s, obs, action):
        gripper, lever = obs[:, :3], obs[:, 4:7]
        lever_init = self._lever_at_reset(s)
        # the arm's shoulder (below and behind the fingers) goes under the lever; y errors weigh less
        scale, offset = s.const((4.0, 1.0, 4.0)), s.const((0.0, 0.055, 0.07))
        shoulder_to_lever = norm((gripper + offset - lever) * scale)
        margin = norm((s.init_tcp + offset - lever_init) * scale)
        ready = tolerance(shoulder_to_lever, 0.0, 0.02, margin, "long_tail")
        obj_to_target = norm(lever - s.target_pos)
        in_place = tolerance(obj_to_target, 0.0, 0.04, norm(lever_init - s.target_pos), "long_tail")
        # success reads the hinge angle (negative when raised), not the handle's distance to the goal
        lever_error = (-s.joint_qpos("LeverAxis") - math.pi / 2.0).abs()
        return 10.0 * hamacher_product(ready, in_place), lever_error <= math.pi / 24
