"""BRC, "Bigger, Regularized, Categorical" (paper 003, App. C and F): SAC without clipped double-Q whose critic is a
wide BroNet ensemble trained by cross-entropy on a categorical return distribution, with rewards scaled per task by
return normalisation and the tasks told apart by a learned, unit-norm embedding.

One gradient step, in the reference's order:
- critic: the target distribution is the two target critics' probabilities at (s', a' ~ π(s')) averaged (no
  clipped double-Q), moved to the atoms r̃ + d (z - α log π(a'|s')) clipped to the support and projected onto it as
  in C51 (`categorical_projection`); the loss is the cross-entropy of each critic against it, summed over critics,
  averaged per task (an (n_tasks,) vector for the MTRL scheme); it alone trains the task embedding;
- target critics (embedding table included) by Polyak averaging;
- actor: α log π - Q with Q the ensemble's mean atom under its averaged probabilities, on the critic just updated
  (frozen for it) and with the embedding as a constant;
- one temperature for all tasks: loss α (H - target entropy), H the batch's mean -log π (the reference's form).

Return normalisation (`ReturnScale`, App. C.2 Eq. 2-4): per task, Ḡ is the largest absolute discounted Monte-Carlo
return of any state of any finished episode; the sampled rewards of task i are multiplied by v_max / (Ḡ_i + λ_i),
λ_i the entropy correction, so that soft returns stay inside the support. The paper and the reference code differ
in two places and `return_norm` picks:
- `code` (the default; what produced the paper's numbers): a time-out bootstraps the episode's returns with its
  mean reward / (1 - γ), and λ = α |target entropy| / (2 (1 - γ)), the target entropy standing for the policy's;
- `paper`: a time-out bootstraps with the critic's value at the episode's last observation (in reward units),
  and λ_i = α H_i / (1 - γ) with H_i the policy's current entropy on task i (floored at 0: a negative entropy
  would shrink the denominator below the return it bounds). It costs a critic pass (and a host sync) per step
  with a time-out.
A task with no finished episode yet has no scale: its rewards count as 0 (the reference's infinite denominator).

Not in the paper, off by default: `normalize_input` feeds actor and critics each task's running mean/std-normalised
state, as SAC and PPO do here (the replay keeps raw states; each batch is normalised with the current statistics).
The short single-task reach test needs it: raw, a 5 cm offset is a small change of the BroNet's input (BENCHMARKS
"BRC").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn
from torch.nn import functional as F

from mtbench import distributed
from mtbench.algos.base import Algorithm, settings_from_dict
from mtbench.algos.common import TaskRunningMeanStd, per_task_mean, task_counts
from mtbench.algos.replay import NStepWindow, ReplayBuffer, replay_updates
from mtbench.algos.sac import _frozen_copy, squashed_sample
from mtbench.errors import UserError
from mtbench.mtrl import MeanScheme
from mtbench.nets.bronet import EMBEDDING_NORMS, BroNetActor, CategoricalCritic, bronet_parameters, expected_value
from mtbench.validation import NonNegFloat, NonNegInt, OpenUnitFloat, PosFloat, PosInt, Range

RETURN_NORMS = ("code", "paper")
FINETUNE = ("all", "embedding")
CRITIC_PRESETS = (256, 512, 1024, 2048, 4096, 8192)
"""The paper's critic sizes (App. D, Table 1): 2 blocks of these widths."""


