"""`MultiTaskVecEnv`: many Meta-World tasks, each a contiguous block of worlds, behind one batched API.

The env core knows the contract (actions in, observation/reward/done/info out, auto-reset, episode
statistics) and nothing of any task: each block's `MetaWorldTask` places objects, names the observed
bodies and scores the step. All tensors live on `device`; on CUDA nothing here waits for the GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mtbench.envs.metaworld.goals import N_GOALS, metaworld_goals, sample_uniform
from mtbench.envs.metaworld.registry import METAWORLD_NAMES, resolve, task_class
from mtbench.envs.metaworld.scene import FRAME_SKIP
from mtbench.envs.metaworld.task import MetaWorldTask, TaskState
from mtbench.sim import make_block
from mtbench.sim.cpu import default_threads
from mtbench.sim.queue import StepQueue, thread_layout

ACTION_SCALE = 0.01  # metres of mocap motion per unit action, as Meta-World
GOAL_MODES = ("rand", "fixed", "metaworld")
ENGINES = ("auto", "cpu", "warp")
_ENV_STATE = ("ep_return", "ep_length", "ep_success", "physics_resets", "obs", "metaworld_obs")


@dataclass
class _Block:
    """One task's worlds: its slice of the env batch and everything needed to step and reset it."""

    task: MetaWorldTask
    state: TaskState
    sl: slice
    onehot_index: int
    mocap_low: torch.Tensor
    mocap_high: torch.Tensor
    obs_low: torch.Tensor
    obs_high: torch.Tensor
    prev_frame: torch.Tensor
    gripper_signs: torch.Tensor
    fixed_vec: torch.Tensor | None = None
    goal_table: torch.Tensor | None = None


@contextlib.contextmanager
def torch_single_threaded(enabled: bool) -> Iterator[None]:
    """On the CPU engine MuJoCo's thread pool already holds every core; torch's OpenMP workers waking
    for tiny per-task tensors then wait for a core and turn microsecond ops into milliseconds (measured
    2x slower MT10 stepping). The env's own torch work runs on one thread; the caller's setting returns."""
    if not enabled:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def even_counts(num_envs: int, n_tasks: int) -> list[int]:
    """Split as upstream MTBench does: the first `num_envs % n_tasks` tasks get one env more."""
    base, extra = divmod(num_envs, n_tasks)
    return [base + (i < extra) for i in range(n_tasks)]


def allocate_envs(num_envs: int | None, task_counts: list[int] | None, n_tasks: int) -> list[int]:
    """Envs per task, contiguous blocks in task order: `task_counts` checked, or `num_envs` (default one per
    task) split evenly. Errors name the fix; shared by every suite's env."""
    if task_counts is None:
        if num_envs is None:
            num_envs = n_tasks
        if num_envs < n_tasks:
            raise ValueError(f"num_envs={num_envs} is fewer than the {n_tasks} tasks; each task needs >= 1 env")
        task_counts = even_counts(num_envs, n_tasks)
    task_counts = [int(c) for c in task_counts]
    if len(task_counts) != n_tasks:
        raise ValueError(f"task_counts has {len(task_counts)} entries for {n_tasks} tasks; give one count per task")
    if any(c <= 0 for c in task_counts):
        raise ValueError(f"task_counts {task_counts} holds zeros or negatives; every task needs >= 1 env")
    if num_envs is not None and sum(task_counts) != num_envs:
        raise ValueError(f"task_counts sum to {sum(task_counts)} but num_envs={num_envs}; make them agree")
    return task_counts


def check_state_layout(state: dict, task_ids: list[int], task_counts: list[int]) -> None:
    """An env `state_dict` loads only into an env of the same tasks and envs per task; shared by every suite."""
    if state["task_ids"] != list(task_ids) or state["task_counts"] != list(task_counts):
        raise ValueError(
            f"env state is for tasks {state['task_ids']} x {state['task_counts']}, this env has "
            f"{list(task_ids)} x {list(task_counts)}"
        )


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {str(device)!r} asked for, but torch sees no CUDA device (torch {torch.__version__}); "
                "use device='cpu', or install a CUDA build of torch on a machine with an NVIDIA GPU"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {dev} is absent: torch sees {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}")
    return dev


def _check_engine(engine: str, device: torch.device) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if engine == "auto":
        return "warp" if device.type == "cuda" else "cpu"
    if engine == "cpu" and device.type == "cuda":
        raise ValueError("engine 'cpu' steps MuJoCo C in host memory; with device='cuda' use engine='warp' or 'auto'")
    if engine == "warp":
        try:
            import mujoco_warp  # noqa: F401
            import warp  # noqa: F401
        except ImportError as e:
            raise RuntimeError(
                f"engine 'warp' needs mujoco-warp and warp-lang ({e}); pip install -e . installs them"
            ) from e
    return engine


