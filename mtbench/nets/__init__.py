"""Policy and value networks, chosen by name (`network=...` on the command line)."""

from __future__ import annotations

from torch import nn

from mtbench.nets.mlp import ActorCritic
from mtbench.nets.multihead import MultiHeadActorCritic

NETWORKS: dict[str, type[nn.Module]] = {"mlp": ActorCritic, "multihead": MultiHeadActorCritic}


def make_network(name: str, obs_dim: int, action_dim: int, n_tasks: int, **kwargs) -> nn.Module:
    """Build network `name`; every network maps (normalised obs with one-hot, task index) to
    (action mean, log-std, value)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; available: {', '.join(sorted(NETWORKS))}")
    return NETWORKS[name](obs_dim=obs_dim, action_dim=action_dim, n_tasks=n_tasks, **kwargs)


def count_parameters(net: nn.Module) -> dict[str, int]:
    """Trainable parameters: actor, critic, total (the parameter-scaling paper compares at equal totals)."""
    actor = sum(p.numel() for p in net.actor_parameters())
    critic = sum(p.numel() for p in net.critic_parameters())
    return {"actor": actor, "critic": critic, "total": sum(p.numel() for p in net.parameters())}