@dataclass
class BRCConfig:
    """`train.brc.*`; the values live in mtbench/conf/train/brc*.yaml (the paper's App. F), not here."""

    horizon: PosInt  # vector steps per iteration
    gradient_steps_per_itr: PosInt  # the paper's UTD: 2 per parallel step
    batch_size: PosInt
    buffer_per_task: PosInt  # transitions per task; the ring holds buffer_per_task * n_tasks
    nstep: PosInt  # 1: the paper's one-step targets
    gamma: Annotated[float, Range(lo=0, hi=1, hi_open=True)]
    tau: OpenUnitFloat  # Polyak factor of the target critics, every gradient step
    actor_lr: PosFloat
    critic_lr: PosFloat
    alpha_lr: PosFloat
    alpha_beta1: Annotated[float, Range(lo=0, hi=1, hi_open=True)]  # the temperature's Adam beta1
    weight_decay: NonNegFloat  # AdamW, actor and critic
    init_alpha: PosFloat
    target_entropy: float | None  # None: -|A|/2
    log_std_min: float
    log_std_max: float
    grad_norm: PosFloat | None  # None: no clipping (the paper's)
    warmup_per_task: NonNegInt  # env steps per task of uniform random actions before acting and learning
    num_atoms: Annotated[int, Range(lo=2)]
    v_max: PosFloat  # the support is linspace(-v_max, v_max, num_atoms)
    return_norm: Literal[RETURN_NORMS]
    critic_width: PosInt
    critic_depth: NonNegInt  # residual blocks
    n_critics: PosInt
    actor_width: PosInt
    actor_depth: NonNegInt
    embedding_dim: PosInt
    embedding_norm: Literal[EMBEDDING_NORMS]
    normalize_input: bool  # per-task running mean/std of the state (not in the paper; SAC's and PPO's here)
    finetune: Literal[FINETUNE]  # all | embedding: every weight frozen but the task embedding (transfer)
    prefill: str | None  # a BRC checkpoint whose replay buffer seeds this single-task learner's (data transfer)

    @classmethod
    def from_dict(cls, d: dict) -> BRCConfig:
        cfg = settings_from_dict(cls, d, "brc")
        if cfg.log_std_min >= cfg.log_std_max:
            raise ValueError(f"train.brc.log_std_min={cfg.log_std_min} must be below log_std_max={cfg.log_std_max}")
        return cfg


