"""The env interface every suite implements (`MultiTaskVecEnv`) and what all suites share, written once.

Shared here: splitting envs over tasks (contiguous blocks, task ids, one-hot ranks), the device and physics backend
checks, action checks, episode counters and the `info` layout, state-dict headers, `close()` and `__repr__`. A suite
(mtbench/envs/metaworld, mtbench/envs/parkour) builds its physics blocks and fills in the hooks: `_reset_worlds`,
`_step`, `_task_id`, `_suite_state` / `_load_suite_state`. Nothing here knows a task; all tensors live on `device`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from mtbench.sim.base import SceneBlock
from mtbench.sim.capacity import check_overflow
from mtbench.sim.queue import StepQueue

BACKENDS = ("auto", "cpu", "warp")
"""Physics backends: `cpu` MuJoCo C, `warp` MuJoCo Warp; `auto` picks warp on CUDA devices, cpu otherwise."""

StepResult = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]
"""(obs, reward, terminated, truncated, info)"""


@contextlib.contextmanager
def torch_single_threaded(enabled: bool) -> Iterator[None]:
    """On the CPU backend MuJoCo's thread pool already holds every core; torch's OpenMP workers waking
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
    task) split evenly. Errors name the fix."""
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
    """An env `state_dict` loads only into an env of the same tasks and envs per task."""
    if state["task_ids"] != list(task_ids) or state["task_counts"] != list(task_counts):
        raise ValueError(
            f"env state is for tasks {state['task_ids']} x {state['task_counts']}, this env has "
            f"{list(task_ids)} x {list(task_counts)}; build the env with the checkpoint's tasks and task_counts"
        )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device to run on: `None` means CUDA when torch sees it, else the CPU; an absent CUDA device or
    an unknown type is an error naming the fix. The one device resolver of the project."""
    if device is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {str(device)!r} asked for, but torch sees no CUDA device (torch {torch.__version__}); "
                "use device='cpu', or install a CUDA build of torch on a machine with an NVIDIA GPU"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {dev} is absent: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return dev


def resolve_backend(backend: str, device: torch.device) -> str:
    """The physics backend for `device` ("auto" resolved), or an error naming the fix."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        return "warp" if device.type == "cuda" else "cpu"
    if backend == "cpu" and device.type == "cuda":
        raise ValueError("backend 'cpu' steps MuJoCo C in host memory; with device='cuda' use backend='warp' or 'auto'")
    if backend == "warp":
        try:
            import mujoco_warp  # noqa: F401
            import warp  # noqa: F401
        except ImportError as e:
            raise RuntimeError(
                f"backend 'warp' needs mujoco-warp and warp-lang ({e}); pip install -e . installs them"
            ) from e
    return backend


class Block(Protocol):
    """What every suite's task block shows outside the env: its env slice and its physics."""

    sl: slice

    @property
    def sim(self) -> SceneBlock: ...


@dataclass(frozen=True)
class View:
    """Where a suite's videos are drawn from: a fixed MJCF camera, or one following a body (a robot that walks
    away from any fixed camera); `headlight` (ambient, diffuse) brightens scenes that carry no lights."""

    camera: str | None = None
    track_body: str | None = None
    distance: float = 2.2
    azimuth: float = 30.0
    elevation: float = -25.0
    headlight: tuple[float, float] | None = None


