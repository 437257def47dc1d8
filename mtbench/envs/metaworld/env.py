"""`MetaWorldVecEnv`: many Meta-World tasks, each a contiguous block of worlds, behind the `MultiTaskVecEnv`
interface (mtbench/envs/core.py).

The env knows the Meta-World step (mocap hand, gripper, the 39-d observation, goal modes) and nothing of any one
task: each block's `MetaWorldTask` places objects, names the observed bodies and scores the step. All tensors
live on `device`; on CUDA nothing here waits for the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from mtbench.envs.core import BACKENDS, MultiTaskVecEnv, View
from mtbench.envs.metaworld.capacity import MEASURED
from mtbench.envs.metaworld.goals import N_GOALS, metaworld_goals, sample_uniform
from mtbench.envs.metaworld.registry import METAWORLD_NAMES, resolve, task_class
from mtbench.envs.metaworld.scene import FRAME_SKIP
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState
from mtbench.sim import SceneBlock, make_block
from mtbench.sim.capacity import buffer_sizes
from mtbench.sim.cpu import default_threads
from mtbench.sim.queue import StepQueue, thread_layout
from mtbench.validation import PosFloat, PosInt, check_values

ACTION_SCALE = 0.01  # metres of mocap motion per unit action, as Meta-World
GOAL_MODES = ("rand", "fixed", "metaworld")
_ENV_STATE = ("ep_return", "ep_length", "ep_success", "physics_resets", "obs", "metaworld_obs")


@dataclass
class _Block:
    """One task's worlds: its slice of the env batch and everything needed to step and reset it."""

    task: MetaWorldTask
    state: TaskState
    sl: slice
    mocap_low: torch.Tensor
    mocap_high: torch.Tensor
    obs_low: torch.Tensor
    obs_high: torch.Tensor
    prev_frame: torch.Tensor
    gripper_signs: torch.Tensor
    fixed_vec: torch.Tensor | None = None
    goal_table: torch.Tensor | None = None

    @property
    def sim(self) -> SceneBlock:
        return self.state.sim


