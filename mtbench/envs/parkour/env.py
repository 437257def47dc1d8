"""`ParkourVecEnv`: the Go1 on MTBench's parkour terrains, each terrain type a contiguous block of worlds.

The interface is `MultiTaskVecEnv`'s (mtbench/envs/core.py): `reset() -> obs`, `step(actions) -> (obs, reward,
terminated, truncated, info)` with auto-reset, `info["final_obs"]`, per-episode statistics, `state_dict()`. Two
parkour specifics:

* success is the **progress**, goals reached / 8, a float in [0, 1]: `info["success"]` is the current episode's
  progress after this step, `info["episode"]["success"]` (= `["progress"]`) its value when the episode ended;
  `info["episode"]["goals_reached"]` is the count. `info["terrain_level"]` is each env's row (difficulty level)
  after the auto-reset; `info["episode"]["terrain_level"]` the row of the episode that ended.
* the observation is the 212-d parkour vector plus a one-hot over the selected terrain types (or over all 21 with
  `onehot="terrains"`); observations.py documents the layout, with the slices as constants.

One step (reference §2.6): actions (N, 12) are clipped to +-5 / action_scale and give joint targets
default + action * action_scale; then 4 physics steps of 5 ms, each computing the PD torque
clip(Kp m_p (target - q) - Kd m_d qd, +-33.5 N m) in torch (m_p, m_d: per-env, per-joint motor strength) and
stepping the engine once. After the physics: waypoints advance, rewards, terminations, the observation, and the
auto-reset (with the terrain curriculum when on).

Resets (per episode): spawn at the row's origin, 0.42 m above the highest terrain sample under the robot, yaw 0,
velocity 0; joints at default + U(dof_reset_range) (upstream's U(0, 0.9) by default) clipped to the joint limits;
a new forward-speed command U(0.3, 0.8) m/s (also resampled every 6 s); with domain randomisation a new friction
(one of 64 buckets drawn from U(0.6, 2.0) at construction), added base mass U(0, 3) kg, base COM offset
U(-0.2, 0.2) m per axis, motor strengths U(0.8, 1.2); pushes every 8 s set every base's xy velocity to
U(-0.5, 0.5) m/s.

Everything is batched in torch on `device`; the only Python loops in a step are over the terrain blocks (<= 21)
and the 4 substeps. On the CPU backend the env's torch work runs single-threaded (MuJoCo's pool has the cores).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mtbench.envs.core import BACKENDS, MultiTaskVecEnv, View, torch_single_threaded
from mtbench.envs.parkour import observations as O
from mtbench.envs.parkour import rewards as W
from mtbench.envs.parkour import robot as R
from mtbench.envs.parkour.capacity import MEASURED
from mtbench.envs.parkour.scene import PD_FIELDS, PD_MODES, PER_WORLD, ParkourScene, build_scene
from mtbench.envs.parkour.settings import MAX_INIT_LEVEL, resolve, terrain_id
from mtbench.envs.parkour.terrains import TERRAIN_NAMES
from mtbench.sim import SceneBlock, make_block
from mtbench.sim.capacity import buffer_sizes
from mtbench.validation import PosFloat, PosInt, UnitFloat, check_values

ACTION_CLIP = 5.0
"""Actions are clipped to +-ACTION_CLIP / action_scale (upstream clip_actions)."""
COMMAND_RANGE = (0.3, 0.8)
"""Forward-speed command lin_vel_x, m/s."""
COMMAND_INTERVAL = 300
"""Policy steps between command resamples (6 s), counted on each env's episode step."""
PUSH_INTERVAL = 400
"""Policy steps between pushes (8 s), counted on the env's global step counter (all envs at once)."""
PUSH_VEL = 0.5
FRICTION_RANGE = (0.6, 2.0)
FRICTION_BUCKETS = 64
ADDED_MASS_RANGE = (0.0, 3.0)
COM_RANGE = (-0.2, 0.2)
MOTOR_STRENGTH_RANGE = (0.8, 1.2)
ONEHOT_MODES = ("tasks", "terrains")
DOF_RESET_RANGE = (0.0, 0.9)
"""Upstream's joint reset: default + U(0, 0.9) rad on every joint (what its code does; the docstring there says a
0.5-1.5x scaling). Large: clipped to the joint limits here."""
_STATE = (
    "actions", "commands", "goal_idx", "goal_timer", "level", "env_goals", "kp_scale", "kd_scale", "added_mass",
    "com_offset", "friction", "scan_h", "dyaw", "last_contacts", "contact_filt", "ep_return", "ep_goal_vel",
    "ep_length", "physics_resets", "obs",
)  # fmt: skip


