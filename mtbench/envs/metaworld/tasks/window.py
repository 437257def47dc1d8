"""window-open and window-close: slide a horizontal window pane along x by its handle."""

from __future__ import annotations

import torch

from mtbench.envs.metaworld.rewards import hamacher_product, tolerance
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState, norm


class _Window(MetaWorldTask):
    xml = "sawyer_xyz/sawyer_window_horizontal.xml"
    hand_init_pos = (0.0, 0.4, 0.2)
    hand_low = (-0.5, 0.40, 0.05)
    hand_high = (0.5, 1.0, 0.5)
    goal_low, goal_high = hand_low, hand_high  # Meta-World's goal_space is the hand box
    TARGET_RADIUS = 0.05
    episode_attrs = {"window_handle_pos_init": "window_handle_pos_init"}
    handle_site: str
    slide_at_reset: float  # window_slide qpos written at reset
    handle_init_shift: float  # added to the handle's x when it is read at reset
    target_shift: float  # goal x relative to the frame
    reach_sigmoid: str

    # the reset vector is the window frame position only
    reset_space_has_goal = False

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        s.obj_init_pos[ids] = vec
        s.target_pos[ids] = vec + s.const((self.target_shift, 0.0, 0.0))
        s.set_body_pos(ids, "window", vec)
        # Meta-World reads the handle after moving the frame but before writing the slide joint
        s.sim.forward(ids)
        init = s.episode.get("window_handle_pos_init")
        if init is None:
            init = s.episode["window_handle_pos_init"] = s.target_pos.new_zeros(s.n, 3)
        init[ids] = s.site(self.handle_site)[ids] + s.const((self.handle_init_shift, 0.0, 0.0))
        s.sim.qpos[ids, int(s.model.joint("window_slide").qposadr[0])] = self.slide_at_reset

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        return s.site(self.handle_site), torch.zeros(s.n, 4, dtype=s.sim.dtype, device=s.sim.device)

    def _x_init(self, s: TaskState) -> torch.Tensor:
        """Where the in-place margin measures the handle's start in x."""
        raise NotImplementedError

    def evaluate(self, s, obs, action):
        radius = self.TARGET_RADIUS
        obj, tcp = s.site(self.handle_site), s.tcp_center
        target_to_obj = (obj[:, 0] - s.target_pos[:, 0]).abs()
        init_to_target = (self._x_init(s) - s.target_pos[:, 0]).abs()
        in_place = tolerance(target_to_obj, 0.0, radius, (init_to_target - radius).abs(), "long_tail")
        handle_radius = 0.02
        tcp_to_obj_init = norm(s.episode["window_handle_pos_init"] - s.init_tcp)
        reach = tolerance(
            norm(obj - tcp), 0.0, handle_radius, (tcp_to_obj_init - handle_radius).abs(), self.reach_sigmoid
        )
        return 10.0 * hamacher_product(reach, in_place), target_to_obj <= radius


class WindowOpen(_Window):
    reset_obs_stale_in_reference = True
    name, mtbench_id = "window-open-v3", 49
    obj_low = (-0.1, 0.7, 0.16)
    obj_high = (0.1, 0.9, 0.16)
    handle_site, slide_at_reset, handle_init_shift, target_shift = "handleOpenStart", 0.0, 0.0, 0.2
    reach_sigmoid = "long_tail"

    def _x_init(self, s: TaskState) -> torch.Tensor:
        return s.obj_init_pos[:, 0]


class WindowClose(_Window):
    reset_obs_stale_in_reference = True
    name, mtbench_id = "window-close-v3", 48
    obj_low = (0.0, 0.75, 0.2)
    obj_high = (0.0, 0.9, 0.2)
    handle_site, slide_at_reset, handle_init_shift, target_shift = "handleCloseStart", 0.2, 0.2, 0.0
    reach_sigmoid = "gaussian"

    def _x_init(self, s: TaskState) -> torch.Tensor:
        return s.episode["window_handle_pos_init"][:, 0]
