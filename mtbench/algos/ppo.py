"""MT-PPO as in the MTBench paper (appendix E, Table 3) on top of rl_games' continuous A2C:
per-task input and value normalisation, GAE with time-out bootstrapping, clipped surrogate and clipped
value loss, entropy and soft action-bound terms, per-task advantage standardisation in each minibatch.

Every loss term is produced as a per-task vector `(n_tasks,)`; an MTRL scheme (`mtbench.mtrl`) turns
those into gradients. With no scheme the update is the plain mean-loss PPO update.

Two documented departures from upstream, both in the direction of the textbook algorithm:
- time-outs bootstrap with V(final observation of the ended episode) rather than V(current observation);
- input statistics are updated once per iteration with the whole rollout, before the mini-epochs,
  instead of minibatch by minibatch during the first mini-epoch (same data, one update).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn

from mtbench import distributed
from mtbench.algos.base import Algorithm, settings_from_dict
from mtbench.algos.common import (
    TaskRunningMeanStd,
    gae,
    mean_std,
    per_task_mean,
    standardize_per_task,
    task_counts,
)
from mtbench.mtrl import MeanScheme
from mtbench.mtrl.grads import conflict_stats, task_gradients
from mtbench.nets import count_parameters, make_network, stabilizer
from mtbench.validation import NonNegFloat, PosFloat, PosInt, Range, UnitFloat

LOG_2PI = math.log(2.0 * math.pi)
Clip = Annotated[float, Range(lo=0, hi=1, lo_open=True, hi_open=True)]
"""The ratio clip ε of the surrogate: the ratio is kept in [1 - ε, 1 + ε]."""


@dataclass
class PPOConfig:
    """`train.ppo.*`; the values live in mtbench/conf/train/ppo*.yaml (the paper's Table 3), not here."""

    horizon: PosInt
    mini_epochs: PosInt
    minibatch_size: PosInt
    lr: PosFloat
    schedule: Literal["fixed", "adaptive"]  # rl_games' KL-adaptive learning rate, or none
    kl_threshold: PosFloat
    gamma: UnitFloat
    lam: UnitFloat
    clip: Clip
    clip_value: bool
    critic_coef: NonNegFloat
    entropy_coef: float  # may be negative (an entropy penalty)
    bounds_loss_coef: NonNegFloat
    bound: PosFloat
    max_grad_norm: PosFloat
    normalize_input: bool
    normalize_value: bool
    normalize_advantage: bool
    per_task_advantage: bool
    log_grad_conflict: bool  # per-task gradient cosine similarity, first minibatch of each iteration

    @classmethod
    def from_dict(cls, d: dict) -> PPOConfig:
        return settings_from_dict(cls, d, "ppo")


@dataclass
class Rollout:
    """One horizon of experience, (T, N, ...) on the learner's device. `task` is constant per env."""

    obs: torch.Tensor
    actions: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor  # denormalised
    rewards: torch.Tensor  # time-outs already bootstrapped
    dones: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    task: torch.Tensor  # (N,)

    @classmethod
    def empty(cls, T: int, N: int, obs_dim: int, act_dim: int, task: torch.Tensor) -> Rollout:
        dev = task.device
        z = lambda *s: torch.zeros(*s, device=dev)
        return cls(
            z(T, N, obs_dim), z(T, N, act_dim), z(T, N), z(T, N), z(T, N),
            torch.zeros(T, N, dtype=torch.bool, device=dev), z(T, N, act_dim), z(T, N, act_dim), task,
        )  # fmt: skip


def gaussian_logp(x: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return (-0.5 * ((x - mu) / log_std.exp()).square() - log_std - 0.5 * LOG_2PI).sum(-1)


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, mu_old: torch.Tensor, sigma_old: torch.Tensor) -> torch.Tensor:
    """KL(old || new) per sample, summed over action dims (rl_games' policy_kl)."""
    kl = torch.log(sigma / sigma_old + 1e-5) + (sigma_old.square() + (mu_old - mu).square()) / (2 * sigma.square())
    return (kl - 0.5).sum(-1)


def clipped_policy_terms(
    mu: torch.Tensor, log_std: torch.Tensor, mb: dict[str, torch.Tensor], adv: torch.Tensor, clip: float, bound: float
) -> dict[str, torch.Tensor]:
    """Per-sample terms of PPO's policy loss (shared with GRPO): the clipped surrogate of the minibatch's
    `actions` under the new Gaussian against their old log-probabilities `logp`, its entropy, the soft action-bound
    penalty beyond ±`bound`, and the diagnostics KL(old || new) and clip fraction (no gradient)."""
    logp = gaussian_logp(mb["actions"], mu, log_std)
    ratio = torch.exp(logp - mb["logp"])
    surrogate = torch.maximum(-adv * ratio, -adv * ratio.clamp(1.0 - clip, 1.0 + clip))
    entropy = (0.5 + 0.5 * LOG_2PI + log_std).sum(-1)
    bounds = ((mu - bound).clamp_min(0.0).square() + (mu + bound).clamp_max(0.0).square()).sum(-1)
    with torch.no_grad():
        kl = gaussian_kl(mu, log_std.exp(), mb["mu"], mb["sigma"]).mean()
        clipfrac = ((ratio - 1.0).abs() > clip).float().mean()
    return {"surrogate": surrogate, "entropy": entropy, "bounds": bounds, "kl": kl, "clipfrac": clipfrac}


class PPO(Algorithm):
    """Acting, advantage estimation and the clipped update for a multi-task actor-critic `net`; owns its
    rollout storage (`start`, `act`, `observe`) and its metric names."""

    name = "ppo"
    settings_class = PPOConfig
    split_settings = ("minibatch_size",)
    rank_local_state = ()
    resumable_settings = ("mini_epochs", "minibatch_size", "entropy_coef", "max_grad_norm", "log_grad_conflict")
    health = ("loss/surrogate", "loss/value", "std")
    diverged_hint = "Try a lower train.ppo.lr or train.ppo.schedule=adaptive."

    def __init__(
        self,
        net: nn.Module,
        obs_dim: int,
        n_tasks: int,
        cfg: PPOConfig,
        device: torch.device,
        generator: torch.Generator,
        scheme: MeanScheme | None = None,
    ):
        self.net, self.cfg, self.device, self.gen = net.to(device), cfg, device, generator
        self.n_tasks, self.obs_dim = n_tasks, obs_dim
        self.scheme = scheme or MeanScheme()
        # statistics of the observation without its one-hot tail, which passes through unchanged
        self.obs_norm = TaskRunningMeanStd(n_tasks, obs_dim - n_tasks).to(device)
        self.value_norm = TaskRunningMeanStd(n_tasks, 1, clip=5.0).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=1e-8)
        self.lr = cfg.lr
        # networks with task-separable parameters (PaCo) mask out exploding task losses and reset those tasks
        self.stabilizer = stabilizer(self.net)
        self.steps_per_iteration = cfg.horizon
        self.buf: Rollout | None = None

    @classmethod
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
    ) -> PPO:
        """From the config sections `train.ppo` and `network` (the registry's entry point)."""
        cfg = PPOConfig.from_dict(settings)
        net = make_network(obs_dim, action_dim, task_names, **network)
        return cls(net, obs_dim, len(task_names), cfg, device, generator, scheme)

    @classmethod
    def resolve_settings(cls, settings: dict, num_envs: int, machine: dict) -> dict:
        settings = dict(settings)
        batch = num_envs * settings["horizon"]
        if settings["minibatch_size"] is None:  # the machine's minibatch, or the whole batch if that is smaller
            settings["minibatch_size"] = min(int(machine["minibatch_size"]), batch)
        mb = settings["minibatch_size"]
        if mb < 1 or batch % mb:
            raise ValueError(f"train.ppo.minibatch_size={mb} must divide num_envs*horizon={batch}")
        return super().resolve_settings(settings, num_envs, machine)

    def parameter_counts(self) -> dict[str, int]:
        return count_parameters(self.net)

    def describe(self) -> str:
        n = self.buf.task.shape[0] if self.buf is not None else "?"
        return f"PPO: {n} envs x {self.cfg.horizon} steps, minibatch {self.cfg.minibatch_size}"

    # -- acting ------------------------------------------------------------------------------------
    def normalize_obs(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.obs_norm.normalize_state(obs, task) if self.cfg.normalize_input else obs

    def _value_out(self, v: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        if not self.cfg.normalize_value:
            return v
        return self.value_norm.denormalize(v[:, None], task).squeeze(-1)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, task: torch.Tensor, deterministic: bool = False) -> dict[str, torch.Tensor]:
        """Action, its log-probability, the value and the Gaussian's parameters."""
        mu, log_std, v = self.net(self.normalize_obs(obs, task), task)
        sigma = log_std.exp()
        action = mu if deterministic else mu + sigma * torch.randn(mu.shape, generator=self.gen, device=mu.device)
        return {
            "action": action,
            "logp": gaussian_logp(action, mu, log_std),
            "value": self._value_out(v, task),
            "mu": mu,
            "sigma": sigma,
        }

    @torch.no_grad()
    def value(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self._value_out(self.net.value(self.normalize_obs(obs, task), task), task)

    def policy(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.sample(obs.to(self.device), task.to(self.device), deterministic=True)["action"]

    def plasticity_parts(self) -> dict[str, nn.Module]:
        """Actor and critic where the network keeps them as separate modules: the MLP, and the multi-head MLP's trunks
        (its per-task heads are linear)."""
        parts = {k: getattr(self.net, k, None) or getattr(self.net, f"{k}_trunk", None) for k in ("actor", "critic")}
        return {k: m for k, m in parts.items() if isinstance(m, nn.Module)}

    def probe(self, obs: torch.Tensor, task: torch.Tensor) -> None:
        obs, task = obs.to(self.device), task.to(self.device)
        self.net(self.normalize_obs(obs, task), task)

    # -- the rollout -------------------------------------------------------------------------------
    def start(self, task: torch.Tensor) -> None:
        obs_dim, act_dim = self.obs_dim, self.net.log_std.shape[-1]
        self.buf = Rollout.empty(self.cfg.horizon, task.shape[0], obs_dim, act_dim, task.to(self.device))
        self.t = 0

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        buf, t = self.buf, self.t
        obs = obs.to(self.device)
        out = self.sample(obs, buf.task)
        buf.obs[t], buf.actions[t], buf.logp[t], buf.values[t] = obs, out["action"], out["logp"], out["value"]
        buf.mu[t], buf.sigma[t] = out["mu"], out["sigma"]
        return out["action"]

    def observe(self, next_obs, reward, terminated, truncated, info) -> None:
        buf, t, dev = self.buf, self.t, self.device
        reward, truncated = reward.to(dev), truncated.to(dev)
        # a time-out is not a failure: bootstrap with the value of the episode's final observation
        final_value = self.value(info["final_obs"].to(dev), buf.task)
        buf.rewards[t] = reward + self.cfg.gamma * final_value * truncated
        buf.dones[t] = terminated.to(dev) | truncated
        self.t = t + 1
        if self.t == self.cfg.horizon:  # the rollout is full: the value to bootstrap its last step from
            self.last_value = self.value(next_obs.to(dev), buf.task)

    def update(self) -> dict[str, torch.Tensor]:
        if self.t != self.cfg.horizon:
            raise RuntimeError(f"PPO.update after {self.t} of {self.cfg.horizon} rollout steps")
        self.t = 0
        return self.learn(self.buf, self.last_value)

    # -- learning ----------------------------------------------------------------------------------
    def task_losses(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-sample PPO terms of one minibatch reduced to per-task means, plus diagnostics."""
        cfg, task, n = self.cfg, mb["task"], self.n_tasks
        mu, log_std, v = self.net(self.normalize_obs(mb["obs"], task), task)
        adv = mb["adv"]
        if cfg.per_task_advantage:
            adv = standardize_per_task(adv, task, n)
        terms = clipped_policy_terms(mu, log_std, mb, adv, cfg.clip, cfg.bound)
        value_err = (v - mb["returns"]).square()
        if cfg.clip_value:
            clipped = mb["values"] + (v - mb["values"]).clamp(-cfg.clip, cfg.clip)
            value_err = torch.maximum(value_err, (clipped - mb["returns"]).square())
        surrogate, entropy, bounds = terms["surrogate"], terms["entropy"], terms["bounds"]
        actor_total = surrogate - cfg.entropy_coef * entropy + cfg.bounds_loss_coef * bounds
        return {
            "actor": per_task_mean(actor_total, task, n),
            "critic": per_task_mean(0.5 * cfg.critic_coef * value_err, task, n),
            "surrogate": per_task_mean(surrogate, task, n),
            "value_loss": per_task_mean(value_err, task, n),
            "entropy": per_task_mean(entropy, task, n),
            "bounds": per_task_mean(bounds, task, n),
            "counts": task_counts(task, n),
            "kl": terms["kl"],
            "clipfrac": terms["clipfrac"],
        }

    def prepare(self, buf: Rollout, last_value: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns, advantages and (per-task normalised) value targets of a rollout, flattened to (T*N, ...)."""
        cfg = self.cfg
        T, N = buf.rewards.shape
        adv = gae(buf.rewards, buf.values, buf.dones, last_value, cfg.gamma, cfg.lam)
        returns = adv + buf.values
        task = buf.task.expand(T, N).reshape(-1)
        values, returns, adv = buf.values.reshape(-1), returns.reshape(-1), adv.reshape(-1)
        if cfg.normalize_value:
            # statistics see both the old values and the new returns, as rl_games does
            self.value_norm.update(values[:, None], task)
            self.value_norm.update(returns[:, None], task)
            values = self.value_norm.normalize(values[:, None], task).squeeze(-1)
            returns = self.value_norm.normalize(returns[:, None], task).squeeze(-1)
        if cfg.normalize_advantage:
            mean, std = mean_std(adv)  # over every rank's rollout in a torchrun job
            adv = (adv - mean) / (std + 1e-8)
        obs = buf.obs.reshape(T * N, -1)
        if cfg.normalize_input:
            self.obs_norm.update(obs[:, : self.obs_dim - self.n_tasks], task)
        flat = lambda x: x.reshape(T * N, *x.shape[2:])
        return {
            "obs": obs, "actions": flat(buf.actions), "logp": flat(buf.logp), "mu": flat(buf.mu),
            "sigma": flat(buf.sigma), "values": values, "returns": returns, "adv": adv, "task": task,
        }  # fmt: skip

    def learn(self, buf: Rollout, last_value: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mini-epochs of shuffled minibatches over a full rollout. Returns metric tensors (no host sync unless
        the learning rate is KL-adaptive, which reads one number per mini-epoch)."""
        cfg = self.cfg
        data = self.prepare(buf, last_value)
        B = data["obs"].shape[0]
        if cfg.minibatch_size > B or B % cfg.minibatch_size:
            raise ValueError(
                f"minibatch_size {cfg.minibatch_size} must divide the batch num_envs*horizon = {B}; "
                f"choose e.g. minibatch_size={B // 4}"
            )
        actor_params, critic_params = self.net.actor_parameters(), self.net.critic_parameters()
        self.scheme.forget()  # new returns, refit value normaliser: the last iteration's losses are no reference
        sums: dict[str, torch.Tensor] = {}
        n_mb = 0
        for _ in range(cfg.mini_epochs):
            perm = torch.randperm(B, generator=self.gen, device=self.device)
            epoch_kl = torch.zeros((), device=self.device)
            for start in range(0, B, cfg.minibatch_size):
                idx = perm[start : start + cfg.minibatch_size]
                mb = {k: v[idx] for k, v in data.items()}
                with self.scheme.recording(self.net, mb["task"]):
                    losses = self.task_losses(mb)
                if cfg.log_grad_conflict and n_mb == 0:
                    sums.update(self._conflicts(losses, actor_params, critic_params))
                actor_losses, critic_losses = losses["actor"], losses["critic"]
                if self.stabilizer is not None:
                    keep = self.stabilizer.keep_tasks(losses["actor"] + losses["critic"], losses["counts"])
                    actor_losses = torch.where(keep, actor_losses, 0.0)  # where, not *: 0 * NaN is NaN
                    critic_losses = torch.where(keep, critic_losses, 0.0)
                self.optimizer.zero_grad(set_to_none=True)
                self.scheme.backward(actor_losses, critic_losses, losses["counts"], actor_params, critic_params)
                grad_norm = nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                if self.stabilizer is not None:
                    self.stabilizer.reset_tasks(~keep, self.optimizer, self.gen)
                    sums["masked_tasks"] = sums.get("masked_tasks", 0.0) + (~keep).sum()
                if self.scheme.wants_losses_after_step:  # FAMO's after_step form: the same minibatch, stepped
                    with torch.no_grad():
                        after = self.task_losses(mb)["critic"]
                    self.scheme.after_step(after if self.stabilizer is None else torch.where(keep, after, 0.0))
                epoch_kl = epoch_kl + losses["kl"]
                counts = losses["counts"]
                for key in ("surrogate", "value_loss", "entropy", "bounds"):
                    total = (losses[key].detach() * counts).sum() / counts.sum()
                    sums[key] = sums.get(key, 0.0) + total
                for key in ("kl", "clipfrac"):
                    sums[key] = sums.get(key, 0.0) + losses[key]
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm.detach()
                n_mb += 1
            if cfg.schedule == "adaptive":
                # every rank of a torchrun job takes the same step size: the KL of the big batch
                self._adapt_lr(float(distributed.mean_over_ranks(epoch_kl)) / (B // cfg.minibatch_size))
        mean = {k: v / (1 if k.startswith("grad_cos") else n_mb) for k, v in sums.items()}
        out = {f"loss/{k.removesuffix('_loss')}": mean[k] for k in ("surrogate", "value_loss", "entropy", "bounds")}
        out.update({k: mean[k] for k in ("kl", "clipfrac", "grad_norm")})
        out["lr"] = torch.tensor(self.lr)
        out["std"] = self.net.log_std.detach().exp().mean()
        out.update({k: v for k, v in mean.items() if k.startswith("grad_cos") or k == "masked_tasks"})
        out.update(self.scheme.metrics())
        return out

    def _conflicts(self, losses: dict, actor_params: list, critic_params: list) -> dict[str, torch.Tensor]:
        """Cosine similarity of per-task actor and critic gradients (tasks present in the minibatch)."""
        present = losses["counts"] > 0
        out = {}
        for part, params in (("actor", actor_params), ("critic", critic_params)):
            G = task_gradients(losses[part], params)
            mean, low = conflict_stats(G, present)
            out[f"grad_cos_mean/{part}"], out[f"grad_cos_min/{part}"] = mean.detach(), low.detach()
        return out

    def _adapt_lr(self, kl: float) -> None:
        """rl_games' adaptive schedule: shrink the step when the policy moved too far, grow it when too little."""
        if kl > 2.0 * self.cfg.kl_threshold:
            self.lr = max(self.lr / 1.5, 1e-6)
        elif kl < 0.5 * self.cfg.kl_threshold:
            self.lr = min(self.lr * 1.5, 1e-2)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, buffer: bool = False) -> dict:
        """The rollout is never saved: checkpoints fall between iterations, where it is empty."""
        return {
            "net": self.net.state_dict(),
            "obs_norm": self.obs_norm.state_dict(),
            "value_norm": self.value_norm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr": self.lr,
            "scheme": self.scheme.state_dict(),
        }

    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        self.net.load_state_dict(state["net"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        self.value_norm.load_state_dict(state["value_norm"])
        if not weights_only:
            self.optimizer.load_state_dict(state["optimizer"])
            self.lr = state["lr"]
            self.scheme.load_state_dict(state["scheme"])
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr
