"""What a Meta-World task declares, and the batched per-task state its code runs on.

A task module subclasses `MetaWorldTask` and fills in: the scene file, the hand start and mocap box,
the reset sampling box, how a sampled vector places objects and goal (`place`), which bodies fill the
observation's object slots (`objects`), and the v2 reward and success (`evaluate`). Everything is
batched over the task's block of worlds; the env core holds no task logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch

from mtbench.envs.metaworld.rewards import gripper_caging, rotmat_to_quat_xyzw
from mtbench.envs.metaworld.scene import HandReset, hand_reset, load_model
from mtbench.sim.base import STATE_FIELDS, SceneBlock

HAND_SPACE_LOW = (-0.525, 0.348, -0.0525)
HAND_SPACE_HIGH = (0.525, 1.025, 0.7)
OBJ_SLOTS = 14  # two objects of pos + quat


@dataclass
class TaskState:
    """One task's block of worlds: the physics views and the per-episode quantities rewards need."""

    sim: SceneBlock
    reset_info: HandReset
    obj_init_pos: torch.Tensor  # (n, 3)
    target_pos: torch.Tensor  # (n, 3)
    init_tcp: torch.Tensor  # (n, 3), constant per task
    hand_init_pos: torch.Tensor  # (3,)
    template: dict[str, torch.Tensor]
    episode: dict[str, torch.Tensor] = field(default_factory=dict)
    _ids: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return self.sim.n

    @property
    def model(self) -> mujoco.MjModel:
        return self.sim.model

    def body(self, name: str) -> torch.Tensor:
        i = self._ids.get(("body", name))
        if i is None:  # a name lookup builds a MuJoCo accessor object: ~10 us, on the hot path per call
            i = self._ids[("body", name)] = self.model.body(name).id
        return self.sim.xpos[:, i]

    def body_quat(self, name: str) -> torch.Tensor:
        return self.sim.xquat[:, self.model.body(name).id]

    def site(self, name: str) -> torch.Tensor:
        i = self._ids.get(("site", name))
        if i is None:
            i = self._ids[("site", name)] = self.model.site(name).id
        return self.sim.site_xpos[:, i]

    def geom(self, name: str) -> torch.Tensor:
        return self.sim.geom_xpos[:, self.model.geom(name).id]

    def geom_quat(self, name: str) -> torch.Tensor:
        """(x, y, z, w) from the geom's rotation matrix, as Meta-World's scipy call gives it."""
        return rotmat_to_quat_xyzw(self.sim.geom_xmat[:, self.model.geom(name).id].reshape(-1, 3, 3))

    def joint_qpos(self, name: str) -> torch.Tensor:
        return self.sim.qpos[:, self.model.jnt_qposadr[self.model.joint(name).id]]

    @property
    def tcp_center(self) -> torch.Tensor:
        return (self.site("rightEndEffector") + self.site("leftEndEffector")) / 2.0

    def caging(self, action: torch.Tensor, obj: torch.Tensor, **params) -> torch.Tensor:
        """Meta-World's `_gripper_caging_reward` for this block: pads, fingertip centre and the episode's
        initial object/TCP positions filled in; `params` are the task's radii, thresholds and density."""
        return gripper_caging(
            action,
            obj,
            self.obj_init_pos,
            self.init_tcp,
            self.tcp_center,
            self.body("leftpad"),
            self.body("rightpad"),
            **params,
        )

    def const(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=self.sim.dtype, device=self.sim.device)

    def set_obj_xyz(self, ids: torch.Tensor, pos: torch.Tensor, qpos_adr: int = 9) -> None:
        """Meta-World's `_set_obj_xyz`: place the free object at `pos` and stop it."""
        self.sim.qpos[ids, qpos_adr : qpos_adr + 3] = pos
        self.sim.qvel[ids, qpos_adr : qpos_adr + 6] = 0.0

    def set_body_pos(self, ids: torch.Tensor, name: str, pos: torch.Tensor) -> None:
        """Meta-World moves fixed bodies (drawer, door, ...) by editing the model; here it is per world."""
        self.sim.body_pos[ids, self.model.body(name).id] = pos

    def restore_template(self, ids: torch.Tensor) -> None:
        for name in STATE_FIELDS:
            getattr(self.sim, name)[ids] = self.template[name]


