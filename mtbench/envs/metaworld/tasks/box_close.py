"""box-close: lift the lid off the table by its handle and put it on the box."""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.scene import FRAME_SKIP
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, needs_redraw_xy, norm
from mtbench.envs.metaworld.tasks.assembly import quat_alignment
from mtbench.sim.base import STATE_FIELDS, SceneBlock

_UPRIGHT = (0.707, 0.0, 0.0, 0.707)  # the lid the right way up, as it sits on the box
_LID_Z = float(np.float32(0.02))  # sic: Meta-World's lid height comes from a float32 array


class BoxClose(MetaWorldTask):
    name, mtbench_id, xml = "box-close-v3", 3, "sawyer_xyz/sawyer_box.xml"
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.05, 0.5, 0.02)
    obj_high = (0.05, 0.55, 0.02)
    goal_low = (-0.1, 0.7, 0.133)
    goal_high = (0.1, 0.8, 0.133)

    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        return needs_redraw_xy(vec, 0.25)

    def make_state(self, sim: SceneBlock) -> TaskState:
        """Meta-World's `reset_model` here steps the physics for one control step (5 substeps) after the
        hand settling, before it places the lid; the still-moving arm drifts on. The box's place does not
        matter to the arm, so every episode starts from the same state: the template, advanced once."""
        s = super().make_state(sim)
        data = mujoco.MjData(s.model)
        for name in STATE_FIELDS:
            getattr(data, name)[:] = s.reset_info.state[name]
        mujoco.mj_step(s.model, data, nstep=FRAME_SKIP)
        s.template = {name: s.const(getattr(data, name)) for name in STATE_FIELDS}
        return s

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        lid = torch.cat((vec[:, :2], s.const([_LID_Z]).expand(len(ids), 1)), dim=1)
        s.obj_init_pos[ids] = lid
        s.target_pos[ids] = vec[:, 3:]
        # the box keeps its height and goes under the goal
        box_z = s.const([s.reset_info.obj_body_pos["boxbody"][2]]).expand(len(ids), 1)
        s.set_body_pos(ids, "boxbody", torch.cat((vec[:, 3:5], box_z), dim=1))
        s.set_obj_xyz(ids, lid)

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.body("top_link"), s.body_quat("top_link")

    def evaluate(self, s, obs, action):
        hand, lid = obs[:, :3], obs[:, 4:7] + s.const((0.0, 0.0, 0.02))
        # a log funnel around the handle keeps the hand above it until it is close in xy
        threshold = 0.02
        radius = norm(hand[:, :2] - lid[:, :2])
        far = radius > threshold
        floor = torch.where(far, 0.04 * torch.log(torch.where(far, radius - threshold, 1.0)) + 0.4, 0.0)
        below = tolerance(floor - hand[:, 2], 0.0, 0.01, floor / 2.0, "long_tail")
        above_floor = torch.where(hand[:, 2] >= floor, torch.ones_like(floor), below)
        at_handle = tolerance(norm(hand - lid), 0.0, 0.02, 0.5, "long_tail")
        ready = hamacher_product(above_floor, at_handle)
        # z errors weigh 3x: the lid has to come down onto the box
        placed_error = norm((s.target_pos - lid) * s.const((1.0, 1.0, 3.0)))
        lifted = (lid[:, 2] > 0.04).to(lid.dtype)
        placed = 0.2 * lifted + 0.8 * tolerance(placed_error, 0.0, 0.05, 0.25, "long_tail")
        grab = ((action[:, 3].clamp(-1.0, 1.0) + 1.0) / 2.0).clamp(0.0, 1.0)
        reward = 2.0 * hamacher_product(grab, ready) + 8.0 * placed
        success = norm(obs[:, 4:7] - s.target_pos) < 0.08
        reward = torch.where(success, torch.full_like(reward, 10.0), reward)
        # the orientation scales the success reward too, so flipping the lid onto the box pays nothing
        return reward * quat_alignment(obs[:, 7:11], _UPRIGHT, 0.2), success