class MetaWorldVecEnv(MultiTaskVecEnv):
    """Batched multi-task Meta-World. See `mtbench.make` for the arguments."""

    action_doc = "hand xyz motion and gripper effort, in [-1, 1]"
    view = View(camera="corner3")

    def __init__(
        self,
        task: str | int | list = "mt10",
        num_envs: PosInt | None = None,
        task_counts: list[int] | None = None,  # positive, one per task: checked with the task list
        device: str | torch.device | None = None,
        backend: Literal[BACKENDS] = "auto",
        seed: int = 0,
        episode_length: PosInt = 150,
        goal_mode: Literal[GOAL_MODES] = "rand",
        reward_scale: PosFloat = 1.0,
        terminate_on_success: bool = False,
        random_init_progress: bool = False,
        check_actions: bool = True,
        nthread: PosInt | None = None,
        nconmax: PosInt | None = None,
        njmax: PosInt | None = None,
    ):
        # every check before any physics is built
        check_values({k: v for k, v in locals().items() if k != "self"}, MetaWorldVecEnv.__init__)
        task_ids = resolve(task)
        for tid in task_ids:
            task_class(tid)
        names = [METAWORLD_NAMES[t] for t in task_ids]
        super().__init__(task_ids, names, num_envs, task_counts, device, backend, seed, episode_length,
                         random_init_progress, check_actions)  # fmt: skip

        self.goal_mode = goal_mode
        self.reward_scale = reward_scale
        self.terminate_on_success = terminate_on_success
        self.nconmax, self.njmax = nconmax, njmax  # None: each scene's measured size (capacity.py)
        self.obs_dim = 39 + self.num_tasks
        self.action_dim = 4

        workers, per_block = thread_layout(nthread or default_threads(), self.num_tasks)
        self.nthread = workers * per_block if self.backend == "cpu" else None
        self.blocks: list[_Block] = [
            self._make_block(task_class(tid)(), sl, per_block) for tid, sl in zip(self.task_ids, self.task_slices)
        ]
        self.action_dtype = self.blocks[0].sim.dtype  # the engine's: float64 on MuJoCo C, float32 on Warp
        N, dev = self.num_envs, self.device
        self.ep_success = torch.zeros(N, dtype=torch.bool, device=dev)
        self.obs = torch.zeros(N, self.obs_dim, device=dev)
        # the current 39-d Meta-World observation in the physics dtype (float64 on the CPU backend), for
        # scripted experts and checks that want it unrounded
        self.metaworld_obs = torch.zeros(N, 39, device=dev)
        self._queue = StepQueue(workers if self.backend == "cpu" else 0)

    # -- construction ------------------------------------------------------------------------------
    def _make_block(self, task: MetaWorldTask, sl: slice, nthread: int | None) -> _Block:
        n = sl.stop - sl.start
        sizes = buffer_sizes(MEASURED[task.name], self.nconmax, self.njmax)
        sim = make_block(self.backend, task.model(), n, self.device, nthread=nthread, **sizes)
        state = task.make_state(sim)
        dt, dev = sim.dtype, self.device
        mlow, mhigh = task.mocap_box
        olow, ohigh = task.obs_box()
        blk = _Block(
            task=task,
            state=state,
            sl=sl,
            mocap_low=torch.as_tensor(mlow, dtype=dt, device=dev),
            mocap_high=torch.as_tensor(mhigh, dtype=dt, device=dev),
            obs_low=torch.as_tensor(olow, dtype=dt, device=dev),
            obs_high=torch.as_tensor(ohigh, dtype=dt, device=dev),
            prev_frame=torch.zeros(n, 18, dtype=dt, device=dev),
            gripper_signs=torch.tensor([1.0, -1.0], dtype=dt, device=dev),
        )
        if self.goal_mode == "fixed":
            blk.fixed_vec = sample_uniform(task, n, self.gen, dt, dev)
        elif self.goal_mode == "metaworld":
            table = torch.as_tensor(metaworld_goals(task, self.seed), dtype=dt, device=dev)
            blk.goal_table = table[torch.arange(n, device=dev) % N_GOALS]
        return blk

    # -- observation -------------------------------------------------------------------------------
    @staticmethod
    def _frame(blk: _Block) -> torch.Tensor:
        return blk.task.frame(blk.state)

    def _obs39(self, blk: _Block, frame: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        raw = torch.cat((frame, prev, blk.state.target_pos), dim=1)
        return torch.maximum(torch.minimum(raw, blk.obs_high), blk.obs_low)

    def _full_obs(self, obs39: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat((torch.cat([o.float() for o in obs39]), self.onehot), dim=1)

    # -- reset -------------------------------------------------------------------------------------
    def _reset_vectors(self, blk: _Block, ids: torch.Tensor) -> torch.Tensor:
        if blk.fixed_vec is not None:
            return blk.fixed_vec[ids]
        if blk.goal_table is not None:
            return blk.goal_table[ids]
        return sample_uniform(blk.task, len(ids), self.gen, blk.state.sim.dtype, self.device)

    def _reset_ids(self, blk: _Block, ids: torch.Tensor) -> None:
        s = blk.state
        s.restore_template(ids)
        blk.task.place(s, ids, self._reset_vectors(blk, ids))
        s.sim.sync_model()
        s.sim.forward(ids)

    def _snapshot(self, s: TaskState) -> dict[str, torch.Tensor]:
        sim = s.sim
        snap = {
            k: getattr(sim, k).clone()
            for k in ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart", "body_pos")
        }
        # init_tcp too: tasks whose reset re-settles the hand (door-lock, assembly, ...) write it per world
        snap["obj_init_pos"], snap["target_pos"] = s.obj_init_pos.clone(), s.target_pos.clone()
        snap["init_tcp"] = s.init_tcp.clone()
        snap.update({f"episode/{k}": v.clone() for k, v in s.episode.items()})
        return snap

    def _blend(self, s: TaskState, keep: torch.Tensor, snap: dict[str, torch.Tensor]) -> None:
        """Worlds in `keep` get their snapshot back: a masked reset without a host round trip."""
        for key, old in snap.items():
            if key.startswith("episode/"):
                cur = s.episode[key[8:]]
            elif key in ("obj_init_pos", "target_pos", "init_tcp"):
                cur = getattr(s, key)
            else:
                cur = getattr(s.sim, key)
            m = keep.view(-1, *([1] * (cur.dim() - 1)))
            cur.copy_(torch.where(m, old, cur))

    def _reset_block(self, blk: _Block, mask: torch.Tensor) -> bool:
        """Reset the worlds of `mask` (n,) bool. On the CPU index them; elsewhere reset all and blend.
        Returns False when it is known that nothing was reset (CPU only; the GPU path never syncs)."""
        s = blk.state
        if self.device.type == "cpu":
            ids = mask.nonzero().squeeze(1)
            if not ids.numel():
                return False
            self._reset_ids(blk, ids)
        else:
            snap = self._snapshot(s)
            self._reset_ids(blk, torch.arange(s.n, device=self.device))
            self._blend(s, ~mask, snap)
            s.sim.sync_model()
            s.sim.forward()
        return True

    def _reset_worlds(self) -> torch.Tensor:
        out = []
        for blk in self.blocks:
            n = blk.state.n
            self._reset_ids(blk, torch.arange(n, device=self.device))
            frame = self._frame(blk)
            blk.prev_frame.copy_(frame)
            out.append(self._obs39(blk, frame, frame))
        self.ep_success.zero_()
        self.metaworld_obs = torch.cat(out)
        return self._full_obs(out)

    # -- step --------------------------------------------------------------------------------------
    def _step(self, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        # Every block's physics is queued before any block is scored, and each block is scored and
        # auto-reset as soon as its physics is done: on the CPU backend that torch work overlaps the stepping
        # of the blocks behind it (see `mtbench.sim.queue`). Blocks reset in order, so the RNG draws are the
        # same as with no overlap.
        pending = []
        for blk in self.blocks:
            a = self._apply_actions(blk, act)
            pending.append((blk, a, self._queue.submit(blk.state.sim, FRAME_SKIP)))
        obs39, obs39_next, rewards, successes, blowups, dones = [], [], [], [], [], []
        for blk, a, handle in pending:
            bl = handle.result().to(self.device)
            frame = self._frame(blk)
            o = self._obs39(blk, frame, blk.prev_frame)
            blk.prev_frame.copy_(frame)
            r, succ = blk.task.evaluate(blk.state, o, a)
            succ = succ & ~bl
            done = (self.ep_length[blk.sl] >= self.episode_length - 1) | bl
            if self.terminate_on_success:
                done |= succ
            obs39.append(o)
            obs39_next.append(self._auto_reset(blk, done, o))
            rewards.append(r)
            successes.append(succ)
            blowups.append(bl)
            dones.append(done)

        final_obs = self._full_obs(obs39)
        obs = final_obs.clone()
        for blk, o, fresh in zip(self.blocks, obs39, obs39_next):
            if fresh is not o:  # the block reset some worlds (on the CPU backend only those that did)
                obs[blk.sl, :39] = fresh
        blowup = torch.cat(blowups)
        done = torch.cat(dones)
        reward = torch.cat(rewards).float() * self.reward_scale
        reward = torch.where(blowup, torch.zeros_like(reward), reward)
        success = torch.cat(successes)
        self._count_step(reward, blowup)
        self.ep_success |= success
        terminated = success & self.terminate_on_success
        truncated = done & ~terminated
        info = self._info(success, final_obs, blowup, done, self.ep_success.clone())
        self._end_episodes(done)
        self.ep_success.masked_fill_(done, False)
        self.obs = obs
        self.metaworld_obs = torch.cat(obs39_next)
        return self.obs, reward, terminated, truncated, info

    def _apply_actions(self, blk: _Block, act: torch.Tensor) -> torch.Tensor:
        """Write the block's actions into its mocap and gripper controls; returns them in the physics dtype.
        The mocap quaternion stays Meta-World's gripper orientation from the reset template: nothing
        writes it, so it is not rewritten every step."""
        sim = blk.state.sim
        a = act[blk.sl]
        mocap = sim.mocap_pos[:, 0]
        mocap.add_(a[:, :3], alpha=ACTION_SCALE).clamp_(blk.mocap_low, blk.mocap_high)
        torch.mul(a[:, 3:4], blk.gripper_signs, out=sim.ctrl)  # (close, -close) on the two finger actuators
        return a

    def _auto_reset(self, blk: _Block, done: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """Reset the block's ended worlds; returns the observation that starts their new episode (others keep
        `o`)."""
        if not self._reset_block(blk, done):
            return o
        frame = self._frame(blk)
        fresh = self._obs39(blk, frame, frame)
        m = done[:, None]
        blk.prev_frame.copy_(torch.where(m, frame, blk.prev_frame))
        return torch.where(m, fresh, o)

    # -- conveniences ------------------------------------------------------------------------------
    def _task_id(self, task: str | int) -> int:
        ids = resolve(task)
        if len(ids) != 1:
            raise ValueError(f"{task!r} names {len(ids)} tasks; give one task name or id")
        return ids[0]

    def _suite_state(self) -> dict:
        """Physics, episode values, counters and goals of every block."""
        out: dict = {k: getattr(self, k).clone() for k in _ENV_STATE}
        for i, blk in enumerate(self.blocks):
            out.update({f"block{i}/{k}": v for k, v in self._snapshot(blk.state).items()})
            out[f"block{i}/prev_frame"] = blk.prev_frame.clone()
            if blk.fixed_vec is not None:
                out[f"block{i}/fixed_vec"] = blk.fixed_vec.clone()
        return out

    def _load_suite_state(self, state: dict) -> None:
        for k in _ENV_STATE:
            setattr(self, k, state[k].to(self.device).clone())
        for i, blk in enumerate(self.blocks):
            s = blk.state
            snap = {k[len(f"block{i}/") :]: v.to(self.device) for k, v in state.items() if k.startswith(f"block{i}/")}
            blk.prev_frame.copy_(snap.pop("prev_frame"))
            if "fixed_vec" in snap:
                blk.fixed_vec = snap.pop("fixed_vec").clone()
            for key in snap:
                if key.startswith("episode/") and key[8:] not in s.episode:
                    s.episode[key[8:]] = snap[key].clone()
            everything = torch.ones(s.n, dtype=torch.bool, device=self.device)
            self._blend(s, everything, snap)
            s.sim.sync_model()
            s.sim.forward()
            self._blend(s, everything, snap)  # kinematics must not have touched the restored state
