"""What every learner gives the runner: acting, taking the env's transitions, updating (a metrics dict), and
its state for checkpoints. The runner (`mtbench.train`) calls only this, so it names no algorithm.

An iteration is `steps_per_iteration` vector steps of

    action = algo.act(obs)                       # exploration; the algorithm keeps what it needs
    obs, reward, terminated, truncated, info = env.step(action)
    algo.observe(obs, reward, terminated, truncated, info)

followed by `metrics = algo.update()`. Tensors passed in live on the env's device; the algorithm moves them to
its own. `metrics` are tensors on the learner's device: the runner reads them once per iteration (its only
host sync), never the algorithm inside its loops.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import MISSING, fields
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from mtbench.mtrl import MeanScheme
from mtbench.validation import check_values

C = TypeVar("C")


def settings_from_dict(cls: type[C], d: dict[str, Any], algo: str) -> C:
    """Build the settings dataclass `cls` of learner `algo` from its config section `train.<algo>`: every field
    must be given (its default lives in the YAML under mtbench/conf/train/, nowhere else), no unknown key is
    accepted, and each value must satisfy its field's declared type and range (`mtbench.validation`)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown train.{algo} settings {unknown}; valid: {sorted(names)}")
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}  # type: ignore[arg-type]
    missing = sorted(required - set(d))
    if missing:
        raise ValueError(f"train.{algo} settings {missing} are missing; the train config must give every one")
    check_values(d, cls, prefix=f"train.{algo}.")
    return cls(**d)


class Algorithm(ABC):
    """A multi-task learner: its networks, optimisers, storage (rollout or replay) and metrics."""

    name: ClassVar[str]
    settings_class: ClassVar[type]
    """The dataclass of `train.<name>`: its fields' type hints are the settings' types and ranges, checked before
    anything is built (`settings_from_dict`)."""
    resumable_settings: ClassVar[tuple[str, ...]] = ()
    """Settings `checkpoint=` may change when resuming: those that shape how the next updates are taken (epochs,
    minibatches, clipping), never what the saved state means (sizes, learning rates, which live on in the
    optimiser's state, normalisers, discounts)."""
    health: ClassVar[tuple[str, ...]] = ()
    """Metric keys that must stay finite; the runner stops a diverged run with `diverged_hint`."""
    diverged_hint: ClassVar[str] = ""
    split_settings: ClassVar[tuple[str, ...]] = ()
    """Settings of `train.<name>` that are totals over all ranks of a torchrun job (a minibatch, a replay buffer):
    each of N ranks holds 1/N of them, so that N ranks learn as one big batch of the configured size."""
    rank_local_state: ClassVar[tuple[str, ...]] = ()
    """Keys of `state_dict()` that belong to one rank's envs (replay buffer, n-step window, per-env episode state):
    a torchrun checkpoint keeps them per rank; everything else is the same on every rank."""
    scheme_part: ClassVar[str] = "critic"
    """The parameter group an MTRL scheme acts on when `scheme.apply_to` is null: the learned value (upstream
    MTBench's choice for PPO and SAC), or the policy for a learner without one (GRPO)."""

    net: nn.Module
    """Every trained network under one module: checkpoints store `net.state_dict()` as "net", `pretrained=`
    loads into it by name and shape."""
    device: torch.device
    gen: torch.Generator
    steps_per_iteration: int

    @classmethod
    @abstractmethod
    def build(
        cls,
        settings: dict,
        network: dict,
        obs_dim: int,
        action_dim: int,
        task_names: list[str],
        device: torch.device,
        generator: torch.Generator,
        scheme: MeanScheme,
    ) -> Algorithm:
        """From the config sections `train.<algo>` and `network`, with the MTRL scheme already built."""

    def describe(self) -> str:
        """One line for the start of a run: the algorithm and its batch geometry."""
        return f"{self.name}: {self.steps_per_iteration} vector steps per iteration"

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by part, e.g. actor, critic, total (the parameter-scaling study compares methods at
        equal counts); target networks and frozen tensors are not counted."""
        return {"total": sum(p.numel() for p in self.net.parameters() if p.requires_grad)}

    @classmethod
    def resolve_settings(cls, settings: dict, num_envs: int, machine: dict) -> dict:
        """Fill the `null` settings of `train.<algo>` from `machine` (the train config's `gpu` or `cpu` profile)
        and check them against the env size, before anything is built; raise ValueError with what to change."""
        return {k: machine[k] if v is None and k in machine else v for k, v in settings.items()}

    @classmethod
    def check_env(cls, settings: dict, env: dict) -> None:
        """Refuse env settings (the suite's resolved section, e.g. `env`) this learner cannot learn from, with the
        resolved `settings`; raise ValueError saying what to change."""
        return None

    @abstractmethod
    def start(self, task: torch.Tensor) -> None:
        """Prepare storage for training on an env whose env i runs task `task[i]` (one-hot rank, (N,))."""

    @abstractmethod
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Exploration actions (N, action_dim) for the current observations of the training env."""

    @abstractmethod
    def observe(
        self,
        next_obs: torch.Tensor,
        reward: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        info: dict,
    ) -> None:
        """The env's answer to the last `act` (auto-reset: `info["final_obs"]` is the last observation of the
        episodes that ended, `next_obs` the first of the new ones)."""

    @property
    def learning(self) -> bool:
        """False while the algorithm only collects (an off-policy warm-up): its metrics are NaN then, and the
        runner's divergence check waits."""
        return True

    def set_progress(self, fraction: float) -> None:
        """How much of the run is done, in [0, 1], by the limit that binds (iterations, or minutes when
        `max_minutes` ends the run sooner); the runner calls it before every iteration. Schedules that follow the
        run's length (PQN's exploration and learning rate) read it; the others ignore it."""
        return None

    @abstractmethod
    def update(self) -> dict[str, torch.Tensor]:
        """Learn from what was observed since the last update; returns scalar metric tensors."""

    @abstractmethod
    def policy(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Deterministic actions for evaluation; records nothing."""

    def plasticity_parts(self) -> dict[str, nn.Module]:
        """The networks `metrics_every` measures (dormant neurons, feature rank, norms), by name; empty when this
        learner's network has no separate parts to measure."""
        return {}

    def probe(self, obs: torch.Tensor, task: torch.Tensor) -> None:
        """Send a probe batch through every plasticity part once (forward only; the runner hooks the parts)."""
        raise NotImplementedError(f"{type(self).__name__} has no plasticity probe")

    @abstractmethod
    def state_dict(self, buffer: bool = False) -> dict:
        """Everything that decides future updates; the replay buffer only when `buffer` (it can be large)."""

    @abstractmethod
    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        """Restore `state_dict()`; `weights_only` takes the networks and normalisers alone (evaluation)."""