class MultiTaskVecEnv(ABC):
    """The batched multi-task env contract (DESIGN.md), one implementation per suite.

    `reset() -> obs (num_envs, obs_dim)`; `step(actions) -> (obs, reward, terminated, truncated, info)` with
    auto-reset: the returned obs starts the next episode where one ended, `info["final_obs"]` holds the last one.
    `info`: "success", "task_id", "final_obs", "physics_blowup", "physics_resets", and "episode" with "done",
    "return", "length", "success", "task_id" (plus suite extras) of the episodes that ended this step.

    Attributes every suite has: task_ids, task_names, task_counts, num_tasks, num_envs, task_slices (env slice per
    task), task_ranks (rank of each task id among the selected ones: its one-hot column), env_block (N,) task
    position, env_task_id (N,) task id, task_index (N,) task rank (what learners index per-task state by), onehot,
    obs, obs_dim, action_dim, device, backend, gen (the env's RNG), seed, episode_length, random_init_progress,
    check_actions, ep_return, ep_length, physics_resets, blocks (one `Block` per task).

    Actions, one rule for every suite (`_check_actions`): a floating-point `torch.Tensor` of shape
    (num_envs, action_dim) on the env's `device`. Any float dtype (float16, bfloat16, float32, float64) is
    accepted and converted to `action_dtype`, the precision the env computes in (Meta-World: its physics engine's,
    float64 on the C engine and float32 on MuJoCo Warp; parkour: float32), then clipped to +-action_bound. Refused
    with a message naming the fix: lists, tuples and numpy arrays (TypeError; the gymnasium wrapper is the numpy
    face), integer or bool tensors (TypeError), a tensor on another device (ValueError: the env never copies
    between devices behind the caller's back, since on CUDA that copy is a hidden host sync), a wrong shape
    (ValueError) and, with `check_actions`, NaN/Inf (ValueError).
    """

    action_bound: float = 1.0
    """Actions are clipped to [-action_bound, action_bound] after the checks."""
    action_dtype: torch.dtype = torch.float32
    """The dtype actions are converted to after the checks: what the suite computes in (a suite whose physics
    dtype depends on the engine sets it per instance)."""
    action_doc: str = ""
    """What one action row is, for the shape error."""
    view: View = View()
    """Where videos are drawn from (mtbench.render)."""
    options_key: str = "env"
    """The training config's section of this env's options (`env.nconmax=...`), for messages naming a setting."""

    blocks: list[Block]
    obs: torch.Tensor
    obs_dim: int
    action_dim: int

    def __init__(
        self,
        task_ids: list[int],
        task_names: list[str],
        num_envs: int | None,
        task_counts: list[int] | None,
        device: str | torch.device | None,
        backend: str,
        seed: int,
        episode_length: int,
        random_init_progress: bool,
        check_actions: bool,
    ):
        """The checks and the per-env layout every suite shares; a suite calls it after its own checks and before
        it builds any physics."""
        n_tasks = len(task_ids)
        task_counts = allocate_envs(num_envs, task_counts, n_tasks)
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.device = resolve_device(device)
        self.backend = resolve_backend(backend, self.device)

        self.task_ids = list(task_ids)
        self.task_names = list(task_names)
        self.task_counts = task_counts
        self.num_tasks = n_tasks
        self.num_envs = N = sum(task_counts)
        self.seed = seed
        self.episode_length = episode_length
        self.random_init_progress = random_init_progress
        self.check_actions = check_actions
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)

        starts = np.cumsum([0, *task_counts])
        self.task_slices = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
        dev = self.device
        order = sorted(self.task_ids)
        self.task_ranks = [order.index(t) for t in self.task_ids]  # one-hot column of each task, as upstream
        self.env_block = torch.repeat_interleave(torch.arange(n_tasks), torch.as_tensor(task_counts)).to(dev)
        self.env_task_id = torch.as_tensor(self.task_ids, device=dev)[self.env_block]
        self.task_index = torch.as_tensor(self.task_ranks, device=dev)[self.env_block]
        self.onehot = torch.nn.functional.one_hot(self.task_index, n_tasks).to(torch.float32)
        self.ep_return = torch.zeros(N, device=dev)
        self.ep_length = torch.zeros(N, dtype=torch.long, device=dev)
        self.physics_resets = torch.zeros(N, dtype=torch.long, device=dev)
        # `device` with its index made concrete ("cuda" -> "cuda:0"), what the actions' device is compared with
        self._tensor_device = self.physics_resets.device
        self._queue = StepQueue(0)  # physics stepped inline unless a suite sets up workers

    # -- hooks -------------------------------------------------------------------------------------
    @abstractmethod
    def _reset_worlds(self) -> torch.Tensor:
        """Start new episodes in every world (suite state, physics); returns the first observations."""

    @abstractmethod
    def _step(self, actions: torch.Tensor) -> StepResult:
        """One policy step on checked, clipped actions, with auto-reset."""

    @abstractmethod
    def _task_id(self, task: str | int) -> int:
        """The task id of a task name or id, ValueError when the suite has no such task."""

    @abstractmethod
    def _suite_state(self) -> dict:
        """The suite's part of `state_dict()`."""

    @abstractmethod
    def _load_suite_state(self, state: dict) -> None:
        """Restore the suite's part of a `state_dict()`."""

    def _repr_details(self) -> str:
        """Suite facts for `repr`, after the env count."""
        return ""

    # -- reset and step ----------------------------------------------------------------------------
    def reset(self) -> torch.Tensor:
        """Reset every env; returns the first observations (num_envs, obs_dim)."""
        with torch_single_threaded(self.backend == "cpu"):
            obs = self._reset_worlds()
            self.ep_return.zero_()
            self.physics_resets.zero_()
            if self.random_init_progress:  # desynchronises episode ends (upstream's trick)
                self.ep_length = torch.randint(
                    0, self.episode_length, (self.num_envs,), generator=self.gen, device=self.device
                )
            else:
                self.ep_length.zero_()
            self.obs = obs
            return obs

    def step(self, actions: torch.Tensor) -> StepResult:
        """Apply actions (a float tensor (num_envs, action_dim) on `device`, see the class docstring), clipped to
        +-action_bound; step the physics; auto-reset ended episodes."""
        act = self._check_actions(actions)
        with torch_single_threaded(self.backend == "cpu"):
            return self._step(act)

    def _check_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """The action rule of the class docstring: type, shape, dtype, device and (with `check_actions`, one host
        sync) finiteness, all before any physics runs; returns them as `action_dtype`, clipped."""
        if not isinstance(actions, torch.Tensor):
            raise TypeError(
                f"actions must be a torch.Tensor on the env's device, got {type(actions).__name__}; pass "
                "torch.as_tensor(actions, dtype=torch.float32, device=env.device) (numpy in and out: "
                "mtbench.envs.gym_wrapper.GymVectorEnv)"
            )
        if actions.shape != (self.num_envs, self.action_dim):
            doc = f" ({self.action_doc})" if self.action_doc else ""
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.action_dim}){doc}, got {tuple(actions.shape)}"
            )
        if not actions.is_floating_point():
            raise TypeError(f"actions must be floating point (e.g. actions.float()), got dtype {actions.dtype}")
        if actions.device != self._tensor_device:
            raise ValueError(
                f"actions are on {actions.device} but the env is on {self._tensor_device}; move them with "
                "actions.to(env.device) (the env does not copy between devices itself: on CUDA that is a host sync)"
            )
        if self.check_actions and not bool(torch.isfinite(actions).all()):
            bad = (~torch.isfinite(actions)).any(1).nonzero().squeeze(1)[:5].tolist()
            raise ValueError(
                f"actions hold NaN/Inf (envs {bad}...); check the policy output (check_actions=False skips this test)"
            )
        return actions.to(self.action_dtype).clamp(-self.action_bound, self.action_bound)

    # -- episode bookkeeping -----------------------------------------------------------------------
    def _count_step(self, reward: torch.Tensor, blowup: torch.Tensor) -> None:
        """Add this step to the running episodes."""
        self.ep_length += 1
        self.ep_return += reward
        self.physics_resets += blowup.long()

    def _info(
        self,
        success: torch.Tensor,
        final_obs: torch.Tensor,
        blowup: torch.Tensor,
        done: torch.Tensor,
        episode_success: torch.Tensor,
        **episode: torch.Tensor,
    ) -> dict:
        """The `info` of a step (call after `_count_step`, before `_end_episodes`); `episode` adds suite values of
        the episodes that end."""
        return {
            "success": success,
            "task_id": self.env_task_id,
            "final_obs": final_obs,
            "physics_blowup": blowup,
            "physics_resets": self.physics_resets.clone(),
            "episode": {
                "done": done,
                "return": self.ep_return.clone(),
                "length": self.ep_length.clone(),
                "success": episode_success,
                "task_id": self.env_task_id,
                **episode,
            },
        }

    def _end_episodes(self, done: torch.Tensor) -> None:
        """Zero the episode counters of the envs in `done` (N,) bool."""
        self.ep_return.masked_fill_(done, 0.0)
        self.ep_length.masked_fill_(done, 0)

    # -- physics health ----------------------------------------------------------------------------
    def check_sim(self) -> None:
        """Raise `SimOverflowError` (mtbench.sim.capacity) if MuJoCo Warp dropped contacts or constraint rows in any
        world since the env was built, naming the scene and the `nconmax=`/`njmax=` to pass. One host sync: call it
        once per training iteration or evaluation, never per step (`step` itself never reads the flags). Nothing
        to check on the C engine."""
        check_overflow([(name, blk.sim) for name, blk in zip(self.task_names, self.blocks)], self.options_key)

    # -- conveniences ------------------------------------------------------------------------------
    def block_of(self, task: str | int) -> slice:
        """The env slice of one task (its name or id)."""
        tid = self._task_id(task)
        if tid not in self.task_ids:
            raise ValueError(f"task {task!r} is not in this env's tasks {self.task_names}")
        return self.task_slices[self.task_ids.index(tid)]

    def state_dict(self) -> dict:
        """Everything that decides future steps, so that a training run stopped and resumed continues exactly as
        an uninterrupted one."""
        return {
            "task_ids": list(self.task_ids),
            "task_counts": list(self.task_counts),
            "gen": self.gen.get_state(),
            **self._suite_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        check_state_layout(state, self.task_ids, self.task_counts)
        self.gen.set_state(state["gen"])
        self._load_suite_state(state)

    def close(self) -> None:
        """Stop the physics worker threads (they also stop when the env is garbage-collected). A closed env still
        works: it steps its blocks inline."""
        self._queue.close()

    def __repr__(self) -> str:
        tasks = ", ".join(f"{n}x{c}" for n, c in zip(self.task_names, self.task_counts))
        where = f"{self.num_envs} envs on {self.device}/{self.backend}{self._repr_details()}"
        return f"{type(self).__name__}({where}: {tasks})"