class MetaWorldTask:
    """Declarations and batched logic of one Meta-World v3 task (v2 reward)."""

    name: str  # Meta-World name, e.g. "reach-v3"
    mtbench_id: int  # MTBench task id (0..49)
    xml: str  # scene file under metaworld/assets
    hand_init_pos: tuple[float, float, float]
    hand_low: tuple[float, float, float] = (-0.2, 0.55, 0.05)
    hand_high: tuple[float, float, float] = (0.2, 0.75, 0.3)
    mocap_low: tuple[float, float, float] | None = None
    mocap_high: tuple[float, float, float] | None = None
    obj_low: tuple[float, ...]
    obj_high: tuple[float, ...]
    goal_low: tuple[float, float, float]
    goal_high: tuple[float, float, float]
    # the observation's goal slot is clipped to this box (Meta-World's goal_space); None: goal_low/high
    goal_space: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    # our `TaskState.episode` key -> the Meta-World env attribute it mirrors (lets the parity tests load
    # recorded per-episode values and compare reward functions in isolation)
    episode_attrs: dict[str, str] = {}
    # Meta-World samples (object, goal) at reset for most tasks; articulated ones (door, drawer, button,
    # window) sample the object box only and derive the goal from it
    reset_space_has_goal: bool = True
    # Meta-World's reset observation comes from stale kinematics in some tasks (it skips mj_forward after
    # writing the state); we return the true state there. The parity tests skip those rows for such tasks.
    reset_obs_stale_in_reference: bool = False

    # -- declarations derived from the above -------------------------------------------------------
    @property
    def rand_low(self) -> np.ndarray:
        return np.array(self.obj_low + (self.goal_low if self.reset_space_has_goal else ()), dtype=np.float64)

    @property
    def rand_high(self) -> np.ndarray:
        return np.array(self.obj_high + (self.goal_high if self.reset_space_has_goal else ()), dtype=np.float64)

    @property
    def mocap_box(self) -> tuple[np.ndarray, np.ndarray]:
        low = self.mocap_low if self.mocap_low is not None else self.hand_low
        high = self.mocap_high if self.mocap_high is not None else self.hand_high
        return np.array(low, dtype=np.float64), np.array(high, dtype=np.float64)

    @property
    def goal_box(self) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.goal_space if self.goal_space is not None else (self.goal_low, self.goal_high)
        return np.array(low, dtype=np.float64), np.array(high, dtype=np.float64)

    def model(self) -> mujoco.MjModel:
        return load_model(self.xml)

    def obs_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Meta-World's observation space (39,): hand xyz boxed, gripper in [-1, 1], objects free, goal boxed."""
        inf = np.full(OBJ_SLOTS, np.inf)
        frame_low = np.concatenate([HAND_SPACE_LOW, [-1.0], -inf])
        frame_high = np.concatenate([HAND_SPACE_HIGH, [1.0], inf])
        glow, ghigh = self.goal_box
        return np.concatenate([frame_low, frame_low, glow]), np.concatenate([frame_high, frame_high, ghigh])

    def frame(self, s: TaskState) -> torch.Tensor:
        """The 18-d frame: hand xyz, gripper opening, two object (pos, quat) slots zero-padded."""
        opening = norm(s.body("rightclaw") - s.body("leftclaw")).div(0.1).clamp(0.0, 1.0)
        pos, quat = self.objects(s)
        k = pos.shape[1] // 3
        parts = [s.body("hand"), opening[:, None]]
        for i in range(k):
            parts += [pos[:, 3 * i : 3 * i + 3], quat[:, 4 * i : 4 * i + 4]]
        parts.append(pos.new_zeros(s.n, OBJ_SLOTS - 7 * k))
        return torch.cat(parts, dim=1)

    def make_state(self, sim: SceneBlock) -> TaskState:
        info = hand_reset(sim.model, np.array(self.hand_init_pos, dtype=np.float64))
        dev, dt, n = sim.device, sim.dtype, sim.n

        def t(a) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dt, device=dev)

        return TaskState(
            sim=sim,
            reset_info=info,
            obj_init_pos=torch.zeros(n, 3, dtype=dt, device=dev),
            target_pos=torch.zeros(n, 3, dtype=dt, device=dev),
            init_tcp=t(info.tcp).expand(n, 3).clone(),
            hand_init_pos=t(self.hand_init_pos),
            template={k: t(v) for k, v in info.state.items()},
        )

    # -- the task's own logic ----------------------------------------------------------------------
    def resample(self, vec: torch.Tensor) -> torch.Tensor:
        """Bool (k,): sampled reset vectors Meta-World's `reset_model` would reject and redraw."""
        return torch.zeros(vec.shape[0], dtype=torch.bool, device=vec.device)

    def place(self, s: TaskState, ids: torch.Tensor, vec: torch.Tensor) -> None:
        """Write objects, moved bodies, `obj_init_pos`, `target_pos` and episode values for worlds `ids`
        from their reset vectors `vec` (k, 6). The template state is already restored."""
        raise NotImplementedError

    def objects(self, s: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        """Object positions (n, 3k) and (x, y, z, w) quaternions (n, 4k) for the observation."""
        raise NotImplementedError

    def evaluate(self, s: TaskState, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v2 reward (n,) and success (n,) bool, from the clipped observation as Meta-World does."""
        raise NotImplementedError


def norm(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, dim=-1)


def needs_redraw_xy(vec: torch.Tensor, min_dist: float = 0.15) -> torch.Tensor:
    """The reach/push/pick-place family redraws until object and goal are `min_dist` apart in xy."""
    return norm(vec[:, :2] - vec[:, 3:5]) < min_dist
