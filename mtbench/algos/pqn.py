"""MT-PQN as upstream MTBench runs it (paper appendix B and Table 5; `pqn_agent.py`): Q-learning without replay
buffer or target network over massively parallel envs, for continuous control by bang-off-bang bins.

Each action dimension takes one of `bins` values, linspace(-1, 1, bins) ({-1, 0, 1} for upstream's 3), and the
Q-network gives a utility per bin of each dimension: the greedy action is the per-dimension argmax,
Q(s, a) = mean over dimensions of the chosen utilities, V(s) = mean over dimensions of the per-dimension maxima.
Each iteration collects `horizon` steps of ε-greedy actions (per env, all dimensions at once), computes Peng's
Q(λ) targets R_t = r_t + γ [λ R_{t+1} + (1 - λ) V(s_{t+1})] backwards from V(s_H), and regresses Q(s_t, a_t) on
them (MSE, per-task means through the MTRL scheme) for `mini_epochs` passes of `num_minibatches` minibatches,
with RAdam and the gradient norm clipped after backward.

Where upstream is loose we are right (README, "MT-PQN"):
- a termination stops bootstrapping and cuts the λ-chain; a time-out bootstraps from V(final observation of the
  ended episode) and cuts the λ-chain too (the next step is another episode's);
- ε decays over `exploration_fraction` of the run and the learning rate anneals to 0 at its end, both by the
  share of the run done (`set_progress`: iterations, or minutes when `max_minutes` binds); upstream's ε counter
  lacks the horizon factor, so its decay ends after about 4,000 iterations whatever the run's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from mtbench.algos.base import Algorithm, settings_from_dict
from mtbench.algos.common import TaskRunningMeanStd, per_task_mean, task_counts
from mtbench.mtrl import MeanScheme
from mtbench.nets import stabilizer
from mtbench.nets.pqn import make_q_network
from mtbench.validation import PosFloat, PosInt, Range, UnitFloat


@dataclass
class PQNConfig:
    """`train.pqn.*`; the values live in mtbench/conf/train/pqn*.yaml (the paper's Table 5), not here."""

    horizon: PosInt  # vector steps per iteration
    mini_epochs: PosInt
    num_minibatches: PosInt  # per pass over the iteration's horizon * num_envs samples
    lr: PosFloat
    anneal_lr: bool  # linearly to 0 over the run
    gamma: UnitFloat
    lam: UnitFloat  # Peng's Q(λ)
    bins: Annotated[int, Range(lo=2)]  # per action dimension, spread evenly over [-1, 1]
    epsilon_start: UnitFloat
    epsilon_end: UnitFloat
    exploration_fraction: UnitFloat  # share of the run over which ε decays linearly from start to end
    max_grad_norm: PosFloat
    normalize_input: bool

    @classmethod
    def from_dict(cls, d: dict) -> PQNConfig:
        return settings_from_dict(cls, d, "pqn")


def q_lambda_targets(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Peng's Q(λ) returns of a (T, N) rollout. `next_values[t]` = V(s'_t), the state after step t (the final
    observation where an episode ended). Inside an episode R_t = r_t + γ [λ R_{t+1} + (1 - λ) V(s'_t)]; the
    chain is cut after a time-out and at the rollout's end (R_t = r_t + γ V(s'_t)) and after a termination
    (R_t = r_t)."""
    T = rewards.shape[0]
    returns = torch.empty_like(rewards)
    nxt = torch.zeros_like(next_values[-1])  # R_{t+1}; never read at the last step, where the chain is cut
    for t in reversed(range(T)):
        chain = ~(terminated[t] | truncated[t]) if t < T - 1 else torch.zeros_like(terminated[t])
        boot = torch.where(chain, lam * nxt + (1.0 - lam) * next_values[t], next_values[t])
        returns[t] = rewards[t] + gamma * torch.where(terminated[t], 0.0, boot)
        nxt = returns[t]
    return returns


@dataclass
class Rollout:
    """One horizon of experience, (T, N, ...) on the learner's device; `next_obs` is the state after each step
    (the ended episode's final observation where one ended)."""

    obs: torch.Tensor
    bins: torch.Tensor  # chosen bin per action dimension, int64
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    task: torch.Tensor  # (N,)

    @classmethod
    def empty(cls, T: int, N: int, obs_dim: int, act_dim: int, task: torch.Tensor) -> Rollout:
        dev = task.device
        z = lambda *s, dtype=torch.float32: torch.zeros(*s, dtype=dtype, device=dev)
        return cls(z(T, N, obs_dim), z(T, N, act_dim, dtype=torch.int64), z(T, N), z(T, N, obs_dim),
                   z(T, N, dtype=torch.bool), z(T, N, dtype=torch.bool), task)  # fmt: skip


class PQN(Algorithm):
    """ε-greedy acting on a factored Q-network, Q(λ) targets over the rollout, minibatch regression."""

    name = "pqn"
    settings_class = PQNConfig
    split_settings = ()
    rank_local_state = ()
    resumable_settings = ("mini_epochs", "num_minibatches", "max_grad_norm")
    health = ("loss/q", "q_mean")
    diverged_hint = "Try a lower train.pqn.lr or train.pqn.max_grad_norm."

    def __init__(
        self,
        net: nn.Module,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        cfg: PQNConfig,
        device: torch.device,
        generator: torch.Generator,
        scheme: MeanScheme | None = None,
    ):
        self.net, self.cfg, self.device, self.gen = net.to(device), cfg, device, generator
        self.obs_dim, self.action_dim, self.n_tasks = obs_dim, action_dim, n_tasks
        self.scheme = scheme or MeanScheme()
        if getattr(self.scheme, "apply_to", "critic") == "actor":
            raise ValueError(f"scheme={self.scheme.name} applies to an actor and PQN has none: scheme.apply_to=critic")
        self.obs_norm = TaskRunningMeanStd(n_tasks, obs_dim - n_tasks).to(device)
        self.optimizer = torch.optim.RAdam(self.net.parameters(), lr=cfg.lr)
        self.stabilizer = stabilizer(self.net)  # PaCo's mask-out and w-reset
        self.bin_values = torch.linspace(-1.0, 1.0, cfg.bins, device=device)
        self.steps_per_iteration = cfg.horizon
        self.progress = 0.0
        self.buf: Rollout | None = None

    @classmethod
    def build(cls, settings, network, obs_dim, action_dim, task_names, device, generator, scheme) -> PQN:
        """From `train.pqn` and `network` (the Q-network's form: `mtbench.nets.pqn`)."""
        cfg = PQNConfig.from_dict(settings)
        net = make_q_network(obs_dim, action_dim, task_names, cfg.bins, **network)
        return cls(net, obs_dim, action_dim, len(task_names), cfg, device, generator, scheme)

    @classmethod
    def resolve_settings(cls, settings: dict, num_envs: int, machine: dict) -> dict:
        settings = super().resolve_settings(settings, num_envs, machine)
        missing = [k for k, v in settings.items() if v is None]
        if missing:
            raise ValueError(f"train.pqn.{missing[0]} is null and the train config's profile does not give it")
        batch, mbs = num_envs * settings["horizon"], settings["num_minibatches"]
        if mbs > batch:
            raise ValueError(f"train.pqn.num_minibatches={mbs} exceeds the num_envs*horizon={batch} samples")
        return settings

    def describe(self) -> str:
        c = self.cfg
        n = self.buf.task.shape[0] if self.buf is not None else "?"
        return (f"PQN: {n} envs x {c.horizon} steps, {c.mini_epochs} passes of {c.num_minibatches} minibatches, "
                f"{c.bins} bins per action dimension")  # fmt: skip

    # -- schedules ---------------------------------------------------------------------------------
    def set_progress(self, fraction: float) -> None:
        self.progress = min(max(float(fraction), 0.0), 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    @property
    def epsilon(self) -> float:
        """Linear from epsilon_start to epsilon_end over the first `exploration_fraction` of the run."""
        c = self.cfg
        done = min(self.progress / c.exploration_fraction, 1.0) if c.exploration_fraction > 0 else 1.0
        return (1.0 - done) * c.epsilon_start + done * c.epsilon_end

    @property
    def lr(self) -> float:
        return self.cfg.lr * (1.0 - self.progress) if self.cfg.anneal_lr else self.cfg.lr

    # -- the factored Q ----------------------------------------------------------------------------
    def normalize_obs(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.obs_norm.normalize_state(obs, task) if self.cfg.normalize_input else obs

    def utilities(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """(B, action_dim, bins) for raw observations."""
        return self.net(self.normalize_obs(obs, task), task)

    @staticmethod
    def q_value(utilities: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        """Q(s, a): the mean over dimensions of the chosen bins' utilities, (B,)."""
        return utilities.gather(-1, bins.unsqueeze(-1)).squeeze(-1).mean(-1)

    @staticmethod
    def state_value(utilities: torch.Tensor) -> torch.Tensor:
        """V(s) = max_a Q(s, a): the mean over dimensions of each dimension's best utility, (B,)."""
        return utilities.max(-1).values.mean(-1)

    @torch.no_grad()
    def policy(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        obs, task = obs.to(self.device), task.to(self.device)
        return self.bin_values[self.utilities(obs, task).argmax(-1)]

    # -- the rollout -------------------------------------------------------------------------------
    def start(self, task: torch.Tensor) -> None:
        task = task.to(self.device)
        self.buf = Rollout.empty(self.cfg.horizon, task.shape[0], self.obs_dim, self.action_dim, task)
        self.t = 0

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """ε-greedy per env: with probability ε every dimension takes a uniformly random bin."""
        buf, t = self.buf, self.t
        obs = obs.to(self.device)
        N = obs.shape[0]
        greedy = self.utilities(obs, buf.task).argmax(-1)
        explore = torch.rand(N, 1, generator=self.gen, device=self.device) < self.epsilon
        random = torch.randint(self.cfg.bins, (N, self.action_dim), generator=self.gen, device=self.device)
        bins = torch.where(explore, random, greedy)
        buf.obs[t], buf.bins[t] = obs, bins
        return self.bin_values[bins]

    def observe(self, next_obs, reward, terminated, truncated, info) -> None:
        buf, t, dev = self.buf, self.t, self.device
        terminated, truncated = terminated.to(dev), truncated.to(dev)
        ended = (terminated | truncated).unsqueeze(-1)
        buf.next_obs[t] = torch.where(ended, info["final_obs"].to(dev), next_obs.to(dev))
        buf.rewards[t], buf.terminated[t], buf.truncated[t] = reward.to(dev), terminated, truncated
        self.t = t + 1

    # -- learning ----------------------------------------------------------------------------------
    def update(self) -> dict[str, torch.Tensor]:
        if self.t != self.cfg.horizon:
            raise RuntimeError(f"PQN.update after {self.t} of {self.cfg.horizon} rollout steps")
        self.t = 0
        return self.learn(self.buf)

    def prepare(self, buf: Rollout) -> dict[str, torch.Tensor]:
        """The rollout flattened to (T*N, ...) with its Q(λ) targets from the current network; the input
        statistics (if on) take in the rollout's observations first."""
        c = self.cfg
        T, N = buf.rewards.shape
        task = buf.task.expand(T, N).reshape(-1)
        obs, next_obs = buf.obs.reshape(T * N, -1), buf.next_obs.reshape(T * N, -1)
        if c.normalize_input:
            self.obs_norm.update(obs[:, : self.obs_dim - self.n_tasks], task)
        with torch.no_grad():
            next_values = self.state_value(self.utilities(next_obs, task)).view(T, N)
            targets = q_lambda_targets(buf.rewards, next_values, buf.terminated, buf.truncated, c.gamma, c.lam)
        return {"obs": obs, "bins": buf.bins.reshape(T * N, -1), "target": targets.reshape(-1), "task": task}

    def task_losses(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-task mean squared error of Q(s, a) against the targets, and the mean Q."""
        q = self.q_value(self.utilities(mb["obs"], mb["task"]), mb["bins"])
        return {"loss": per_task_mean((q - mb["target"]).square(), mb["task"], self.n_tasks), "q": q.detach().mean()}

    def gradient_step(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One RAdam step on the per-task losses through the MTRL scheme; gradients clipped after backward."""
        counts = task_counts(mb["task"], self.n_tasks)
        with self.scheme.recording(self.net, mb["task"]):
            out = self.task_losses(mb)
        losses = out["loss"]
        keep = None if self.stabilizer is None else self.stabilizer.keep_tasks(losses, counts)
        if keep is not None:
            losses = torch.where(keep, losses, 0.0)  # where, not *: 0 * NaN is NaN
        self.optimizer.zero_grad(set_to_none=True)
        self.scheme.backward_part("critic", losses, counts, list(self.net.parameters()))
        grad_norm = nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.max_grad_norm).detach()
        self.optimizer.step()
        metrics = {"loss/q": (out["loss"].detach() * counts).sum() / counts.sum(), "q_mean": out["q"],
                   "grad_norm": grad_norm}  # fmt: skip
        if keep is not None:
            self.stabilizer.reset_tasks(~keep, self.optimizer, self.gen)
            metrics["masked_tasks"] = (~keep).sum().float()
        if self.scheme.wants_losses_after_step:  # FAMO's after_step form: the same minibatch, stepped
            with torch.no_grad():
                after = self.task_losses(mb)["loss"]
            self.scheme.after_step(after if keep is None else torch.where(keep, after, 0.0))
        return metrics

    def learn(self, buf: Rollout) -> dict[str, torch.Tensor]:
        """`mini_epochs` shuffled passes of `num_minibatches` minibatches; metrics averaged over the steps."""
        c = self.cfg
        data = self.prepare(buf)
        self.scheme.forget()  # new Q(λ) targets: the last rollout's losses are no reference
        B = data["obs"].shape[0]
        sums: dict[str, torch.Tensor] = {}
        for _ in range(c.mini_epochs):
            perm = torch.randperm(B, generator=self.gen, device=self.device)
            for idx in perm.tensor_split(c.num_minibatches):
                for k, v in self.gradient_step({k: v[idx] for k, v in data.items()}).items():
                    sums[k] = sums.get(k, 0.0) + v
        out = {k: v / (c.mini_epochs * c.num_minibatches) for k, v in sums.items()}
        if "masked_tasks" in out:
            out["masked_tasks"] = sums["masked_tasks"]
        out.update(self.scheme.metrics())
        out["target_mean"] = data["target"].mean()
        out["epsilon"], out["lr"] = torch.tensor(self.epsilon), torch.tensor(self.lr)
        return out

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, buffer: bool = False) -> dict:
        """The rollout is never saved: checkpoints fall between iterations, where it is empty."""
        return {
            "net": self.net.state_dict(), "obs_norm": self.obs_norm.state_dict(),
            "optimizer": self.optimizer.state_dict(), "progress": self.progress, "scheme": self.scheme.state_dict(),
        }  # fmt: skip

    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        self.net.load_state_dict(state["net"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        if weights_only:
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheme.load_state_dict(state["scheme"])
        self.set_progress(state["progress"])
