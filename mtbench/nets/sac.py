"""The SAC forms of every network: a tanh-Gaussian actor with a state-dependent log-std and an ensemble of Q(s, a).

Each kind reuses the body of its PPO form (the same settings keys, minus `init_log_std`: the log-std is an
output here). The actor is that body with 2·action_dim outputs, split into the pre-tanh mean and the raw log-std
(the algorithm clamps it). Each Q is that body with one output, built for obs_dim + action_dim inputs and fed
[state, action, one-hot]: the action goes BEFORE the one-hot, so bodies that read the task from the tail (CARE,
MOORE, PaCo, Soft-Mod) see it where they expect it, and their state encoders read state and action together.
Actor and critics share nothing, as in upstream MT-SAC and paper 002.

The critics are evaluated in a Python loop: stacking their parameters for `torch.func.vmap` would copy every
critic weight on each call, and batching them natively would mean rewriting every body with an ensemble axis.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from mtbench.nets.care import DEFAULT_METADATA, CAREBody, load_task_embeddings
from mtbench.nets.mlp import mlp
from mtbench.nets.moore import MOOREBody
from mtbench.nets.multihead import TaskHeads
from mtbench.nets.paco import CompositionalLinear, PaCoActorCritic
from mtbench.nets.soft_modularization import SoftModularNet


class TaskFree(nn.Module):
    """A plain MLP behind the (x, task) call of the task-aware bodies; the task reaches it through the one-hot."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiHeadBody(nn.Module):
    """An MLP trunk over the input with its one-hot, then the sample's own task head (MTBench multihead)."""

    def __init__(self, in_dim: int, out_dim: int, n_tasks: int, units: tuple[int, ...], activation: str):
        super().__init__()
        self.trunk = mlp(in_dim, list(units), None, activation)
        self.heads = TaskHeads(n_tasks, units[-1], out_dim)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.heads(self.trunk(x), task)


class PaCoNet(nn.Module):
    """One PaCo network with its own compositional vectors: `num_layers` CompositionalLinear layers (width D,
    ReLU) over the input without its one-hot, then a compositional head; the task enters only through w, as in
    PaCoActorCritic, whose w-reset it borrows (with `compositional_vectors`, it reads only `task_encoder`
    and `n_tasks`)."""

    compositional_vectors = PaCoActorCritic.compositional_vectors
    w_reset = PaCoActorCritic.w_reset

    def __init__(self, in_dim: int, out_dim: int, n_tasks: int, K: int, D: int, num_layers: int):
        super().__init__()
        self.n_tasks, self.K = n_tasks, K
        self.state_dim = in_dim - n_tasks
        self.task_encoder = nn.Embedding(n_tasks, K)
        nn.init.orthogonal_(self.task_encoder.weight)
        dims = [self.state_dim] + [D] * num_layers
        self.trunk = nn.ModuleList(CompositionalLinear(a, b, K, gain=math.sqrt(2.0)) for a, b in zip(dims, dims[1:]))
        self.head = CompositionalLinear(D, out_dim, K, gain=1.0)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        w = self.compositional_vectors()[task]
        h = x[:, : self.state_dim]
        for layer in self.trunk:
            h = F.relu(layer(h, w))
        return self.head(h, w)


class GaussianActor(nn.Module):
    """`actor(obs, task) -> (mu, log_std)`, both (B, action_dim): the pre-tanh mean and the raw log-std."""

    def __init__(self, body: nn.Module, action_dim: int):
        super().__init__()
        self.body = body
        self.action_dim = action_dim

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.body(obs, task).split(self.action_dim, dim=-1)
        return mu, log_std


