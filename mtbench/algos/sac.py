"""MT-SAC as upstream MTBench runs it (paper Table 6; `mt_sac_agent.py`): a tanh-Gaussian actor and twin Q
networks over the per-task normalised observation with its one-hot, one temperature per task, n-step returns
from a replay buffer on the learner's device, Polyak-averaged target critics updated every gradient step.

Per-task quantities are first-class: the critic and actor losses are (n_tasks,) vectors of per-task means,
which an MTRL scheme (`mtbench.mtrl`) turns into gradients of the critic (and, with `apply_to`, the actor);
each task's temperature follows only its own samples' entropy.

Where upstream is wrong we are right (README, "MT-SAC"):
- gradient norms are clipped after `backward()` (upstream clips before it, so never);
- n-step returns stop at an episode's end and the bootstrap is discounted by γ^k for the k steps actually taken
  (upstream always uses γ^n);
- a time-out bootstraps from the episode's final observation; only a true termination stops bootstrapping
  (upstream's `max_env_steps` of 1000 against 150-step episodes makes every time-out terminal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from mtbench import distributed
from mtbench.algos.base import Algorithm, settings_from_dict
from mtbench.algos.common import TaskRunningMeanStd, per_task_mean, task_counts
from mtbench.algos.replay import NStepWindow, ReplayBuffer, replay_updates
from mtbench.mtrl import MeanScheme
from mtbench.nets import stabilizer
from mtbench.nets.sac import make_sac_networks
from mtbench.validation import NonNegInt, OpenUnitFloat, PosFloat, PosInt, UnitFloat

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class SACConfig:
    """`train.sac.*`; the values live in mtbench/conf/train/sac*.yaml (the paper's Table 6), not here."""

    horizon: PosInt  # vector steps per iteration (upstream: 1)
    gradient_steps_per_itr: PosInt  # gradient steps per iteration
    batch_size: PosInt
    replay_buffer_size: PosInt  # transitions, all tasks together
    nstep: PosInt
    gamma: UnitFloat
    critic_tau: OpenUnitFloat  # Polyak factor of the target critics, every gradient step
    actor_lr: PosFloat
    critic_lr: PosFloat
    alpha_lr: PosFloat
    init_alpha: PosFloat
    target_entropy: float | None  # None: -|A|
    log_std_min: float
    log_std_max: float
    grad_norm: PosFloat
    num_warmup_steps: NonNegInt  # vector steps of uniform random actions before the policy acts
    normalize_input: bool

    @classmethod
    def from_dict(cls, d: dict) -> SACConfig:
        cfg = settings_from_dict(cls, d, "sac")
        if cfg.log_std_min >= cfg.log_std_max:
            raise ValueError(f"train.sac.log_std_min={cfg.log_std_min} must be below log_std_max={cfg.log_std_max}")
        return cfg


def squashed_sample(
    mu: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh(mu + std * noise) and its log-density (B,), with the tanh change of variables in the stable form
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)). `noise` None: the deterministic action tanh(mu)."""
    u = mu if noise is None else mu + log_std.exp() * noise
    base = (-0.5 * (noise if noise is not None else torch.zeros_like(mu)).square() - log_std - 0.5 * LOG_2PI).sum(-1)
    correction = (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
    return torch.tanh(u), base - correction


class SAC(Algorithm):
    """Acting with exploration, the n-step replay, and the critic / actor / temperature updates."""

    name = "sac"
    settings_class = SACConfig
    split_settings = ("batch_size", "replay_buffer_size")
    rank_local_state = ("window", "buffer")
    resumable_settings = ("batch_size", "gradient_steps_per_itr", "grad_norm")
    health = ("loss/critic", "loss/actor")
    diverged_hint = "Try lower train.sac.critic_lr / actor_lr or a smaller train.sac.critic_tau."

    def __init__(
        self,
        actor: nn.Module,
        critic: nn.Module,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        cfg: SACConfig,
        device: torch.device,
        generator: torch.Generator,
        scheme: MeanScheme | None = None,
    ):
        self.cfg, self.device, self.gen = cfg, device, generator
        self.obs_dim, self.action_dim, self.n_tasks = obs_dim, action_dim, n_tasks
        self.scheme = scheme or MeanScheme()
        target = _frozen_copy(critic)
        self.net = nn.ModuleDict({"actor": actor, "critic": critic, "critic_target": target}).to(device)
        self.actor, self.critic, self.critic_target = self.net["actor"], self.net["critic"], self.net["critic_target"]
        self.obs_norm = TaskRunningMeanStd(n_tasks, obs_dim - n_tasks).to(device)
        self.log_alpha = torch.full((n_tasks,), math.log(cfg.init_alpha), device=device, requires_grad=True)
        self.target_entropy = -float(action_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.actor_stabilizer, self.critic_stabilizer = stabilizer(self.actor), stabilizer(self.critic)
        self.steps_per_iteration = cfg.horizon
        self.env_steps, self.updates, self.learned = 0, 0, False
        self.window: NStepWindow | None = None
        self.buffer: ReplayBuffer | None = None

    @classmethod
    def build(cls, settings, network, obs_dim, action_dim, task_names, device, generator, scheme) -> SAC:
        """From `train.sac` and `network`; `network.init_log_std` is PPO's (SAC's log-std is an actor output)."""
        cfg = SACConfig.from_dict(settings)
        network = {k: v for k, v in network.items() if k != "init_log_std"}
        actor, critic = make_sac_networks(obs_dim, action_dim, task_names, **network)
        return cls(actor, critic, obs_dim, action_dim, len(task_names), cfg, device, generator, scheme)

    @classmethod
    def resolve_settings(cls, settings: dict, num_envs: int, machine: dict) -> dict:
        settings = super().resolve_settings(settings, num_envs, machine)
        missing = [k for k in ("gradient_steps_per_itr", "batch_size", "replay_buffer_size") if settings[k] is None]
        if missing:
            raise ValueError(f"train.sac.{missing[0]} is null and the train config's profile does not give it")
        if settings["replay_buffer_size"] < num_envs:
            size = settings["replay_buffer_size"]
            raise ValueError(f"train.sac.replay_buffer_size={size} holds less than one step of num_envs={num_envs}")
        return settings

    def parameter_counts(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
        actor, critic = count(self.actor), count(self.critic)
        return {"actor": actor, "critic": critic, "total": actor + critic}

    def describe(self) -> str:
        c = self.cfg
        n = self.window.envs.shape[0] if self.window is not None else "?"
        return (f"SAC: {n} envs x {c.horizon} step(s), {c.gradient_steps_per_itr} gradient steps of {c.batch_size}, "
                f"{c.nstep}-step returns, buffer {c.replay_buffer_size:,}")  # fmt: skip

    # -- acting ------------------------------------------------------------------------------------
    def normalize_obs(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        if not self.cfg.normalize_input:
            return obs
        k = self.obs_dim - self.n_tasks
        return torch.cat((self.obs_norm.normalize(obs[..., :k], task), obs[..., k:]), dim=-1)

    def _pi(self, obs_n: torch.Tensor, task: torch.Tensor, deterministic: bool = False):
        """Squashed action and its log-density for normalised observations."""
        mu, raw = self.actor(obs_n, task)
        # clamped, so that a fresh actor (raw output near 0) starts with std near 1 and explores; rl_games' tanh
        # rescaling of [-20, 2] would start it at the midpoint, std e^-9, a nearly deterministic policy
        log_std = raw.clamp(self.cfg.log_std_min, self.cfg.log_std_max)
        noise = None if deterministic else torch.randn(mu.shape, generator=self.gen, device=mu.device)
        return squashed_sample(mu, log_std, noise)

    @torch.no_grad()
    def policy(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        obs, task = obs.to(self.device), task.to(self.device)
        return self._pi(self.normalize_obs(obs, task), task, deterministic=True)[0]

    def plasticity_parts(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic}

    def probe(self, obs: torch.Tensor, task: torch.Tensor) -> None:
        """The actor on the probe states, the critics on those states with the actor's deterministic actions."""
        obs, task = obs.to(self.device), task.to(self.device)
        obs_n = self.normalize_obs(obs, task)
        action = self._pi(obs_n, task, deterministic=True)[0]
        self.critic(obs_n, action, task)

    def start(self, task: torch.Tensor) -> None:
        self.task = task.to(self.device)
        N = task.shape[0]
        self.window = NStepWindow(self.cfg.nstep, N, self.obs_dim, self.action_dim, self.cfg.gamma, self.device)
        self.buffer = ReplayBuffer(self.cfg.replay_buffer_size, self.obs_dim, self.action_dim, self.device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        self.last_obs = obs.to(self.device)
        if self.env_steps < self.cfg.num_warmup_steps:
            shape = (self.last_obs.shape[0], self.action_dim)
            action = torch.rand(shape, generator=self.gen, device=self.device) * 2.0 - 1.0
        else:
            action = self._pi(self.normalize_obs(self.last_obs, self.task), self.task)[0]
        self.last_action = action
        return action

    def observe(self, next_obs, reward, terminated, truncated, info) -> None:
        dev, k = self.device, self.obs_dim - self.n_tasks
        if self.cfg.normalize_input:
            self.obs_norm.update(self.last_obs[:, :k], self.task)
        out = self.window.push(
            self.last_obs, self.last_action, reward.to(dev), info["final_obs"].to(dev), terminated.to(dev),
            truncated.to(dev),
        )  # fmt: skip
        if out is not None:
            out["task"] = self.task
            self.buffer.add(out)
        self.env_steps += 1

    # -- learning ----------------------------------------------------------------------------------
    @property
    def learning(self) -> bool:
        return self.learned

    def update(self) -> dict[str, torch.Tensor]:
        """`gradient_steps_per_itr` updates once the buffer holds a batch (at the start, or after resuming without the
        buffer, not yet): `replay_updates`."""
        return replay_updates(self, self.buffer.size >= self.cfg.batch_size, METRICS)

    def critic_losses(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-task mean of 0.5 Σ_i (Q_i(s, a) - y)^2 over the twin critics, y the soft n-step target
        R + d (min_i Q'_i(s', a') - α_task log π(a'|s')), a' ~ π(s')."""
        task, n = b["task"], self.n_tasks
        obs, next_obs = self.normalize_obs(b["obs"], task), self.normalize_obs(b["next_obs"], task)
        with torch.no_grad():
            a2, logp2 = self._pi(next_obs, task)
            q2 = self.critic_target(next_obs, a2, task).min(0).values
            alpha = self.log_alpha.exp()[task]
            target = b["reward"] + b["discount"] * (q2 - alpha * logp2)
        with self.scheme.recording(self.critic, task, "critic"):
            q = self.critic(obs, b["action"], task)
            per_sample = 0.5 * (q - target).square().sum(0)
        return {"critic": per_task_mean(per_sample, task, n), "q": q.mean().detach(), "obs": obs, "target": target}

    def gradient_step(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Critic, then actor and temperatures on the critic just updated, then the target critics."""
        counts = task_counts(b["task"], self.n_tasks)
        c = self.critic_step(b, counts)
        a = self.actor_step(c["obs"], b["task"], counts)
        with torch.no_grad():
            target, online = list(self.critic_target.parameters()), list(self.critic.parameters())
            torch._foreach_lerp_(target, online, self.cfg.critic_tau)
        mean = lambda x: (x.detach() * counts).sum() / counts.sum()
        return {
            "loss/critic": mean(c["critic"]), "loss/actor": mean(a["actor"]), "loss/alpha": a["alpha_loss"],
            "alpha": self.log_alpha.detach().exp().mean(), "entropy": mean(a["entropy"]), "q": c["q"],
            "target": c["target"].mean(), "grad_norm/critic": c["grad_norm"], "grad_norm/actor": a["grad_norm"],
        }  # fmt: skip

    def critic_step(self, b: dict[str, torch.Tensor], counts: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step of the critics on their per-task losses through the MTRL scheme; gradients clipped after
        backward."""
        c = self.critic_losses(b)
        keep = self._keep(self.critic_stabilizer, c["critic"], counts)
        losses = c["critic"] if keep is None else torch.where(keep, c["critic"], 0.0)
        self.critic_opt.zero_grad(set_to_none=True)
        self.scheme.backward_part("critic", losses, counts, list(self.critic.parameters()))
        c["grad_norm"] = nn.utils.clip_grad_norm_(self.critic.parameters(), self.cfg.grad_norm).detach()
        self.critic_opt.step()
        if keep is not None:
            self.critic_stabilizer.reset_tasks(~keep, self.critic_opt, self.gen)
        if self.scheme.wants_losses_after_step and self.scheme.apply_to == "critic":  # FAMO's after_step form
            with torch.no_grad():
                q = self.critic(c["obs"], b["action"], b["task"])
                after = per_task_mean(0.5 * (q - c["target"]).square().sum(0), b["task"], self.n_tasks)
            self.scheme.after_step(after if keep is None else torch.where(keep, after, 0.0))
        return c

    def actor_step(self, obs: torch.Tensor, task: torch.Tensor, counts: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step of the actor on per-task means of α_task log π - min_i Q_i (the critics frozen for it), then
        of the temperatures: each task's α sees only its own samples and rises when their entropy is below the
        target."""
        n = self.n_tasks
        after_step = self.scheme.wants_losses_after_step and self.scheme.apply_to == "actor"
        noise = self.gen.get_state() if after_step else None  # FAMO's after_step form redraws the same actions
        with self.scheme.recording(self.actor, task, "actor"):
            losses, logp = self._actor_losses(obs, task)
        keep = self._keep(self.actor_stabilizer, losses, counts)
        if keep is not None:
            losses = torch.where(keep, losses, 0.0)
        self.actor_opt.zero_grad(set_to_none=True)
        self.scheme.backward_part("actor", losses, counts, list(self.actor.parameters()))
        grad_norm = nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.grad_norm).detach()
        self.actor_opt.step()
        if keep is not None:
            self.actor_stabilizer.reset_tasks(~keep, self.actor_opt, self.gen)
        if after_step:
            drawn = self.gen.get_state()
            self.gen.set_state(noise)
            with torch.no_grad():
                after = self._actor_losses(obs, task)[0]
            self.gen.set_state(drawn)
            self.scheme.after_step(after if keep is None else torch.where(keep, after, 0.0))

        entropy = per_task_mean(-logp.detach(), task, n)
        # each task's temperature follows its entropy over the big batch of a torchrun job (shares, summed)
        N = distributed.global_counts(counts)
        present = distributed.share((counts > 0).to(entropy.dtype), counts, N)  # one process: 1 where present
        alpha_loss = (self.log_alpha * (distributed.share(entropy, counts, N) - self.target_entropy * present)).sum()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        distributed.sum_grads([self.log_alpha])
        self.alpha_opt.step()
        return {"actor": losses, "entropy": entropy, "alpha_loss": alpha_loss.detach(), "grad_norm": grad_norm}

    def _actor_losses(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-task means of α_task log π - min_i Q_i with the critics frozen, log π (B,))."""
        action, logp = self._pi(obs, task)
        critic_params = list(self.critic.parameters())
        for p in critic_params:  # no weight gradients for the critics from the actor's loss
            p.requires_grad_(False)
        q = self.critic(obs, action, task).min(0).values
        for p in critic_params:
            p.requires_grad_(True)
        alpha = self.log_alpha.exp().detach()
        return per_task_mean(alpha[task] * logp - q, task, self.n_tasks), logp

    @staticmethod
    def _keep(net: nn.Module | None, losses: torch.Tensor, counts: torch.Tensor) -> torch.Tensor | None:
        """The tasks whose losses enter this step by the network's stabiliser (PaCo's mask-out); None: all."""
        return None if net is None else net.keep_tasks(losses, counts)

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, buffer: bool = False) -> dict:
        out = {
            "net": self.net.state_dict(), "obs_norm": self.obs_norm.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(), "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(), "alpha_opt": self.alpha_opt.state_dict(),
            "scheme": self.scheme.state_dict(), "env_steps": self.env_steps, "updates": self.updates,
        }  # fmt: skip
        if self.window is not None:
            out["window"] = self.window.state_dict()
        if buffer and self.buffer is not None:
            out["buffer"] = self.buffer.state_dict()
        return out

    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        self.net.load_state_dict(state["net"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if weights_only:
            return
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.scheme.load_state_dict(state["scheme"])
        self.env_steps, self.updates = state["env_steps"], state["updates"]
        if self.window is not None and "window" in state:
            self.window.load_state_dict(state["window"])
        if self.buffer is not None and "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])


METRICS = ("loss/critic", "loss/actor", "loss/alpha", "alpha", "entropy", "q", "target", "grad_norm/critic",
           "grad_norm/actor")  # fmt: skip


def _frozen_copy(module: nn.Module) -> nn.Module:
    import copy

    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target