@dataclass
class _Block:
    """One terrain type's worlds and the per-block tensors the step needs, in the physics dtype."""

    scene: ParkourScene
    sim: SceneBlock
    sl: slice
    default: torch.Tensor  # (12,)
    limits: torch.Tensor  # (12,)
    kp: torch.Tensor  # (n, 12) Kp x m_p
    kd: torch.Tensor  # (n, 12) Kd x m_d
    tau: torch.Tensor  # (n, 12) last substep's torque
    robot_geoms: torch.Tensor
    mass0: float
    ipos0: torch.Tensor  # (3,)

    @property
    def tid(self) -> int:
        return self.scene.tid


def _uniform(lo: float, hi: float, shape, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=device) * (hi - lo) + lo


class ParkourVecEnv(MultiTaskVecEnv):
    """Batched multi-task parkour for the Go1.

    task: a setting ("parkour_easy" | "parkour_hard" | "parkour_hard_cl" | "parkour_flat"), or terrain ids/names
      (0..20; an int, a name or a list) with `setting` ("easy" | "hard" | "hard_cl"; default "hard").
    num_envs / task_counts: even split by default; counts must sum to num_envs.
    backend: "auto" | "cpu" | "warp". episode_length: 2000 policy steps (40 s).
    random_init_progress: start every episode counter at U[0, episode_length) on reset() (upstream: on).
    domain_rand: friction, added mass, COM offset, motor strength, pushes (upstream: on); push_robots overrides
      the pushes alone. curriculum: None = the setting's. action_scale: 1.0 (training) or 0.25 (upstream test).
    terrain_seed: the terrain columns' seed (independent of `seed`, so every training seed sees the same courses,
      as upstream's deterministic tile seeds). difficulties: override the setting's row difficulties (in [0, 1]).
    dof_reset_range: joint reset offset range (rad) added to the default pose.
    pd: "engine" (default: the PD law evaluated by the physics engine at every physics step from per-world gains, one
      step(4) call per policy step) or "torch" (the torque computed in torch before each of the 4 physics steps and
      written to ctrl, one step(1) call each). Same dynamics (tests/test_parkour_env.py compares them); "engine"
      is 2x faster on the CPU backend and launches a quarter of the CUDA graphs.
    onehot: "tasks" (over the selected terrain types, ordered by id, as the Meta-World env) or "terrains" (21 wide,
      indexed by terrain id whatever the selection: then a policy pre-trained on parkour_flat has the input size of
      one fine-tuned on the 21 types, as upstream's flat -> multi-task weight transfer needs).
    nconmax / njmax: MuJoCo Warp's contact slots and constraint rows per world, for every terrain (default: each
      terrain's measured size, parkour/capacity.py); `check_sim()` says when to raise them. The C engine ignores them.
    """

    action_dtype = torch.float32
    action_doc = "12 joint-position offsets"
    options_key = "parkour"
    view = View(track_body=R.BASE_BODY, headlight=(0.45, 0.7))

    def __init__(
        self,
        task: str | int | list = "parkour_hard",
        num_envs: PosInt | None = None,
        device: str | torch.device | None = None,
        backend: Literal[BACKENDS] = "auto",
        seed: int = 0,
        task_counts: list[int] | None = None,  # positive, one per task: checked with the task list
        setting: str | None = None,
        episode_length: PosInt = 2000,
        random_init_progress: bool = True,
        domain_rand: bool = True,
        push_robots: bool | None = None,
        curriculum: bool | None = None,
        action_scale: PosFloat = 1.0,
        nthread: PosInt | None = None,
        terrain_seed: int = 0,
        difficulties: list[UnitFloat] | None = None,
        dof_reset_range: tuple[float, float] = DOF_RESET_RANGE,
        check_actions: bool = True,
        pd: Literal[PD_MODES] = "engine",
        onehot: Literal[ONEHOT_MODES] = "tasks",
        nconmax: PosInt | None = None,
        njmax: PosInt | None = None,
    ):
        # every check before any physics is built
        check_values({k: v for k, v in locals().items() if k != "self"}, ParkourVecEnv.__init__)
        self.setting, task_ids = resolve(task, setting)
        lo, hi = (float(v) for v in dof_reset_range)
        if lo > hi:
            raise ValueError(f"dof_reset_range {dof_reset_range} must be (low, high) with low <= high")
        diffs = tuple(self.setting.difficulties if difficulties is None else (float(d) for d in difficulties))
        if not diffs or any(not 0.0 <= d <= 1.0 for d in diffs):
            raise ValueError(f"difficulties {diffs} must be a non-empty list of values in [0, 1], one per row")
        names = [TERRAIN_NAMES[t] for t in task_ids]
        super().__init__(task_ids, names, num_envs, task_counts, device, backend, seed, episode_length,
                         random_init_progress, check_actions)  # fmt: skip

        n_tasks = self.num_tasks
        self.domain_rand = domain_rand
        self.push_robots = domain_rand if push_robots is None else push_robots
        self.curriculum = self.setting.curriculum if curriculum is None else bool(curriculum)
        self.action_scale = float(action_scale)
        self.action_bound = ACTION_CLIP / self.action_scale  # the clip, in action units
        self.terrain_seed = terrain_seed
        self.difficulties = diffs
        self.n_rows = len(diffs)
        self.dof_reset_range = (lo, hi)
        self.pd = pd
        self.nconmax, self.njmax = nconmax, njmax  # None: each terrain's measured size (capacity.py)
        self._fields = PER_WORLD + (PD_FIELDS if pd == "engine" else ())
        self.onehot_mode = onehot
        n_onehot = n_tasks if onehot == "tasks" else len(TERRAIN_NAMES)
        self.obs_dim = O.N_BASE + n_onehot
        self.action_dim = R.NUM_JOINTS
        self.dt = W.POLICY_DT
        self.obs_layout = O.obs_layout(n_onehot)

        # scenes and blocks
        self.blocks: list[_Block] = []
        for tid, sl in zip(self.task_ids, self.task_slices):
            scene = build_scene(tid, diffs, terrain_seed, pd)
            n = sl.stop - sl.start
            sizes = buffer_sizes(MEASURED[TERRAIN_NAMES[tid]], nconmax, njmax)
            sim = make_block(self.backend, scene.model, n, self.device, nthread=nthread, per_world=self._fields,
                             **sizes)  # fmt: skip
            self.blocks.append(self._make_block(scene, sim, sl))

        N, dev, f32 = self.num_envs, self.device, torch.float32
        if onehot == "terrains":  # indexed by terrain id, whatever the selection
            self.onehot = torch.nn.functional.one_hot(self.env_task_id, n_onehot).to(f32)

        # terrain tables, all columns stacked (they share the grid shape: same rows)
        cols = [b.scene.column for b in self.blocks]
        c0 = cols[0]
        self._grid = (float(c0.x0), float(c0.y0), float(c0.scale))
        self._heights = torch.stack([torch.from_numpy(c.height) for c in cols]).to(dev)
        goals = torch.stack([torch.as_tensor(c.goals, dtype=f32) for c in cols]).to(dev)  # (B, rows, 8, 2)
        self._goals = W.pad_goals(goals)
        spawn_z = torch.stack([torch.as_tensor(b.scene.spawn_ground, dtype=f32) for b in self.blocks]) + R.SPAWN_HEIGHT
        self._origins = torch.cat([torch.stack([torch.as_tensor(c.origins, dtype=f32) for c in cols]),
                                   spawn_z[..., None]], dim=-1).to(dev)  # fmt: skip
        self._scan_offsets = torch.as_tensor(O.scan_offsets(), dtype=f32, device=dev)
        self._default = torch.as_tensor(R.DEFAULT_JOINT_POS, dtype=f32, device=dev)
        self._limits = torch.as_tensor(R.JOINT_LIMITS, dtype=f32, device=dev)
        self._friction_buckets = _uniform(*FRICTION_RANGE, (FRICTION_BUCKETS,), self.gen, dev)

        # per-env state
        z = lambda *s, dtype=f32: torch.zeros(N, *s, dtype=dtype, device=dev)
        self.actions = z(12)
        self.commands = z()
        self.goal_idx = z(dtype=torch.long)
        self.goal_timer = z(dtype=torch.long)
        self.level = z(dtype=torch.long)
        self.env_goals = z(*self._goals.shape[2:])
        self.kp_scale = torch.ones(N, 12, device=dev)
        self.kd_scale = torch.ones(N, 12, device=dev)
        self.added_mass = z()
        self.com_offset = z(3)
        self.friction = torch.ones(N, device=dev)
        self.scan_h = z(O.N_SCAN)
        self.dyaw = z(2)
        self.last_contacts = z(4, dtype=torch.bool)
        self.contact_filt = z(4, dtype=torch.bool)
        self.ep_goal_vel = z()  # sum over the episode of the velocity toward the current goal (m/s)
        self.obs = z(self.obs_dim)
        # on the host, reset only the envs that ended (indexing costs no sync there); on CUDA write every env masked
        self._host_indexing = self.device.type == "cpu"
        self._counter = 0  # global policy steps (upstream common_step_counter): pushes, scan/yaw refresh

    # -- construction ------------------------------------------------------------------------------
    def _make_block(self, scene: ParkourScene, sim: SceneBlock, sl: slice) -> _Block:
        dt, dev, n = sim.dtype, self.device, sim.n
        return _Block(
            scene=scene,
            sim=sim,
            sl=sl,
            default=torch.as_tensor(R.DEFAULT_JOINT_POS, dtype=dt, device=dev),
            limits=torch.as_tensor(R.TORQUE_LIMITS, dtype=dt, device=dev),
            kp=torch.full((n, 12), R.KP, dtype=dt, device=dev),
            kd=torch.full((n, 12), R.KD, dtype=dt, device=dev),
            tau=torch.zeros(n, 12, dtype=dt, device=dev),
            robot_geoms=torch.as_tensor(scene.robot_geoms, dtype=torch.long, device=dev),
            mass0=float(scene.model.body_mass[scene.base_body]),
            ipos0=torch.as_tensor(scene.model.body_ipos[scene.base_body], dtype=dt, device=dev),
        )

    # -- physics state -----------------------------------------------------------------------------
    def _gather(self) -> tuple[torch.Tensor, torch.Tensor]:
        """qpos (N, 19) and qvel (N, 18) of every world, float32 on the env's device."""
        qpos = torch.cat([b.sim.qpos for b in self.blocks]).to(self.device, torch.float32)
        qvel = torch.cat([b.sim.qvel for b in self.blocks]).to(self.device, torch.float32)
        return qpos, qvel

    def _contact_forces(self) -> torch.Tensor:
        """(N, 12) net contact force norms on the feet, thighs and calves (scene.CONTACT_BODIES order)."""
        idx = self.blocks[0].scene.force_index.reshape(-1)  # every scene carries the same robot and sensors
        sd = torch.cat([b.sim.sensordata[:, idx] for b in self.blocks]).to(self.device, torch.float32)
        return torch.linalg.vector_norm(sd.view(-1, 12, 3), dim=-1)

    def _torques(self) -> torch.Tensor:
        """(N, 12) joint torques applied during the last physics step."""
        if self.pd == "torch":
            return torch.cat([b.tau for b in self.blocks]).to(self.device, torch.float32)
        idx = self.blocks[0].scene.torque_index
        return torch.cat([b.sim.sensordata[:, idx] for b in self.blocks]).to(self.device, torch.float32)

    # -- observation -------------------------------------------------------------------------------
    def _caches(self, qpos: torch.Tensor, yaw: torch.Tensor, block: torch.Tensor, goals: torch.Tensor,
                goal_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Scandot heights (n, 132) and the yaw differences to the current and next goal (n, 2)."""
        pos = qpos[:, :2]
        pts = O.scan_points(pos, O.heading(qpos[:, 3:7]), self._scan_offsets)
        h = O.scan_heights(self._heights, block, pts, *self._grid)
        cur, nxt = W.current_goals(goals, goal_idx)
        return h, torch.stack((O.goal_yaw(pos, cur) - yaw, O.goal_yaw(pos, nxt) - yaw), dim=1)

    def _refresh_caches(self, qpos: torch.Tensor, yaw: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Recompute the scandot heights and the two yaw differences of all envs, or of those in `mask`."""
        if mask is None:
            self.scan_h, self.dyaw = self._caches(qpos, yaw, self.env_block, self.env_goals, self.goal_idx)
        elif self._host_indexing:  # index the few envs that reset
            ids = mask.nonzero().squeeze(1)
            h, dy = self._caches(qpos[ids], yaw[ids], self.env_block[ids], self.env_goals[ids], self.goal_idx[ids])
            self.scan_h[ids] = h
            self.dyaw[ids] = dy
        else:
            h, dy = self._caches(qpos, yaw, self.env_block, self.env_goals, self.goal_idx)
            m = mask[:, None]
            self.scan_h = torch.where(m, h, self.scan_h)
            self.dyaw = torch.where(m, dy, self.dyaw)

    def _observe(self, qpos: torch.Tensor, qvel: torch.Tensor, refresh: bool | torch.Tensor) -> torch.Tensor:
        quat = qpos[:, 3:7]
        roll, pitch, yaw = O.quat_rpy(quat)
        if refresh is True:
            self._refresh_caches(qpos, yaw, None)
        elif refresh is not False:
            self._refresh_caches(qpos, yaw, refresh)
        obs = torch.cat(
            (
                qvel[:, 3:6] * O.ANG_VEL_SCALE,  # MuJoCo's free-joint angular velocity is in the body frame
                roll[:, None],
                pitch[:, None],
                self.dyaw,
                self.commands[:, None],
                qpos[:, R.QPOS_JOINTS] - self._default,
                qvel[:, R.QVEL_JOINTS] * O.DOF_VEL_SCALE,
                self.actions,
                self.contact_filt.float() - 0.5,
                O.scandots(qpos[:, 2], self.scan_h),
                O.rotate_inverse(quat, qvel[:, :3]) * O.LIN_VEL_SCALE,  # free-joint linear velocity: world frame
                self.added_mass[:, None],
                self.com_offset,
                self.friction[:, None],
                self.kp_scale - 1.0,
                self.kd_scale - 1.0,
                self.onehot,
            ),
            dim=1,
        )
        return obs.clamp(-O.OBS_CLIP, O.OBS_CLIP)

    # -- reset -------------------------------------------------------------------------------------
    def _initial_levels(self) -> torch.Tensor:
        if self.curriculum:
            top = min(MAX_INIT_LEVEL, self.n_rows - 1)
            return torch.randint(0, top + 1, (self.num_envs,), generator=self.gen, device=self.device)
        # round-robin over the rows within each block
        local = torch.cat([torch.arange(b.sim.n) for b in self.blocks]).to(self.device)
        return local % self.n_rows

    def _reset_envs(self, mask: torch.Tensor, levels: torch.Tensor | None = None) -> None:
        """Start new episodes in the envs of `mask` (N,) bool; `levels` sets their rows (else the curriculum
        moves them, when on)."""
        N, dev, g = self.num_envs, self.device, self.gen
        m1 = mask[:, None]
        if levels is not None:
            self.level = torch.where(mask, levels, self.level)
        elif self.curriculum:
            self.level = torch.where(mask, W.curriculum_update(self.level, self.goal_idx, self.n_rows, g), self.level)
        zero_l = torch.zeros_like(self.goal_idx)
        self.goal_idx = torch.where(mask, zero_l, self.goal_idx)
        self.goal_timer = torch.where(mask, zero_l, self.goal_timer)
        self.env_goals = torch.where(mask[:, None, None], self._goals[self.env_block, self.level], self.env_goals)
        self.commands = torch.where(mask, _uniform(*COMMAND_RANGE, (N,), g, dev), self.commands)
        if self.domain_rand:
            bucket = torch.randint(0, FRICTION_BUCKETS, (N,), generator=g, device=dev)
            self.friction = torch.where(mask, self._friction_buckets[bucket], self.friction)
            self.added_mass = torch.where(mask, _uniform(*ADDED_MASS_RANGE, (N,), g, dev), self.added_mass)
            self.com_offset = torch.where(m1, _uniform(*COM_RANGE, (N, 3), g, dev), self.com_offset)
            self.kp_scale = torch.where(m1, _uniform(*MOTOR_STRENGTH_RANGE, (N, 12), g, dev), self.kp_scale)
            self.kd_scale = torch.where(m1, _uniform(*MOTOR_STRENGTH_RANGE, (N, 12), g, dev), self.kd_scale)
        self.actions = torch.where(m1, 0.0, self.actions)
        self.last_contacts = self.last_contacts & ~m1
        self.contact_filt = self.contact_filt & ~m1
        self._end_episodes(mask)
        self.ep_goal_vel = torch.where(mask, 0.0, self.ep_goal_vel)

        dof = self._default + _uniform(*self.dof_reset_range, (N, 12), g, dev)
        dof = torch.minimum(torch.maximum(dof, self._limits[:, 0]), self._limits[:, 1])
        origin = self._origins[self.env_block, self.level]
        quat = torch.zeros(N, 4, device=dev)
        quat[:, 0] = 1.0
        qpos = torch.cat((origin, quat, dof), dim=1)
        for b in self.blocks:
            mb = mask[b.sl]
            if self._host_indexing and not bool(mb.any()):
                continue
            self._write_block(b, mb, qpos[b.sl])

    def _write_block(self, b: _Block, mb: torch.Tensor, qpos: torch.Tensor) -> None:
        sim, dt = b.sim, b.sim.dtype
        m1 = mb[:, None]
        sim.qpos.copy_(torch.where(m1, qpos.to(dt), sim.qpos))
        # velocity, controls and the solver warm start zeroed: this also scrubs a blown-up world, so that no
        # forward() is needed before the next step (checked on both backends)
        for field in (sim.qvel, sim.ctrl, sim.qacc_warmstart):
            field.copy_(torch.where(m1, torch.zeros((), dtype=dt, device=field.device), field))
        b.tau = torch.where(m1, 0.0, b.tau)
        b.kp = R.KP * self.kp_scale[b.sl].to(dt)
        b.kd = R.KD * self.kd_scale[b.sl].to(dt)
        if self.pd == "engine":
            sim.fields["actuator_gainprm"][:, :, 0] = b.kp
            sim.fields["actuator_biasprm"][:, :, 1] = -b.kp
            sim.fields["actuator_biasprm"][:, :, 2] = -b.kd
        # domain randomisation through per-world model fields. MuJoCo's derived constants (mj_setConst: invweight0,
        # used to scale contact softness) stay at the nominal mass on both backends: MuJoCo Warp cannot recompute them
        # per world, and MuJoCo C is kept the same (and cheaper) by not calling sync_model().
        fr = sim.fields["geom_friction"]
        g = b.robot_geoms
        fr[:, g, 0] = torch.where(m1, self.friction[b.sl, None].to(dt), fr[:, g, 0])
        mass = sim.fields["body_mass"]
        base = b.scene.base_body
        mass[:, base] = torch.where(mb, (b.mass0 + self.added_mass[b.sl]).to(dt), mass[:, base])
        ipos = sim.fields["body_ipos"]
        ipos[:, base] = torch.where(m1, b.ipos0 + self.com_offset[b.sl].to(dt), ipos[:, base])

    def _reset_worlds(self) -> torch.Tensor:
        """Rows: round-robin, or random in [0, 2] with the curriculum."""
        everyone = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        self._reset_envs(everyone, levels=self._initial_levels())
        for b in self.blocks:
            b.sim.forward()  # derived quantities (xpos, ...) of the new states, for anyone reading them
        qpos, qvel = self._gather()
        return self._observe(qpos, qvel, refresh=True)

    def refresh_obs(self) -> torch.Tensor:
        """Recompute `obs` from the current physics state, scandots and goal yaws included (after writing qpos/qvel
        directly, e.g. to place a robot); contact flags and the last action are kept."""
        with torch_single_threaded(self.backend == "cpu"):
            for b in self.blocks:
                b.sim.forward()
            qpos, qvel = self._gather()
            self.obs = self._observe(qpos, qvel, refresh=True)
            return self.obs

    # -- step --------------------------------------------------------------------------------------
    def _push(self) -> None:
        v = _uniform(-PUSH_VEL, PUSH_VEL, (self.num_envs, 2), self.gen, self.device)
        for b in self.blocks:
            b.sim.qvel[:, 0:2] = v[b.sl].to(b.sim.dtype)

    def _physics(self, act: torch.Tensor) -> torch.Tensor:
        """The 4 PD substeps of every block; returns the (N,) blow-up mask."""
        blowups = []
        targets = self._default + act * self.action_scale
        for b in self.blocks:
            sim = b.sim
            if self.pd == "engine":
                sim.ctrl.copy_(targets[b.sl])
                blowups.append(sim.step(R.DECIMATION, kinematics=False))  # only qpos, qvel, sensordata are read
                continue
            target = targets[b.sl].to(sim.dtype)
            lim = b.limits
            bad = None
            for _ in range(R.DECIMATION):
                tau = b.kp * (target - sim.qpos[:, R.QPOS_JOINTS]) - b.kd * sim.qvel[:, R.QVEL_JOINTS]
                tau = torch.clamp(tau, -lim, lim)
                sim.ctrl.copy_(tau)
                s = sim.step(1, kinematics=False)
                bad = s if bad is None else bad | s
            b.tau = tau
            blowups.append(bad)
        return torch.cat(blowups).to(self.device)

    def _step(self, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Joint-position actions (num_envs, 12): 4 x 5 ms of physics, then waypoints, rewards, auto-reset."""
        self.actions = act
        self._counter += 1
        if self.push_robots and self._counter % PUSH_INTERVAL == 0:
            self._push()
        blowup = self._physics(act)

        qpos, qvel = self._gather()
        force = self._contact_forces()
        tau = self._torques()
        pos = qpos[:, :3]
        roll, pitch, yaw = O.quat_rpy(qpos[:, 3:7])
        contact = force[:, :4] > O.FOOT_CONTACT_FORCE
        self.contact_filt = contact | self.last_contacts
        self.last_contacts = contact

        # waypoints
        cur, _ = W.current_goals(self.env_goals, self.goal_idx)
        dist = torch.linalg.vector_norm(cur - pos[:, :2], dim=1)
        self.goal_idx, self.goal_timer, _ = W.advance_goals(dist, self.goal_timer, self.goal_idx)
        cur, _ = W.current_goals(self.env_goals, self.goal_idx)

        terms = {
            "tracking_goal_vel": W.tracking_goal_vel(qvel[:, :2], pos[:, :2], cur, self.commands),
            "tracking_yaw": W.tracking_yaw(O.goal_yaw(pos[:, :2], cur), yaw),
            "energy": W.energy(tau, qvel[:, R.QVEL_JOINTS]),
            "collision": W.collision(force[:, 4:]),
        }
        reward = torch.where(blowup, 0.0, W.total_reward(terms))

        self._count_step(reward, blowup)
        self.ep_goal_vel += torch.where(blowup, 0.0, W.goal_velocity(qvel[:, :2], pos[:, :2], cur))
        terminated = W.failed(roll, pitch, pos[:, 2]) & ~blowup
        truncated = (W.timed_out(self.ep_length, self.episode_length, self.goal_idx) | blowup) & ~terminated
        done = terminated | truncated
        resample = self.ep_length % COMMAND_INTERVAL == 0
        self.commands = torch.where(
            resample, _uniform(*COMMAND_RANGE, (self.num_envs,), self.gen, self.device), self.commands
        )

        obs = self._observe(qpos, qvel, refresh=self._counter % O.REFRESH_EVERY == 0)
        obs = torch.where(blowup[:, None], 0.0, obs)  # a blown-up world's state is NaN or MuJoCo's reset pose
        progress = W.progress(self.goal_idx)
        info = self._info(
            progress, obs.clone(), blowup, done, progress,
            progress=progress,
            goals_reached=self.goal_idx.clone(),
            goal_velocity=self.ep_goal_vel / self.ep_length,  # mean m/s toward the current goal
            terrain_level=self.level.clone(),
        )  # fmt: skip

        # auto-reset: the returned observation starts the new episode
        if not self._host_indexing or bool(done.any()):
            self._reset_envs(done)
            qpos, qvel = self._gather()
            obs = torch.where(done[:, None], self._observe(qpos, qvel, refresh=done), obs)
        info["terrain_level"] = self.level.clone()
        self.obs = obs
        return obs, reward, terminated, truncated, info

    # -- conveniences ------------------------------------------------------------------------------
    def _task_id(self, task: str | int) -> int:
        return terrain_id(task)

    def _suite_state(self) -> dict:
        """Physics, per-world model fields, episode values and counters."""
        out: dict = {"counter": self._counter, **{k: getattr(self, k).clone() for k in _STATE}}
        for i, b in enumerate(self.blocks):
            sim = b.sim
            for k in ("qpos", "qvel", "ctrl", "qacc_warmstart"):
                out[f"block{i}/{k}"] = getattr(sim, k).clone()
            for k in self._fields:
                out[f"block{i}/field/{k}"] = sim.fields[k].clone()
            out[f"block{i}/tau"] = b.tau.clone()
        return out

    def _load_suite_state(self, state: dict) -> None:
        self._counter = int(state["counter"])
        for k in _STATE:
            setattr(self, k, state[k].to(self.device).clone())
        for i, b in enumerate(self.blocks):
            sim = b.sim
            for k in ("qpos", "qvel", "ctrl", "qacc_warmstart"):
                getattr(sim, k).copy_(state[f"block{i}/{k}"])
            for k in self._fields:
                sim.fields[k].copy_(state[f"block{i}/field/{k}"])
            b.tau = state[f"block{i}/tau"].to(self.device).clone()
            b.kp = R.KP * self.kp_scale[b.sl].to(sim.dtype)
            b.kd = R.KD * self.kd_scale[b.sl].to(sim.dtype)
            sim.forward()

    def _repr_details(self) -> str:
        return f", {self.setting.name}, {self.n_rows} rows, curriculum={self.curriculum}"


# ---------------------------------------------------------------------------------------------------------
# speed


def bench_parkour(
    num_envs: int = 210,
    steps: int = 100,
    task="parkour_hard",
    pd: str = "engine",
    nthread: int | None = None,
    seed: int = 0,
) -> dict:
    """Env-steps/s of ParkourVecEnv on the CPU backend (random actions, N(0, 0.3) rad), and the ceiling: raw MuJoCo C
    stepping (`mujoco.batch.Batch.step(nstep=4)`, one call per terrain per policy step) of the same scenes with the
    PD inside the engine (scene.engine_pd: the same dynamics as the torch PD), the same number of worlds, threads,
    start states and actions, and nothing else: no observation, reward, reset or torch.
    Returns {"env", "ceiling", "ratio", "num_envs", "steps", "threads", "repr"}."""
    from mujoco import batch as mjbatch

    env = ParkourVecEnv(task, num_envs=num_envs, device="cpu", backend="cpu", nthread=nthread, seed=seed, pd=pd,
                        check_actions=False)  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    acts = [torch.randn(num_envs, 12, generator=gen) * 0.3 for _ in range(16)]
    env.reset()
    for i in range(5):
        env.step(acts[i % 16])
    start = time.perf_counter()
    for i in range(steps):
        env.step(acts[i % 16])
    env_fps = num_envs * steps / (time.perf_counter() - start)

    env.reset()
    threads = env.blocks[0].sim.batch.nthread
    default = np.asarray(R.DEFAULT_JOINT_POS)
    raw = []
    for b in env.blocks:
        scene = build_scene(b.tid, env.difficulties, env.terrain_seed, "engine")
        bt = mjbatch.Batch(scene.model, nsim=b.sim.n, nthread=threads)
        bt.bind("qpos")[:] = b.sim.qpos.numpy()
        bt.bind("qvel")[:] = 0.0
        raw.append((bt, bt.bind("ctrl"), b.sl))
    acts_np = [a.numpy().astype(np.float64) for a in acts]
    start = time.perf_counter()
    for i in range(steps):
        a_all = acts_np[i % 16]
        for bt, ctrl, sl in raw:
            ctrl[:] = default + a_all[sl]
            bt.step(nstep=R.DECIMATION)
    ceil_fps = num_envs * steps / (time.perf_counter() - start)
    return {
        "env": env_fps,
        "ceiling": ceil_fps,
        "ratio": env_fps / ceil_fps,
        "num_envs": num_envs,
        "steps": steps,
        "threads": threads,
        "repr": repr(env),
    }
