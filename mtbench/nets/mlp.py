"""The vanilla MT-PPO network: separate actor and critic MLPs over the observation and its one-hot,
a Gaussian policy with a state-independent learnable log-std (MTBench's rl_games `separate: True`)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from mtbench.validation import PosInt

ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}
ACTIVATION_NAMES = tuple(ACTIVATIONS)


def mlp(in_dim: int, units: list[int], out_dim: int | None, activation: str = "elu") -> nn.Sequential:
    """Linear layers of `units` with `activation` after each; a final linear layer to `out_dim` if given."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; available: {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for width in units:
        layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation]()]
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Actor and critic share nothing, so the value loss (weighted 4x in MTBench) cannot distort the policy."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        actor_units: tuple[PosInt, ...] = (256, 128, 64),
        critic_units: tuple[PosInt, ...] = (256, 128, 64),
        activation: Literal[ACTIVATION_NAMES] = "elu",
        init_log_std: float = 0.0,
    ):
        super().__init__()
        self.n_tasks = n_tasks
        self.actor = mlp(obs_dim, list(actor_units), action_dim, activation)
        self.critic = mlp(obs_dim, list(critic_units), 1, activation)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action mean, log-std broadcast to the batch, normalised value (B,))."""
        mu = self.actor(obs)
        return mu, self.log_std.expand_as(mu), self.critic(obs).squeeze(-1)

    def value(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        return [*self.actor.parameters(), self.log_std]

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())