class MultiTaskVecEnv:
    """Batched multi-task Meta-World. See `mtbench.make` for the arguments."""

    def __init__(
        self,
        task: str | int | list = "mt10",
        num_envs: int | None = None,
        task_counts: list[int] | None = None,
        device: str | torch.device | None = None,
        engine: str = "auto",
        seed: int = 0,
        episode_length: int = 150,
        goal_mode: str = "rand",
        reward_scale: float = 1.0,
        terminate_on_success: bool = False,
        random_init_progress: bool = False,
        check_actions: bool = True,
        nthread: int | None = None,
    ):
        # every check before any physics is built
        self.task_ids = resolve(task)
        for tid in self.task_ids:
            task_class(tid)
        n_tasks = len(self.task_ids)
        task_counts = allocate_envs(num_envs, task_counts, n_tasks)
        if goal_mode not in GOAL_MODES:
            raise ValueError(f"unknown goal_mode {goal_mode!r}; choose one of {GOAL_MODES}")
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.device = resolve_device(device)
        self.engine = _check_engine(engine, self.device)

        self.num_envs = sum(task_counts)
        self.task_counts = task_counts
        self.task_names = [METAWORLD_NAMES[t] for t in self.task_ids]
        self.episode_length = episode_length
        self.goal_mode = goal_mode
        self.reward_scale = reward_scale
        self.terminate_on_success = terminate_on_success
        self.random_init_progress = random_init_progress
        self.check_actions = check_actions
        self.seed = seed
        self.num_tasks = n_tasks
        self.obs_dim = 39 + n_tasks
        self.action_dim = 4
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)

        rank = {tid: i for i, tid in enumerate(sorted(self.task_ids))}  # one-hot index as upstream
        workers, per_block = thread_layout(nthread or default_threads(), n_tasks)
        self.nthread = workers * per_block if self.engine == "cpu" else None
        self.blocks: list[_Block] = []
        start = 0
        for tid, count in zip(self.task_ids, task_counts):
            self.blocks.append(self._make_block(task_class(tid)(), count, start, rank[tid], per_block))
            start += count

        N, dev = self.num_envs, self.device
        self.env_task_id = torch.cat(
            [torch.full((b.state.n,), tid, dtype=torch.long, device=dev) for b, tid in zip(self.blocks, self.task_ids)]
        )
        self.onehot = torch.zeros(N, n_tasks, device=dev)
        self.onehot[
            torch.arange(N, device=dev),
            torch.cat([torch.full((b.state.n,), b.onehot_index, device=dev) for b in self.blocks]).long(),
        ] = 1.0
        self.task_index = self.onehot.argmax(1)  # (N,) one-hot rank: what learners index per-task state by
        self.ep_return = torch.zeros(N, device=dev)
        self.ep_length = torch.zeros(N, dtype=torch.long, device=dev)
        self.ep_success = torch.zeros(N, dtype=torch.bool, device=dev)
        self.physics_resets = torch.zeros(N, dtype=torch.long, device=dev)
        self.obs = torch.zeros(N, self.obs_dim, device=dev)
        # the current 39-d Meta-World observation in the physics dtype (float64 on the CPU engine), for
        # scripted experts and checks that want it unrounded
        self.metaworld_obs = torch.zeros(N, 39, device=dev)
        self._queue = StepQueue(workers if self.engine == "cpu" else 0)

    # -- construction ------------------------------------------------------------------------------
    def _make_block(self, task: MetaWorldTask, n: int, start: int, onehot_index: int, nthread: int | None) -> _Block:
        sim = make_block(self.engine, task.model(), n, self.device, nthread=nthread)
        state = task.make_state(sim)
        dt, dev = sim.dtype, self.device
        mlow, mhigh = task.mocap_box
        olow, ohigh = task.obs_box()
        blk = _Block(
            task=task,
            state=state,
            sl=slice(start, start + n),
            onehot_index=onehot_index,
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

    def reset(self) -> torch.Tensor:
        """Reset every env; returns the first observations (num_envs, obs_dim)."""
        with torch_single_threaded(self.engine == "cpu"):
            return self._reset_all()

    def _reset_all(self) -> torch.Tensor:
        out = []
        for blk in self.blocks:
            n = blk.state.n
            self._reset_ids(blk, torch.arange(n, device=self.device))
            frame = self._frame(blk)
            blk.prev_frame.copy_(frame)
            out.append(self._obs39(blk, frame, frame))
        self.ep_return.zero_()
        self.ep_success.zero_()
        self.physics_resets.zero_()
        if self.random_init_progress:
            self.ep_length = torch.randint(
                0, self.episode_length, (self.num_envs,), generator=self.gen, device=self.device
            )
        else:
            self.ep_length.zero_()
        self.metaworld_obs = torch.cat(out)
        self.obs = self._full_obs(out)
        return self.obs

    # -- step --------------------------------------------------------------------------------------
    def _validate(self, actions) -> torch.Tensor:
        if not isinstance(actions, torch.Tensor):
            actions = torch.as_tensor(np.asarray(actions))
        if actions.shape != (self.num_envs, self.action_dim):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.action_dim}), got {tuple(actions.shape)}"
            )
        if not actions.is_floating_point():
            raise TypeError(f"actions must be floating point in [-1, 1], got dtype {actions.dtype}")
        actions = actions.to(self.device)
        if self.check_actions and not bool(torch.isfinite(actions).all()):
            bad = (~torch.isfinite(actions)).any(1).nonzero().squeeze(1)[:5].tolist()
            raise ValueError(
                f"actions hold NaN/Inf (envs {bad}...); check the policy output (check_actions=False skips this test)"
            )
        return actions.clamp(-1.0, 1.0)

    def step(self, actions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Apply actions (num_envs, 4) in [-1, 1] (clipped), step the physics, auto-reset ended episodes."""
        act = self._validate(actions)
        with torch_single_threaded(self.engine == "cpu"):
            return self._step(act)

    def _step(self, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        # Every block's physics is queued before any block is scored, and each block is scored and
        # auto-reset as soon as its physics is done: on the CPU engine that torch work overlaps the stepping
        # of the blocks behind it (see `mtbench.sim.queue`). Blocks reset in order, so the RNG draws are the
        # same as with no overlap.
        pending = []
        act = act.to(self.blocks[0].state.sim.dtype)
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
            if fresh is not o:  # the block reset some worlds (on the CPU engine only those that did)
                obs[blk.sl, :39] = fresh
        blowup = torch.cat(blowups)
        done = torch.cat(dones)
        reward = torch.cat(rewards).float() * self.reward_scale
        reward = torch.where(blowup, torch.zeros_like(reward), reward)
        success = torch.cat(successes)
        self.ep_length += 1
        self.ep_return += reward
        self.ep_success |= success
        self.physics_resets += blowup.long()
        terminated = success & self.terminate_on_success
        truncated = done & ~terminated
        info = {
            "success": success,
            "task_id": self.env_task_id,
            "final_obs": final_obs,
            "physics_blowup": blowup,
            "physics_resets": self.physics_resets.clone(),
            "episode": {
                "done": done,
                "return": self.ep_return.clone(),
                "length": self.ep_length.clone(),
                "success": self.ep_success.clone(),
                "task_id": self.env_task_id,
            },
        }
        keep = ~done
        self.ep_return *= keep
        self.ep_length *= keep
        self.ep_success &= keep
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
    def block_of(self, task: str | int) -> slice:
        """The env slice of one task (its name or MTBench id)."""
        tid = resolve(task)[0]
        return self.blocks[self.task_ids.index(tid)].sl

    def state_dict(self) -> dict:
        """Everything that decides future steps (physics, episode values, counters, goals, RNG), so that a
        training run stopped and resumed continues exactly as an uninterrupted one."""
        out: dict = {
            "task_ids": list(self.task_ids),
            "task_counts": list(self.task_counts),
            "gen": self.gen.get_state(),
            **{k: getattr(self, k).clone() for k in _ENV_STATE},
        }
        for i, blk in enumerate(self.blocks):
            out.update({f"block{i}/{k}": v for k, v in self._snapshot(blk.state).items()})
            out[f"block{i}/prev_frame"] = blk.prev_frame.clone()
            if blk.fixed_vec is not None:
                out[f"block{i}/fixed_vec"] = blk.fixed_vec.clone()
        return out

    def load_state_dict(self, state: dict) -> None:
        check_state_layout(state, self.task_ids, self.task_counts)
        self.gen.set_state(state["gen"])
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

    def close(self) -> None:
        """Stop the physics worker threads (they also stop when the env is garbage-collected). A closed env
        still works: it steps its blocks inline."""
        self._queue.close()

    def __repr__(self) -> str:
        tasks = ", ".join(f"{n}x{c}" for n, c in zip(self.task_names, self.task_counts))
        return f"MultiTaskVecEnv({self.num_envs} envs on {self.device}/{self.engine}: {tasks})"
