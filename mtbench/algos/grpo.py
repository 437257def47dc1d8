"""MT-GRPO as upstream MTBench runs it (`grpo_agent.py`, `MTGRPOAgent`; MTBench Table 2's strongest method): a
Gaussian policy and no critic. The baseline of an action is the group of the same task's samples in the batch:
advantages are returns standardised per task, then PPO's clipped surrogate, entropy and action-bound terms.

Two advantage forms (`train.grpo.advantage`):
- `reward_to_go` (default, upstream's): each step's discounted reward-to-go G_t inside the rollout (reset at
  an episode's end, no bootstrap at the rollout's end), standardised over all of its task's steps in the batch.
  This is what Table 2 measured, so results stay comparable with the paper.
- `episode` (GRPO as the language-model papers define it): each whole episode's return, standardised over its
  task's whole episodes in the batch, every step of the episode taking that advantage. It needs episodes that
  fill the rollout: `env.random_init_progress=false` and `horizon` >= the episode length (checked at start).
  Steps of an episode the rollout cut (the first rollout, early terminations) get advantage 0 and are counted
  in the `adv/scored` metric.
A task whose group has one member, or no spread, gets advantage 0 for all of them: no contrast, no signal
(never NaN).

Departures from upstream, both deliberate: no constant at time-outs (upstream adds γ there, an implicit value of
1 for a learner that has no values), and the paper's Table 4, which prints PPO's numbers for GRPO, is not followed:
mtbench/conf/train/grpo*.yaml hold upstream's config and exec values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from mtbench import distributed
from mtbench.algos.base import Algorithm, settings_from_dict
from mtbench.algos.common import TaskRunningMeanStd, per_task_mean, pooled_sums, standardize_per_task, task_counts
from mtbench.algos.ppo import Clip, clipped_policy_terms, gaussian_logp
from mtbench.mtrl import MeanScheme
from mtbench.nets import stabilizer
from mtbench.nets.policy import make_policy_network
from mtbench.validation import NonNegFloat, PosFloat, PosInt, UnitFloat

ADVANTAGES = ("reward_to_go", "episode")


@dataclass
class GRPOConfig:
    """`train.grpo.*`; the values live in mtbench/conf/train/grpo*.yaml (upstream's config), not here."""

    horizon: PosInt
    mini_epochs: PosInt
    minibatch_size: PosInt
    lr: PosFloat
    gamma: UnitFloat  # discount of the reward-to-go form
    advantage: Literal[ADVANTAGES]  # "reward_to_go" (upstream) or "episode"
    clip: Clip
    entropy_coef: float
    bounds_loss_coef: NonNegFloat
    bound: PosFloat
    max_grad_norm: PosFloat
    normalize_input: bool

    @classmethod
    def from_dict(cls, d: dict) -> GRPOConfig:
        return settings_from_dict(cls, d, "grpo")


def reward_to_go(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted reward-to-go of a (T, N) rollout, reset after each step whose `dones` is set and zero past the
    rollout's end (no bootstrap: there is no value to bootstrap from)."""
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * running * (1.0 - dones[t].to(rewards.dtype))
        out[t] = running
    return out


def episode_advantages(
    rewards: torch.Tensor, dones: torch.Tensor, fresh: torch.Tensor, task: torch.Tensor, n_tasks: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-episode group advantages of a (T, N) rollout: (advantage (T, N), scored (T, N) bool).

    A segment is a run of an env's steps between episode ends and the rollout's edges. It is a whole episode when
    it ends with a done inside the rollout and began at an episode's start: after a done, or at step 0 when
    `fresh[n]` says the env's episode began there. Each whole episode's undiscounted return is standardised over
    its task's whole episodes (unbiased std; one episode or no spread gives 0); its steps take that value, the
    other steps 0. Vectorised over segments (at most T per env), no host sync."""
    T, N = rewards.shape
    starts = torch.ones_like(dones)
    starts[1:] = dones[:-1]
    seg = starts.to(torch.long).cumsum(0) - 1 + torch.arange(N, device=rewards.device) * T  # (T, N) global ids
    flat = seg.reshape(-1)
    score = rewards.new_zeros(N * T).index_add_(0, flat, rewards.reshape(-1))
    ended = rewards.new_zeros(N * T).index_add_(0, flat, dones.reshape(-1).to(rewards.dtype)) > 0
    began = torch.ones(N * T, dtype=torch.bool, device=rewards.device)
    began[seg[0]] = fresh  # every env's first segment began at an episode start only if fresh
    whole = ended & began
    seg_task = task.repeat_interleave(T)  # segment n*T + k belongs to env n
    w = whole.to(rewards.dtype)
    # over every rank's episodes in a torchrun job: the group is the task's episodes in the big batch
    counts, sums = pooled_sums(
        w.new_zeros(n_tasks).index_add_(0, seg_task, w), w.new_zeros(n_tasks).index_add_(0, seg_task, w * score)
    )
    mean = sums / counts.clamp_min(1.0)
    centred = (score - mean[seg_task]) * w
    sq = distributed.all_reduce_(w.new_zeros(n_tasks).index_add_(0, seg_task, centred.square()))
    var = sq / (counts - 1.0).clamp_min(1.0)
    adv = centred / (var.sqrt()[seg_task] + 1e-8)
    return adv[seg], whole[seg]


class GRPO(Algorithm):
    """Acting, group-relative advantages and the clipped update of an actor-only policy; owns its rollout."""

    name = "grpo"
    settings_class = GRPOConfig
    split_settings = ("minibatch_size",)
    rank_local_state = ("fresh",)
    resumable_settings = ("mini_epochs", "minibatch_size", "entropy_coef", "max_grad_norm")
    scheme_part: ClassVar[str] = "actor"
    health = ("loss/surrogate", "std")
    diverged_hint = "Try a lower train.grpo.lr."

    def __init__(
        self,
        net: nn.Module,
        obs_dim: int,
        n_tasks: int,
        cfg: GRPOConfig,
        device: torch.device,
        generator: torch.Generator,
        scheme: MeanScheme | None = None,
    ):
        self.net, self.cfg, self.device, self.gen = net.to(device), cfg, device, generator
        self.n_tasks, self.obs_dim = n_tasks, obs_dim
        self.scheme = scheme or MeanScheme()
        if getattr(self.scheme, "apply_to", "actor") == "critic":
            raise ValueError(f"scheme={self.scheme.name} applies to a critic and GRPO has none: scheme.apply_to=actor")
        self.obs_norm = TaskRunningMeanStd(n_tasks, obs_dim - n_tasks).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=1e-8)
        self.stabilizer = stabilizer(self.net)
        self.steps_per_iteration = cfg.horizon
        self.buf: dict[str, torch.Tensor] | None = None

    @classmethod
    def build(cls, settings, network, obs_dim, action_dim, task_names, device, generator, scheme) -> GRPO:
        cfg = GRPOConfig.from_dict(settings)
        net = make_policy_network(obs_dim, action_dim, task_names, **network)
        return cls(net, obs_dim, len(task_names), cfg, device, generator, scheme)

    @classmethod
    def resolve_settings(cls, settings: dict, num_envs: int, machine: dict) -> dict:
        settings = super().resolve_settings(settings, num_envs, machine)
        batch = num_envs * settings["horizon"]
        if settings["minibatch_size"] is None:
            raise ValueError("train.grpo.minibatch_size is null and the train config's profile does not give it")
        settings["minibatch_size"] = min(int(settings["minibatch_size"]), batch)
        mb = settings["minibatch_size"]
        if mb < 1 or batch % mb:
            raise ValueError(f"train.grpo.minibatch_size={mb} must divide num_envs*horizon={batch}")
        return settings

    @classmethod
    def check_env(cls, settings: dict, env: dict) -> None:
        if settings["advantage"] != "episode":
            return
        if env.get("random_init_progress"):
            raise ValueError("train.grpo.advantage=episode scores whole episodes: add env.random_init_progress=false")
        if settings["horizon"] < env["episode_length"]:
            raise ValueError(
                f"train.grpo.advantage=episode needs whole episodes in a rollout: train.grpo.horizon="
                f"{settings['horizon']} < episode_length={env['episode_length']}"
            )

    def parameter_counts(self) -> dict[str, int]:
        n = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        return {"actor": n, "total": n}

    def describe(self) -> str:
        n = self.buf["task"].shape[0] if self.buf is not None else "?"
        return (
            f"GRPO ({self.cfg.advantage} advantages): {n} envs x {self.cfg.horizon} steps, "
            f"minibatch {self.cfg.minibatch_size}"
        )

    # -- acting ------------------------------------------------------------------------------------
    def normalize_obs(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.obs_norm.normalize_state(obs, task) if self.cfg.normalize_input else obs

    def policy(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            mu, _ = self.net(self.normalize_obs(obs.to(self.device), task.to(self.device)), task.to(self.device))
        return mu

    def start(self, task: torch.Tensor) -> None:
        T, N, dev = self.cfg.horizon, task.shape[0], self.device
        A = self.net.log_std.shape[-1]
        z = lambda *s: torch.zeros(*s, device=dev)  # noqa: E731
        self.buf = {
            "obs": z(T, N, self.obs_dim), "actions": z(T, N, A), "logp": z(T, N), "mu": z(T, N, A),
            "sigma": z(T, N, A), "rewards": z(T, N), "dones": torch.zeros(T, N, dtype=torch.bool, device=dev),
            "task": task.to(dev),
        }  # fmt: skip
        # whether each env's current episode began at the next rollout's first step: unknown at the start
        self.fresh = torch.zeros(N, dtype=torch.bool, device=dev)
        self.t = 0

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        buf, t = self.buf, self.t
        obs = obs.to(self.device)
        mu, log_std = self.net(self.normalize_obs(obs, buf["task"]), buf["task"])
        action = mu + log_std.exp() * torch.randn(mu.shape, generator=self.gen, device=mu.device)
        buf["obs"][t], buf["actions"][t], buf["logp"][t] = obs, action, gaussian_logp(action, mu, log_std)
        buf["mu"][t], buf["sigma"][t] = mu, log_std.exp()
        return action

    def observe(self, next_obs, reward, terminated, truncated, info) -> None:
        dev = self.device
        self.buf["rewards"][self.t] = reward.to(dev)
        self.buf["dones"][self.t] = terminated.to(dev) | truncated.to(dev)
        self.t += 1

    # -- learning ----------------------------------------------------------------------------------
    def advantages(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(advantage (T, N), scored (T, N) bool) of the full rollout, by `cfg.advantage`."""
        buf, cfg = self.buf, self.cfg
        T, N = buf["rewards"].shape
        if cfg.advantage == "episode":
            return episode_advantages(buf["rewards"], buf["dones"], self.fresh, buf["task"], self.n_tasks)
        returns = reward_to_go(buf["rewards"], buf["dones"], cfg.gamma)
        task = buf["task"].expand(T, N).reshape(-1)
        adv = standardize_per_task(returns.reshape(-1), task, self.n_tasks).reshape(T, N)
        return adv, torch.ones_like(buf["dones"])

    def task_losses(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, task, n = self.cfg, mb["task"], self.n_tasks
        mu, log_std = self.net(self.normalize_obs(mb["obs"], task), task)
        terms = clipped_policy_terms(mu, log_std, mb, mb["adv"], cfg.clip, cfg.bound)
        surrogate, entropy, bounds = terms["surrogate"], terms["entropy"], terms["bounds"]
        total = surrogate - cfg.entropy_coef * entropy + cfg.bounds_loss_coef * bounds
        return {
            "actor": per_task_mean(total, task, n),
            "surrogate": per_task_mean(surrogate, task, n),
            "entropy": per_task_mean(entropy, task, n),
            "bounds": per_task_mean(bounds, task, n),
            "counts": task_counts(task, n),
            "kl": terms["kl"],
            "clipfrac": terms["clipfrac"],
        }

    def _scheme_losses(self, actor: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """The per-task losses the scheme sees: exponentiated for a scheme that needs them positive (upstream's
        GRPO+FAMO: FAMO's log-loss weighting), and zero for the tasks the stabiliser leaves out."""
        if getattr(self.scheme, "positive_losses", False):
            actor = actor.exp()
        return actor if keep is None else torch.where(keep, actor, 0.0)

    def update(self) -> dict[str, torch.Tensor]:
        cfg, buf = self.cfg, self.buf
        if self.t != cfg.horizon:
            raise RuntimeError(f"GRPO.update after {self.t} of {cfg.horizon} rollout steps")
        self.t = 0
        adv, scored = self.advantages()
        self.fresh = buf["dones"][-1].clone()
        T, N = adv.shape
        task = buf["task"].expand(T, N).reshape(-1)
        obs = buf["obs"].reshape(T * N, -1)
        if cfg.normalize_input:
            self.obs_norm.update(obs[:, : self.obs_dim - self.n_tasks], task)
        flat = lambda x: x.reshape(T * N, *x.shape[2:])  # noqa: E731
        data = {
            "obs": obs, "actions": flat(buf["actions"]), "logp": flat(buf["logp"]), "mu": flat(buf["mu"]),
            "sigma": flat(buf["sigma"]), "adv": adv.reshape(-1), "task": task,
        }  # fmt: skip
        params = self.net.actor_parameters()
        self.scheme.forget()  # new advantages: the last iteration's losses are no reference
        sums: dict[str, torch.Tensor] = {}
        B, n_mb = T * N, 0
        for _ in range(cfg.mini_epochs):
            perm = torch.randperm(B, generator=self.gen, device=self.device)
            for start in range(0, B, cfg.minibatch_size):
                mb = {k: v[perm[start : start + cfg.minibatch_size]] for k, v in data.items()}
                with self.scheme.recording(self.net, mb["task"], "actor"):
                    losses = self.task_losses(mb)
                keep = None
                if self.stabilizer is not None:
                    keep = self.stabilizer.keep_tasks(losses["actor"], losses["counts"])
                actor = self._scheme_losses(losses["actor"], keep)
                self.optimizer.zero_grad(set_to_none=True)
                self.scheme.backward_part("actor", actor, losses["counts"], params)
                grad_norm = nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                if self.stabilizer is not None:
                    self.stabilizer.reset_tasks(~keep, self.optimizer, self.gen)
                    sums["masked_tasks"] = sums.get("masked_tasks", 0.0) + (~keep).sum()
                if self.scheme.wants_losses_after_step:  # FAMO's after_step form: the same minibatch, stepped
                    with torch.no_grad():
                        self.scheme.after_step(self._scheme_losses(self.task_losses(mb)["actor"], keep))
                counts = losses["counts"]
                for key in ("surrogate", "entropy", "bounds"):
                    sums[key] = sums.get(key, 0.0) + (losses[key].detach() * counts).sum() / counts.sum()
                for key in ("kl", "clipfrac"):
                    sums[key] = sums.get(key, 0.0) + losses[key]
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm.detach()
                n_mb += 1
        out = {f"loss/{k}": sums[k] / n_mb for k in ("surrogate", "entropy", "bounds")}
        out.update({k: sums[k] / n_mb for k in ("kl", "clipfrac", "grad_norm")})
        if "masked_tasks" in sums:
            out["masked_tasks"] = sums["masked_tasks"] / n_mb
        out.update(self.scheme.metrics())
        out["adv/scored"] = scored.float().mean()
        out["lr"] = torch.tensor(cfg.lr)
        out["std"] = self.net.log_std.detach().exp().mean()
        return out

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, buffer: bool = False) -> dict:
        """The rollout is never saved (empty between iterations); `fresh` is, as it decides the next advantages."""
        return {
            "net": self.net.state_dict(),
            "obs_norm": self.obs_norm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheme": self.scheme.state_dict(),
            "fresh": self.fresh.clone(),
        }

    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        self.net.load_state_dict(state["net"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        if not weights_only:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheme.load_state_dict(state["scheme"])
            self.fresh = state["fresh"].to(self.device)
