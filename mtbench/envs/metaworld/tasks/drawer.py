"""drawer-open and drawer-close: one nightstand moved to the reset vector, its drawer on a y slide."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm


class _Drawer(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_drawer.xml"
    hand_init_pos = (0.0, 0.6, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    obj_low = (-0.1, 0.9, 0.0)
    obj_high = (0.1, 0.9, 0.0)
    goal_low, goal_high = hand_low, hand_high  # Meta-World's goal_space is the hand box
    max_dist: float

    # the reset vector is the nightstand position only
    reset_space_has_goal = False

    def _handle(self, s: TaskState, dz: float) -> torch.Tensor:
        return s.body("drawer_link") + s.const((0.0, -0.16, dz))


class DrawerOpen(_Drawer):
    reset_obs_stale_in_reference = True
    name, mtbench_id = "drawer-open-v3", 18
    max_dist = 0.2

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        # the drawer joint keeps its reset-state value (closed)
        s.obj_init_pos[ids] = vec
        s.set_body_pos(ids, "drawer", vec)
        s.target_pos[ids] = vec + s.const((0.0, -0.16 - self.max_dist, 0.09))

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return self._handle(s, 0.0), s.body_quat("drawer_link")

    def evaluate(self, s, obs, action):
        gripper, handle = obs[:, :3], obs[:, 4:7]
        handle_error = norm(handle - s.target_pos)
        opening = tolerance(handle_error, 0.0, 0.02, self.max_dist, "long_tail")
        # xy errors weigh 3x so the hand can drop down around the handle
        scale = s.const((3.0, 3.0, 1.0))
        handle_init = s.target_pos + s.const((0.0, self.max_dist, 0.0))
        caging = tolerance(
            norm((handle - gripper) * scale), 0.0, 0.01, norm((handle_init - s.init_tcp) * scale), "long_tail"
        )
        return 5.0 * (caging + opening), handle_error <= 0.03


class DrawerClose(_Drawer):
    name, mtbench_id = "drawer-close-v3", 17
    max_dist = 0.15
    TARGET_RADIUS = 0.05  # Meta-World also declares `_TARGET_RADIUS = 0.04`, which nothing reads

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.set_body_pos(ids, "drawer", vec)
        s.target_pos[ids] = vec + s.const((0.0, -0.16, 0.09))
        # pulled all the way out; Meta-World's `_set_obj_xyz` here leaves qvel alone
        s.sim.qpos[ids, int(s.model.joint("goal_slidey").qposadr[0])] = -self.max_dist
        s.sim.forward(ids)
        s.obj_init_pos[ids] = self._handle(s, 0.05)[ids]

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return self._handle(s, 0.05), torch.zeros(s.n, 4, dtype=s.sim.dtype, device=s.sim.device)

    def evaluate(self, s, obs, action):
        radius = self.TARGET_RADIUS
        obj, tcp = obs[:, 4:7], s.tcp_center
        target_to_obj = norm(obj - s.target_pos)
        init_to_target = norm(s.obj_init_pos - s.target_pos)
        in_place = tolerance(target_to_obj, 0.0, radius, (init_to_target - radius).abs(), "long_tail")
        reach_radius = 0.005
        tcp_to_obj_init = norm(s.obj_init_pos - s.init_tcp)
        reach_margin = (tcp_to_obj_init - reach_radius).abs()
        reach = tolerance(norm(obj - tcp), 0.0, reach_radius, reach_margin, "gaussian")
        reach = hamacher_product(reach, action[:, 3].clamp(0.0, 1.0))
        success = target_to_obj <= radius + 0.015
        reward = torch.where(success, torch.ones_like(reach), hamacher_product(reach, in_place))
        return 10.0 * reward, success