def categorical_projection(atoms: torch.Tensor, probs: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """C51's projection (Bellemare et al. 2017, Alg. 1): the mass `probs` (B, K) sitting at positions `atoms` (B, K)
    moved onto the fixed, evenly spaced `support` (K,), each atom clipped to its ends and split between its two
    neighbours in proportion to closeness (all of it on one support atom when it falls exactly there)."""
    K = support.shape[0]
    lo, hi = support[0], support[-1]
    b = ((atoms.clamp(lo, hi) - lo) / ((hi - lo) / (K - 1))).clamp(0, K - 1)
    lower, upper = b.floor(), b.ceil()
    to_lower = probs * (upper - b + (lower == upper).to(probs.dtype))
    to_upper = probs * (b - lower)
    out = torch.zeros_like(probs)
    return out.scatter_add_(1, lower.long(), to_lower).scatter_add_(1, upper.long(), to_upper)


class ReturnScale:
    """Per task, the largest absolute discounted Monte-Carlo return Ḡ of any state of any finished episode
    (App. C.2 Eq. 2). Each env's rewards since its episode began sit in a trace; when the episode ends every state's
    return G_t = Σ_{k>=t} γ^(k-t) r_k + γ^(L-t) b (b the bootstrap of a time-out, 0 at a termination) is formed at
    once for all envs, without a Python loop or a host sync, and the task's maximum raised.

    The trace grows by doubling; the host keeps an upper bound on the longest running episode and reads the true
    length (one host sync) only when that bound reaches the capacity."""

    def __init__(self, task: torch.Tensor, n_tasks: int, gamma: float, capacity: int = 256):
        dev, N = task.device, task.shape[0]
        self.task, self.n_tasks, self.gamma = task, n_tasks, gamma
        self.trace = torch.zeros(N, capacity, dtype=torch.float64, device=dev)
        self.length = torch.zeros(N, dtype=torch.long, device=dev)
        self.g_max = torch.zeros(n_tasks, dtype=torch.float64, device=dev)
        self.seen = torch.zeros(n_tasks, dtype=torch.bool, device=dev)
        self.bound = 0  # host-side: no running episode is longer than this

    def _room(self) -> None:
        C = self.trace.shape[1]
        if self.bound < C:
            return
        self.bound = int(self.length.max())
        if self.bound >= C:
            grown = torch.zeros(self.trace.shape[0], 2 * C, dtype=self.trace.dtype, device=self.trace.device)
            grown[:, :C] = self.trace
            self.trace = grown

    def push(
        self, reward: torch.Tensor, terminated: torch.Tensor, ended: torch.Tensor, bootstrap: torch.Tensor | None
    ) -> None:
        """One vector step: its rewards (N,), which episodes terminated and which ended (terminated or timed out),
        and the value (N,) a time-out bootstraps with, in reward units; None: the episode's mean reward / (1 - γ)
        (the reference code's)."""
        self._room()
        envs = torch.arange(reward.shape[0], device=reward.device)
        self.trace[envs, self.length] = reward.to(torch.float64)
        self.length += 1
        self.bound += 1
        C = self.trace.shape[1]
        t = torch.arange(C, device=reward.device)
        powers = self.gamma ** t.to(torch.float64)  # γ^t
        tail = (self.trace * powers).flip(1).cumsum(1).flip(1)  # Σ_{k>=t} γ^k r_k
        steps_left = (self.length[:, None] - t).clamp_min(0).to(torch.float64)  # L - t
        if bootstrap is None:
            bootstrap = self.trace.sum(1) / self.length / (1.0 - self.gamma)
        boot = torch.where(terminated, 0.0, bootstrap.to(torch.float64))
        returns = tail / powers + boot[:, None] * self.gamma**steps_left
        valid = (t < self.length[:, None]) & ended[:, None]
        largest = torch.where(valid, returns.abs(), 0.0).amax(1)
        self.g_max.scatter_reduce_(0, self.task, largest, reduce="amax")
        self.seen |= torch.zeros_like(self.g_max).index_add_(0, self.task, ended.to(torch.float64)) > 0
        self.trace.masked_fill_(ended[:, None], 0.0)
        self.length.masked_fill_(ended, 0)

    def pool_over_ranks(self) -> None:
        """Every rank's maxima and seen flags combined (one all-reduce of the maximum; a torchrun job)."""
        both = distributed.all_reduce_(torch.cat((self.g_max, self.seen.to(torch.float64))), "max")
        self.g_max, self.seen = both[: self.n_tasks].clone(), both[self.n_tasks :] > 0

    def state_dict(self) -> dict:
        return {k: getattr(self, k).clone() for k in ("trace", "length", "g_max", "seen")} | {"bound": self.bound}

    def load_state_dict(self, state: dict) -> None:
        self.trace = state["trace"].clone().to(self.trace.device)
        for k in ("length", "g_max", "seen"):
            getattr(self, k).copy_(state[k])
        self.bound = state["bound"]


class Temperature(nn.Module):
    """α = exp(log α), one for all tasks; a module so that checkpoints and `pretrained=` carry it with the weights."""

    def __init__(self, init: float):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init)))


