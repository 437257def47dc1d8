"""Policy and value networks, chosen by name (`network=...` on the command line).

Every network maps (per-task normalised observation with its one-hot tail, task index) to (action mean,
log-std, normalised value) and splits its parameters into an actor and a critic group for the MTRL
gradient schemes.

A network may also stabilise multi-task learning through two optional hooks, which every learner honours
(`stabilizer`): `keep_tasks(task_losses, counts) -> (n_tasks,) bool` says which tasks' losses enter this update,
and `reset_tasks(failing, optimizer, generator)` runs after the optimiser step for the tasks that were left out
(PaCo's loss mask-out and w-reset)."""

from __future__ import annotations

import inspect

from torch import nn

from mtbench.nets.care import CAREActorCritic
from mtbench.nets.mlp import ActorCritic
from mtbench.nets.moore import MOOREActorCritic
from mtbench.nets.multihead import MultiHeadActorCritic
from mtbench.nets.paco import PaCoActorCritic
from mtbench.nets.soft_modularization import SoftModularActorCritic

NETWORKS: dict[str, type[nn.Module]] = {
    "mlp": ActorCritic,
    "multihead": MultiHeadActorCritic,
    "care": CAREActorCritic,
    "moore": MOOREActorCritic,
    "paco": PaCoActorCritic,
    "soft_modularization": SoftModularActorCritic,
}


MATCHABLE = tuple(n for n in NETWORKS if n not in ("mlp", "multihead"))
"""The architectures `network=mlp network.match=<name>` widens the plain MLP to the parameter count of (paper 002)."""


def make_network(obs_dim: int, action_dim: int, task_names: list[str], name: str = "mlp", **settings) -> nn.Module:
    """Build network `name` for the tasks `task_names` (CARE looks up their metadata vectors by name)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; available: {', '.join(sorted(NETWORKS))}")
    settings.pop("match", None)  # network.match: the runner's instruction (mtbench.scaling), applied before this
    cls = NETWORKS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "obs_dim", "action_dim", "n_tasks"}
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise ValueError(f"network {name!r} has no settings {unknown}; valid: {sorted(accepted - {'task_names'})}")
    if "task_names" in accepted:
        settings["task_names"] = list(task_names)
    return cls(obs_dim=obs_dim, action_dim=action_dim, n_tasks=len(task_names), **settings)


def stabilizer(net: nn.Module) -> nn.Module | None:
    """`net` if it defines the stabilisation hooks and has them switched on (PaCo with a loss threshold)."""
    if hasattr(net, "keep_tasks") and getattr(net, "loss_threshold", None) is not None:
        return net
    return None


def count_parameters(net: nn.Module) -> dict[str, int]:
    """Trainable parameters: actor, critic, total (the parameter-scaling paper compares at equal totals).
    Frozen tensors, such as CARE's metadata embedding, are not counted."""
    count = lambda ps: sum(p.numel() for p in ps if p.requires_grad)  # noqa: E731
    return {
        "actor": count(net.actor_parameters()),
        "critic": count(net.critic_parameters()),
        "total": count(net.parameters()),
    }