class QEnsemble(nn.Module):
    """`critic(obs, action, task) -> (n_critics, B)`: independent Q bodies over [state, action, one-hot]."""

    def __init__(self, qs: list[nn.Module], n_tasks: int):
        super().__init__()
        self.qs = nn.ModuleList(qs)
        self.n_tasks = n_tasks

    def q_input(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The action slotted in before the one-hot tail, which the task-aware bodies parse."""
        return torch.cat([obs[:, : -self.n_tasks], action, obs[:, -self.n_tasks :]], dim=-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        x = self.q_input(obs, action)
        return torch.stack([q(x, task).squeeze(-1) for q in self.qs])


class PaCoHooks:
    """PaCo's loss mask-out and w-reset for a SAC actor or critic, with the learner's hooks of PaCoActorCritic
    (`loss_threshold`, `loss_mask`, `w_reset`, and `keep_tasks` / `reset_tasks`, see `mtbench.nets.stabilizer`).
    Every PaCo net inside (the actor's one, each Q's own) has its own w; a reset resets them all, each with its
    own draws, and clears the optimiser's moments of every reset row."""

    loss_threshold: float | None
    loss_mask = staticmethod(PaCoActorCritic.loss_mask)

    def paco_nets(self) -> list[PaCoNet]:
        raise NotImplementedError

    def task_logits(self) -> list[nn.Parameter]:
        """The logit tables (n_tasks, K), one per PaCo net."""
        return [net.task_encoder.weight for net in self.paco_nets()]

    def keep_tasks(self, task_losses: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """(n_tasks,) bool: False for tasks whose loss exceeds `loss_threshold` or is not finite; absent tasks
        (count 0) are kept."""
        return self.loss_mask(task_losses, self.loss_threshold).bool() | (counts == 0)

    @torch.no_grad()
    def w_reset(self, failing: torch.Tensor, generator: torch.Generator) -> None:
        for net in self.paco_nets():
            net.w_reset(failing, generator)

    @torch.no_grad()
    def reset_tasks(self, failing: torch.Tensor, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        self.w_reset(failing, generator)
        for logits in self.task_logits():
            state = optimizer.state.get(logits, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key].masked_fill_(failing.to(logits.device)[:, None], 0.0)


class PaCoActor(PaCoHooks, GaussianActor):
    def __init__(self, body: PaCoNet, action_dim: int, loss_threshold: float | None):
        super().__init__(body, action_dim)
        self.loss_threshold = loss_threshold

    @property
    def task_encoder(self) -> nn.Embedding:
        return self.body.task_encoder

    def paco_nets(self) -> list[PaCoNet]:
        return [self.body]


class PaCoCritic(PaCoHooks, QEnsemble):
    def __init__(self, qs: list[PaCoNet], n_tasks: int, loss_threshold: float | None):
        super().__init__(qs, n_tasks)
        self.loss_threshold = loss_threshold

    def paco_nets(self) -> list[PaCoNet]:
        return list(self.qs)


# ---------------------------------------------------------------- one builder per network kind
# Each takes (obs_dim, action_dim, task_names, n_critics) and that kind's settings, with the PPO form's keys and
# defaults (Table 3); mlp and multihead take every size from the config (network/*.yaml, by_algo.sac).

Nets = tuple[nn.Module, nn.Module]


def _mlp(
    obs_dim: int,
    action_dim: int,
    task_names: list[str],
    n_critics: int,
    *,
    actor_units: tuple[int, ...],
    critic_units: tuple[int, ...],
    activation: str,
) -> Nets:
    n = len(task_names)
    actor = GaussianActor(TaskFree(mlp(obs_dim, list(actor_units), 2 * action_dim, activation)), action_dim)
    qs = [TaskFree(mlp(obs_dim + action_dim, list(critic_units), 1, activation)) for _ in range(n_critics)]
    return actor, QEnsemble(qs, n)


def _multihead(
    obs_dim: int,
    action_dim: int,
    task_names: list[str],
    n_critics: int,
    *,
    actor_units: tuple[int, ...],
    critic_units: tuple[int, ...],
    activation: str,
) -> Nets:
    n = len(task_names)
    actor = GaussianActor(MultiHeadBody(obs_dim, 2 * action_dim, n, tuple(actor_units), activation), action_dim)
    qs = [MultiHeadBody(obs_dim + action_dim, 1, n, tuple(critic_units), activation) for _ in range(n_critics)]
    return actor, QEnsemble(qs, n)


def _pair(body: Callable[[int, int], nn.Module], obs_dim: int, action_dim: int, n_tasks: int, n_critics: int) -> Nets:
    """The actor as `body(obs_dim, 2A)` and each Q as `body(obs_dim + A, 1)`, for bodies built the same way for both
    (`body(in_dim, out_dim)`); built in that order, so the initialisation is the same as spelling it out."""
    actor = GaussianActor(body(obs_dim, 2 * action_dim), action_dim)
    return actor, QEnsemble([body(obs_dim + action_dim, 1) for _ in range(n_critics)], n_tasks)


def _care(
    obs_dim: int,
    action_dim: int,
    task_names: list[str],
    n_critics: int,
    *,
    metadata: str | None = None,
    units: tuple[int, ...] = (400, 400, 400),
    n_experts: int = 6,
    encoder_units: tuple[int, ...] = (50, 50),
    temperature: float = 1.0,
    attention_units: tuple[int, ...] = (50, 50),
    context_units: tuple[int, ...] = (50, 50),
    multihead: bool = False,
) -> Nets:
    if context_units[-1] != encoder_units[-1]:
        raise ValueError(f"CARE's context ({context_units[-1]}) and encoders ({encoder_units[-1]}) must end equal")
    n = len(task_names)
    embedding = load_task_embeddings(DEFAULT_METADATA if metadata is None else metadata, list(task_names))
    body = dict(
        n_tasks=n,
        embedding=embedding,
        units=tuple(units),
        n_experts=n_experts,
        encoder_units=tuple(encoder_units),
        temperature=float(temperature),
        attention_units=tuple(attention_units),
        context_units=tuple(context_units),
        multihead=multihead,
    )
    return _pair(lambda i, o: CAREBody(i, o, **body), obs_dim, action_dim, n, n_critics)


def _moore(
    obs_dim: int,
    action_dim: int,
    task_names: list[str],
    n_critics: int,
    *,
    n_experts: int | None = None,
    num_layers: int = 3,
    hidden_dim: int = 400,
    task_encoder_units: tuple[int, ...] = (256,),
    multihead: bool = False,
    agg_activation: str = "tanh",
) -> Nets:
    n = len(task_names)
    if n_experts is None:
        n_experts = 4 if n <= 10 else 6  # as MOOREActorCritic: the paper's MT10 / MT50 values
    if n_experts > hidden_dim:
        raise ValueError(f"{n_experts} experts cannot be orthonormal in {hidden_dim} dimensions")
    body = dict(
        n_tasks=n,
        n_experts=n_experts,
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        task_encoder_units=tuple(task_encoder_units),
        multihead=multihead,
        agg_activation=agg_activation,
    )
    return _pair(lambda i, o: MOOREBody(i, o, **body), obs_dim, action_dim, n, n_critics)


def _paco(
    obs_dim: int,
    action_dim: int,
    task_names: list[str],
    n_critics: int,
    *,
    K: int | None = None,
    D: int = 400,
    num_layers: int = 3,
    loss_threshold: float | None = 100.0,
) -> Nets:
    n = len(task_names)
    if K is None:
        K = 5 if n <= 10 else 20  # as PaCoActorCritic: MTBench Table 3, MT10 / MT50
    actor = PaCoActor(PaCoNet(obs_dim, 2 * action_dim, n, K, D, num_layers), action_dim, loss_threshold)
    qs = [PaCoNet(obs_dim + action_dim, 1, n, K, D, num_layers) for _ in range(n_critics)]
    return actor, PaCoCritic(qs, n, loss_threshold)


def _soft_modularization(
    obs_dim: int,
    action_dim: int,
    task_names: list[str],
    n_critics: int,
    *,
    num_experts: int = 2,
    num_layers: int = 4,
    D: int = 256,
    state_units: tuple[int, ...] = (256, 256),
    task_units: tuple[int, ...] = (256,),
) -> Nets:
    n = len(task_names)
    body = dict(
        n_tasks=n,
        num_experts=num_experts,
        num_layers=num_layers,
        D=D,
        state_units=tuple(state_units),
        task_units=tuple(task_units),
    )
    # this body takes the input size without the one-hot
    return _pair(lambda i, o: SoftModularNet(i - n, out_dim=o, **body), obs_dim, action_dim, n, n_critics)


SAC_NETWORKS: dict[str, Callable[..., Nets]] = {
    "mlp": _mlp,
    "multihead": _multihead,
    "care": _care,
    "moore": _moore,
    "paco": _paco,
    "soft_modularization": _soft_modularization,
}


def sac_settings(name: str) -> list[str]:
    """The settings network `name` takes in its SAC form."""
    params = inspect.signature(SAC_NETWORKS[name]).parameters.values()
    return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make_sac_networks(
    obs_dim: int, action_dim: int, task_names: list[str], name: str = "mlp", n_critics: int = 2, **settings
) -> tuple[nn.Module, nn.Module]:
    """(actor, critic) for network `name`: `actor(obs, task) -> (mu, log_std)` and
    `critic(obs, action, task) -> (n_critics, B)`. `settings` are the PPO form's keys without `init_log_std`;
    an unknown key is an error rather than silently ignored."""
    if name not in SAC_NETWORKS:
        raise ValueError(f"unknown network {name!r}; available: {', '.join(sorted(SAC_NETWORKS))}")
    valid = sac_settings(name)
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(f"SAC network {name!r} has no settings {unknown}; valid: {valid}")
    if n_critics < 1:
        raise ValueError(f"n_critics must be at least 1, got {n_critics}")
    return SAC_NETWORKS[name](obs_dim, action_dim, list(task_names), n_critics, **settings)