class BRC(Algorithm):
    """Acting with exploration, the replay, return normalisation and the critic / actor / temperature updates."""

    name = "brc"
    settings_class = BRCConfig
    split_settings = ("batch_size", "buffer_per_task", "warmup_per_task")
    rank_local_state = ("window", "returns", "buffer")
    resumable_settings = ("batch_size", "gradient_steps_per_itr", "grad_norm")
    health = ("loss/critic", "loss/actor")
    diverged_hint = "Try lower train.brc.critic_lr / actor_lr or a smaller train.brc.tau."

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        cfg: BRCConfig,
        device: torch.device,
        generator: torch.Generator,
        scheme: MeanScheme | None = None,
    ):
        self.cfg, self.device, self.gen = cfg, device, generator
        self.obs_dim, self.action_dim, self.n_tasks = obs_dim, action_dim, n_tasks
        self.state_dim = obs_dim - n_tasks  # the one-hot tail is dropped: the embedding tells the tasks apart
        self.scheme = scheme or MeanScheme()
        actor, critic = make_brc_networks(self.state_dim, action_dim, n_tasks, cfg)
        self.net = nn.ModuleDict({
            "actor": actor, "critic": critic, "critic_target": _frozen_copy(critic),
            "temperature": Temperature(cfg.init_alpha),
        }).to(device)  # fmt: skip
        self.actor, self.critic, self.critic_target = self.net["actor"], self.net["critic"], self.net["critic_target"]
        self.log_alpha = self.net["temperature"].log_alpha
        self.obs_norm = TaskRunningMeanStd(n_tasks, self.state_dim).to(device)  # not a weight: outside `net`
        self.support = torch.linspace(-cfg.v_max, cfg.v_max, cfg.num_atoms, device=device)
        self.target_entropy = -action_dim / 2.0 if cfg.target_entropy is None else float(cfg.target_entropy)
        self.task_entropy = torch.zeros(n_tasks, device=device)  # the `paper` normalisation's H_i
        self.tune_all = cfg.finetune == "all"
        if not self.tune_all:  # embedding-only transfer: the table is the one trainable tensor
            for p in self.net.parameters():
                p.requires_grad_(False)
            self.critic.embedding.table.weight.requires_grad_(True)
        self.trainable = {k: [p for p in self.net[k].parameters() if p.requires_grad] for k in ("actor", "critic")}
        # fused: one kernel for all tensors (10-14 % off a 256-wide step of batch 256 on 2 CPU cores, BENCHMARKS "BRC")
        adamw = lambda k, lr: torch.optim.AdamW(self.trainable[k], lr=lr, weight_decay=cfg.weight_decay, fused=True)  # noqa: E731
        self.critic_opt = adamw("critic", cfg.critic_lr)
        self.actor_opt = adamw("actor", cfg.actor_lr) if self.tune_all else None
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999))
        self.steps_per_iteration = cfg.horizon
        self.env_steps, self.updates, self.learned, self.warmup_steps = 0, 0, False, 0
        self.window: NStepWindow | None = None
        self.buffer: ReplayBuffer | None = None
        self.returns: ReturnScale | None = None

    @classmethod
    def build(cls, settings, network, obs_dim, action_dim, task_names, device, generator, scheme) -> BRC:
        """From `train.brc`; BRC builds its own networks (BroNet, task embedding) from `train.brc`, so a `network`
        section that sets anything is refused rather than silently ignored."""
        given = [f"network.{k}" for k, v in network.items() if k != "name" and v is not None]
        if network.get("name") != "mlp" or given:
            what = f"network={network.get('name')}" if network.get("name") != "mlp" else ", ".join(given)
            raise ValueError(f"train=brc builds its own BroNet networks from train.brc (critic_width, actor_width, "
                             f"...); drop {what}")  # fmt: skip
        cfg = BRCConfig.from_dict(settings)
        if cfg.prefill is not None and len(task_names) != 1:
            raise ValueError(f"train.brc.prefill seeds a single-task learner (data transfer); this run has "
                             f"{len(task_names)} tasks")  # fmt: skip
        return cls(obs_dim, action_dim, len(task_names), cfg, device, generator, scheme)

    @classmethod
    def resolve_settings(cls, settings: dict, num_envs: int, machine: dict) -> dict:
        settings = super().resolve_settings(settings, num_envs, machine)
        missing = [k for k, v in settings.items() if v is None and k not in ("target_entropy", "grad_norm", "prefill")]
        if missing:
            raise ValueError(f"train.brc.{missing[0]} is null and the train config's profile does not give it")
        return settings

    @classmethod
    def check_env(cls, settings: dict, env: dict) -> None:
        if env.get("onehot") == "terrains":
            raise ValueError(
                "train=brc drops the last n_tasks observation columns (the one-hot): pass parkour.onehot=tasks"
            )

    def parameter_counts(self) -> dict[str, int]:
        actor, critic = (sum(p.numel() for p in self.trainable[k]) for k in ("actor", "critic"))
        return {"actor": actor, "critic": critic, "total": actor + critic}

    @property
    def network_label(self) -> str:
        """What `mtbench params` calls the networks (BRC ignores the `network` section)."""
        c = self.cfg
        return f"bronet (critic {c.n_critics} x {c.critic_width} wide, {c.critic_depth} blocks; actor {c.actor_width})"

    def preset_counts(self) -> dict[str, dict[str, int]]:
        """Parameter counts at each of the paper's critic widths (the rest of the settings as configured), built on
        the meta device so that the 8192-wide ensemble costs no memory."""
        out = {}
        for width in CRITIC_PRESETS:
            cfg = BRCConfig(**{**vars(self.cfg), "critic_width": width})
            with torch.device("meta"):
                actor, critic = make_brc_networks(self.state_dim, self.action_dim, self.n_tasks, cfg)
            a, c = (sum(p.numel() for p in m.parameters()) for m in (actor, critic))
            out[f"critic_width={width}"] = {"actor": a, "critic": c, "total": a + c}
        return out

    def describe(self) -> str:
        c = self.cfg
        n = self.task.shape[0] if self.window is not None else "?"
        return (f"BRC: {n} envs x {c.horizon} step(s), {c.gradient_steps_per_itr} gradient steps of {c.batch_size}, "
                f"critic {c.n_critics} x BroNet {c.critic_width} x {c.critic_depth} blocks, {c.num_atoms} atoms, "
                f"return normalisation '{c.return_norm}', buffer {c.buffer_per_task:,} per task"
                + ("; states normalised per task" if c.normalize_input else "")
                + ("; only the task embedding trains" if not self.tune_all else "")
                + (f"; buffer seeded from {c.prefill}" if c.prefill else ""))  # fmt: skip

    # -- acting ------------------------------------------------------------------------------------
    def _norm(self, state: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The state as the networks read it: normalised per task with `normalize_input`, else raw (the paper's)."""
        return self.obs_norm.normalize(state, task) if self.cfg.normalize_input else state

    def _pi(self, state: torch.Tensor, embedding: torch.Tensor, deterministic: bool = False):
        """Squashed action and its log-density for a network-ready (`_norm`) state."""
        mu, log_std = self.actor(state, embedding)
        noise = None if deterministic else torch.randn(mu.shape, generator=self.gen, device=mu.device)
        return squashed_sample(mu, log_std, noise)

    @torch.no_grad()
    def policy(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        obs, task = obs.to(self.device), task.to(self.device)
        return self._pi(self._norm(obs[:, : self.state_dim], task), self.critic.embed(task), deterministic=True)[0]

    def start(self, task: torch.Tensor) -> None:
        self.task = task.to(self.device)
        N, c = task.shape[0], self.cfg
        self.window = NStepWindow(c.nstep, N, self.state_dim, self.action_dim, c.gamma, self.device)
        self.buffer = ReplayBuffer(c.buffer_per_task * self.n_tasks, self.state_dim, self.action_dim, self.device)
        self.returns = ReturnScale(self.task, self.n_tasks, c.gamma)
        fewest = int(task_counts(self.task, self.n_tasks).min())  # envs of the least-served task
        self.warmup_steps = math.ceil(c.warmup_per_task / max(fewest, 1))
        if c.prefill is not None:
            self._prefill(c.prefill)

    def _prefill(self, path: str) -> None:
        """Data transfer: the buffer starts with a uniform sample (as many as it holds) of a BRC checkpoint's
        replay buffer, every transition relabelled as this learner's one task."""
        from mtbench.checkpoint import load_checkpoint_file

        ckpt = load_checkpoint_file(path, "train.brc.prefill")
        saved = ckpt["agent"].get("buffer")
        if ckpt["config"]["train"]["algo"] != "brc" or saved is None:
            raise UserError(f"train.brc.prefill={path} holds no BRC replay buffer: pretrain with save_buffer=True")
        if "ranks" in ckpt:  # a torchrun checkpoint: every rank's buffer, rank 0's being the top-level one
            parts = [r["agent"]["buffer"] for r in ckpt["ranks"]]
            saved = {"size": sum(b["size"] for b in parts)} | {
                k: torch.cat([b[k][: b["size"]] for b in parts]) for k in ReplayBuffer.FIELDS
            }
        n = min(saved["size"], self.buffer.capacity)
        pick = torch.randperm(saved["size"], generator=self.gen, device=self.device)[:n].cpu()
        batch = {k: saved[k][pick].to(self.device) for k in ReplayBuffer.FIELDS}
        batch["task"] = torch.zeros_like(batch["task"])
        self.buffer.add(batch)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        self.last_state = obs.to(self.device)[:, : self.state_dim]
        if self.env_steps < self.warmup_steps:
            shape = (self.last_state.shape[0], self.action_dim)
            action = torch.rand(shape, generator=self.gen, device=self.device) * 2.0 - 1.0
        else:
            action = self._pi(self._norm(self.last_state, self.task), self.critic.embed(self.task))[0]
        self.last_action = action
        return action

    def observe(self, next_obs, reward, terminated, truncated, info) -> None:
        dev = self.device
        reward, terminated, truncated = reward.to(dev), terminated.to(dev), truncated.to(dev)
        final = info["final_obs"].to(dev)[:, : self.state_dim]
        ended = terminated | truncated
        if self.cfg.normalize_input:
            self.obs_norm.update(self.last_state, self.task)
        paper = self.cfg.return_norm == "paper"
        bootstrap = self._value_at_timeouts(final, truncated & ~terminated) if paper else None
        self.returns.push(reward, terminated, ended, bootstrap)
        if distributed.world_size() > 1:  # every rank scales a task's rewards by the largest return any rank saw
            self.returns.pool_over_ranks()
        out = self.window.push(self.last_state, self.last_action, reward, final, terminated, truncated)
        if out is not None:
            out["task"] = self.task
            self.buffer.add(out)
        self.env_steps += 1

    @torch.no_grad()
    def _value_at_timeouts(self, final: torch.Tensor, timeout: torch.Tensor) -> torch.Tensor:
        """The paper's bootstrap: the critic's value at the last observation of each timed-out episode, in reward
        units (v_max maps to Ḡ + λ); 0 for a task not yet scaled. One host sync to pick the envs."""
        values = torch.zeros(final.shape[0], device=final.device)
        envs = timeout.nonzero().squeeze(1)
        if envs.numel() == 0:
            return values
        task = self.task[envs]
        state = self._norm(final[envs], task)
        action = self._pi(state, self.critic.embed(task))[0]
        q = expected_value(self.critic(state, action, task), self.support)
        scale = self.reward_scale()[task]
        values[envs] = torch.where(scale > 0, q / scale.clamp_min(1e-12), 0.0)
        return values

    # -- return normalisation ----------------------------------------------------------------------
    def entropy_correction(self) -> torch.Tensor:
        """λ_i (n_tasks,): the largest return the entropy bonus adds, by `return_norm` (module docstring)."""
        alpha, horizon = self.log_alpha.detach().exp(), 1.0 / (1.0 - self.cfg.gamma)
        if self.cfg.return_norm == "code":
            lam = alpha * horizon * (-self.target_entropy) / 2.0 * torch.ones(self.n_tasks, device=self.device)
        else:
            lam = alpha * horizon * self.task_entropy
        return lam.clamp_min(0.0)

    def reward_scale(self) -> torch.Tensor:
        """v_max / (Ḡ_i + λ_i) per task (n_tasks,); 0 for a task with no finished episode yet."""
        denominator = self.returns.g_max.to(torch.float32) + self.entropy_correction()
        ok = self.returns.seen & (denominator > 0)
        return torch.where(ok, self.cfg.v_max / denominator.clamp_min(1e-12), 0.0)

    # -- learning ----------------------------------------------------------------------------------
    @property
    def learning(self) -> bool:
        return self.learned

    def update(self) -> dict[str, torch.Tensor]:
        """`gradient_steps_per_itr` updates once the warm-up is over and the buffer holds a batch: `replay_updates`."""
        ready = self.env_steps >= self.warmup_steps and self.buffer.size >= self.cfg.batch_size
        return replay_updates(self, ready, METRICS)

    def critic_losses(self, b: dict[str, torch.Tensor], scale: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-task mean of Σ_critics cross-entropy(critic logits, projected target distribution)."""
        task, alpha = b["task"], self.log_alpha.detach().exp()
        with torch.no_grad():
            next_state = self._norm(b["next_obs"], task)
            next_action, next_logp = self._pi(next_state, self.critic.embed(task))
            probs = F.softmax(self.critic_target(next_state, next_action, task), dim=-1).mean(0)
            reward = b["reward"] * scale[task]
            atoms = reward[:, None] + b["discount"][:, None] * (self.support - alpha * next_logp[:, None])
            target = categorical_projection(atoms, probs, self.support)
        with self.scheme.recording(self.critic, task, "critic"):
            losses, logits = self._cross_entropy(b, target)
        return {
            "critic": losses, "q": expected_value(logits.detach(), self.support), "target": target @ self.support,
            "target_probs": target, "reward": reward,
        }  # fmt: skip

    def _cross_entropy(self, b: dict[str, torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-task means of Σ_critics cross-entropy(critic(s, a), target) (n_tasks,), the logits)."""
        logits = self.critic(self._norm(b["obs"], b["task"]), b["action"], b["task"])
        per_sample = -(target * F.log_softmax(logits, dim=-1)).sum(-1).sum(0)
        return per_task_mean(per_sample, b["task"], self.n_tasks), logits

    def gradient_step(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Critic, target critics, then actor and temperature on the critic just updated (the reference's order)."""
        counts = task_counts(b["task"], self.n_tasks)
        scale = self.reward_scale()
        c = self.critic_step(b, scale, counts)
        with torch.no_grad():
            if self.tune_all:
                target, online = list(self.critic_target.parameters()), list(self.critic.parameters())
                torch._foreach_lerp_(target, online, self.cfg.tau)
            else:  # the frozen weights stay as pretrained, online and target alike
                self.critic_target.embedding.table.weight.lerp_(self.critic.embedding.table.weight, self.cfg.tau)
        a = self.actor_step(self._norm(b["obs"], b["task"]), b["task"], counts)
        mean = lambda x: (x.detach() * counts).sum() / counts.sum()
        return {
            "loss/critic": mean(c["critic"]), "loss/actor": mean(a["actor"]), "loss/alpha": a["alpha_loss"],
            "alpha": self.log_alpha.detach().exp(), "entropy": a["entropy"], "q": c["q"].mean(),
            "target": c["target"].mean(), "reward_scaled": c["reward"].mean(), "return_scale": scale.mean(),
            "grad_norm/critic": c["grad_norm"], "grad_norm/actor": a["grad_norm"],
        }  # fmt: skip

    def _clip(self, params: list[nn.Parameter]) -> torch.Tensor:
        """The gradient norm, clipped to `grad_norm` when set (after backward)."""
        return nn.utils.clip_grad_norm_(params, self.cfg.grad_norm or math.inf).detach()

    def critic_step(self, b: dict[str, torch.Tensor], scale: torch.Tensor, counts: torch.Tensor) -> dict:
        c = self.critic_losses(b, scale)
        params = self.trainable["critic"]
        self.critic_opt.zero_grad(set_to_none=True)
        self.scheme.backward_part("critic", c["critic"], counts, params)
        c["grad_norm"] = self._clip(params)
        self.critic_opt.step()
        if self.scheme.wants_losses_after_step and self.scheme.apply_to == "critic":  # FAMO's after_step form
            with torch.no_grad():
                self.scheme.after_step(self._cross_entropy(b, c["target_probs"])[0])
        return c

    def actor_step(self, state: torch.Tensor, task: torch.Tensor, counts: torch.Tensor) -> dict:
        """Per-task means of α log π - Q (critic and embedding frozen for it), then the temperature; with
        `finetune=embedding` the losses only, for the log."""
        if not self.tune_all:
            with torch.no_grad():
                losses, logp = self._actor_losses(state, task)
            entropy, nan = -logp.mean(), torch.tensor(float("nan"), device=self.device)
            return {"actor": losses, "entropy": entropy, "alpha_loss": nan, "grad_norm": nan}
        after_step = self.scheme.wants_losses_after_step and self.scheme.apply_to == "actor"
        noise = self.gen.get_state() if after_step else None  # FAMO's after_step form redraws the same actions
        with self.scheme.recording(self.actor, task, "actor"):
            losses, logp = self._actor_losses(state, task)
        params = self.trainable["actor"]
        self.actor_opt.zero_grad(set_to_none=True)
        self.scheme.backward_part("actor", losses, counts, params)
        grad_norm = self._clip(params)
        self.actor_opt.step()
        if after_step:
            drawn = self.gen.get_state()
            self.gen.set_state(noise)
            with torch.no_grad():
                self.scheme.after_step(self._actor_losses(state, task)[0])
            self.gen.set_state(drawn)

        # the big batch's entropies in a torchrun job (equal on every rank, so is the temperature's gradient)
        entropy = distributed.mean_over_ranks(-logp.detach().mean())
        N = distributed.global_counts(counts)
        per_task = distributed.pooled(distributed.share(per_task_mean(-logp.detach(), task, self.n_tasks), counts, N))
        self.task_entropy = torch.where(N > 0, per_task, self.task_entropy)
        alpha_loss = self.log_alpha.exp() * (entropy - self.target_entropy)
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        return {"actor": losses, "entropy": entropy, "alpha_loss": alpha_loss.detach(), "grad_norm": grad_norm}

    def _actor_losses(self, state: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-task means of α log π - Q with the critic and the embedding frozen, log π (B,))."""
        action, logp = self._pi(state, self.critic.embed(task).detach())
        critic_params = self.trainable["critic"]
        for p in critic_params:  # no weight (or embedding) gradients from the actor's loss
            p.requires_grad_(False)
        q = expected_value(self.critic(state, action, task), self.support)
        for p in critic_params:
            p.requires_grad_(True)
        alpha = self.log_alpha.detach().exp()
        return per_task_mean(alpha * logp - q, task, self.n_tasks), logp

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, buffer: bool = False) -> dict:
        out = {
            "net": self.net.state_dict(), "obs_norm": self.obs_norm.state_dict(),
            "task_entropy": self.task_entropy.clone(),
            "actor_opt": self.actor_opt.state_dict() if self.actor_opt is not None else None,
            "critic_opt": self.critic_opt.state_dict(), "alpha_opt": self.alpha_opt.state_dict(),
            "scheme": self.scheme.state_dict(), "env_steps": self.env_steps, "updates": self.updates,
        }  # fmt: skip
        if self.window is not None:
            out["window"], out["returns"] = self.window.state_dict(), self.returns.state_dict()
        if buffer and self.buffer is not None:
            out["buffer"] = self.buffer.state_dict()
        return out

    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        self.net.load_state_dict(state["net"])
        if "obs_norm" in state:  # absent from checkpoints older than `normalize_input`, which ran without it
            self.obs_norm.load_state_dict(state["obs_norm"])
        self.task_entropy.copy_(state["task_entropy"])
        if weights_only:
            return
        if self.actor_opt is not None:
            self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.scheme.load_state_dict(state["scheme"])
        self.env_steps, self.updates = state["env_steps"], state["updates"]
        if self.window is not None and "window" in state:
            self.window.load_state_dict(state["window"])
            self.returns.load_state_dict(state["returns"])
        if self.buffer is not None and "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])


def make_brc_networks(state_dim: int, action_dim: int, n_tasks: int, cfg: BRCConfig) -> tuple[nn.Module, nn.Module]:
    """(actor, critic): the BroNet tanh-Gaussian actor and the categorical BroNet ensemble with the task embedding."""
    actor = BroNetActor(state_dim, action_dim, cfg.embedding_dim, cfg.actor_width, cfg.actor_depth,
                        cfg.log_std_min, cfg.log_std_max)  # fmt: skip
    critic = CategoricalCritic(state_dim, action_dim, n_tasks, cfg.critic_width, cfg.critic_depth, cfg.n_critics,
                               cfg.num_atoms, cfg.embedding_dim, cfg.embedding_norm)  # fmt: skip
    return actor, critic


def critic_parameters(state_dim: int, action_dim: int, n_tasks: int, cfg: BRCConfig) -> int:
    """The critic's parameters in closed form: the members' BroNets and the embedding table."""
    per_member = bronet_parameters(state_dim + action_dim + cfg.embedding_dim, cfg.critic_width, cfg.critic_depth,
                                   cfg.num_atoms)  # fmt: skip
    return cfg.n_critics * per_member + n_tasks * cfg.embedding_dim


METRICS = ("loss/critic", "loss/actor", "loss/alpha", "alpha", "entropy", "q", "target", "reward_scaled",
           "return_scale", "grad_norm/critic", "grad_norm/actor")  # fmt: skip
