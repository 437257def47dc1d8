"""Every network kind as a body of any input and output size, `body(x, task) -> (B, out_dim)`, so that each
algorithm composes its own heads from the same kinds: SAC's actor (2·A outputs) and Q-functions (state and action
in, one value out), GRPO's policy mean (A outputs), PQN's factored Q-values (A·bins outputs).

`make_bodies(name, task_names, **settings)` checks the settings once and returns a factory
`(role, in_dim, out_dim) -> module`; `role` ("actor" or "critic") only matters to the kinds whose actor and
critic sizes are set apart (mlp and multihead: `actor_units`, `critic_units`). The settings are the PPO form's keys
(mtbench/nets/__init__.py) without `init_log_std`, and their values come from mtbench/conf/network/*.yaml. An input
holds the state first and the task's one-hot last: the task-aware bodies (CARE, MOORE, PaCo, Soft-Mod) read
the task from that tail.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from mtbench.nets.care import DEFAULT_METADATA, CAREBody, load_task_embeddings
from mtbench.nets.mlp import mlp
from mtbench.nets.moore import MOOREBody
from mtbench.nets.multihead import TaskHeads
from mtbench.nets.paco import PaCoNet
from mtbench.nets.soft_modularization import SoftModularNet

BodyFactory = Callable[[str, int, int], nn.Module]
ROLES = ("actor", "critic")


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


def _by_role(units: dict[str, tuple[int, ...]], role: str) -> tuple[int, ...]:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return tuple(units[role])


def _mlp(
    task_names: list[str], *, actor_units: tuple[int, ...], critic_units: tuple[int, ...], activation: str
) -> BodyFactory:
    units = {"actor": actor_units, "critic": critic_units}
    return lambda role, i, o: TaskFree(mlp(i, list(_by_role(units, role)), o, activation))


def _multihead(
    task_names: list[str], *, actor_units: tuple[int, ...], critic_units: tuple[int, ...], activation: str
) -> BodyFactory:
    n, units = len(task_names), {"actor": actor_units, "critic": critic_units}
    return lambda role, i, o: MultiHeadBody(i, o, n, _by_role(units, role), activation)


def _care(
    task_names: list[str],
    *,
    metadata: str | None = None,
    units: tuple[int, ...] = (400, 400, 400),
    n_experts: int = 6,
    encoder_units: tuple[int, ...] = (50, 50),
    temperature: float = 1.0,
    attention_units: tuple[int, ...] = (50, 50),
    context_units: tuple[int, ...] = (50, 50),
    multihead: bool = False,
) -> BodyFactory:
    if context_units[-1] != encoder_units[-1]:
        raise ValueError(f"CARE's context ({context_units[-1]}) and encoders ({encoder_units[-1]}) must end equal")
    embedding = load_task_embeddings(DEFAULT_METADATA if metadata is None else metadata, list(task_names))
    body = dict(
        n_tasks=len(task_names),
        embedding=embedding,
        units=tuple(units),
        n_experts=n_experts,
        encoder_units=tuple(encoder_units),
        temperature=float(temperature),
        attention_units=tuple(attention_units),
        context_units=tuple(context_units),
        multihead=multihead,
    )
    return lambda role, i, o: CAREBody(i, o, **body)


def _moore(
    task_names: list[str],
    *,
    n_experts: int | None = None,
    num_layers: int = 3,
    hidden_dim: int = 400,
    task_encoder_units: tuple[int, ...] = (256,),
    multihead: bool = False,
    agg_activation: str = "tanh",
) -> BodyFactory:
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
    return lambda role, i, o: MOOREBody(i, o, **body)


def _paco(
    task_names: list[str],
    *,
    K: int | None = None,
    D: int = 400,
    num_layers: int = 3,
    loss_threshold: float | None = 100.0,
) -> BodyFactory:
    """Each body is a PaCoNet with its own compositional vectors; `loss_threshold` belongs to the wrappers that
    give a learner PaCo's hooks (`PaCoHooks`), which read it from the settings themselves."""
    n = len(task_names)
    if K is None:
        K = 5 if n <= 10 else 20  # as PaCoActorCritic: MTBench Table 3, MT10 / MT50
    return lambda role, i, o: PaCoNet(i, o, n, K, D, num_layers)


def _soft_modularization(
    task_names: list[str],
    *,
    num_experts: int = 2,
    num_layers: int = 4,
    D: int = 256,
    state_units: tuple[int, ...] = (256, 256),
    task_units: tuple[int, ...] = (256,),
) -> BodyFactory:
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
    return lambda role, i, o: SoftModularNet(i - n, out_dim=o, **body)


BODIES: dict[str, Callable[..., BodyFactory]] = {
    "mlp": _mlp,
    "multihead": _multihead,
    "care": _care,
    "moore": _moore,
    "paco": _paco,
    "soft_modularization": _soft_modularization,
}


def body_settings(name: str) -> list[str]:
    """The settings network `name` takes as a body."""
    params = inspect.signature(BODIES[name]).parameters.values()
    return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make_bodies(name: str, task_names: list[str], what: str = "", **settings) -> BodyFactory:
    """The body factory of network `name` with `settings`; an unknown network or key is a one-line error (`what`
    names the algorithm's form in it, e.g. "SAC")."""
    if name not in BODIES:
        raise ValueError(f"unknown network {name!r}; available: {', '.join(sorted(BODIES))}")
    settings.pop("match", None)  # network.match: the runner's instruction (mtbench.scaling), applied before this
    valid = body_settings(name)
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(f"{what + ' ' if what else ''}network {name!r} has no settings {unknown}; valid: {valid}")
    return BODIES[name](list(task_names), **settings)
