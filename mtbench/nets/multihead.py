"""Multi-head MT-PPO network (MTBench `multihead_a2c`): separate actor and critic trunks over observation and
one-hot, with a per-task linear head on each, chosen by the sample's task index; one shared log-std."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from mtbench.nets.mlp import ACTIVATION_NAMES, mlp
from mtbench.validation import PosInt


class TaskHeads(nn.Module):
    """n_tasks linear layers in one tensor; each sample goes through its own task's layer (a batched gather,
    not a loop over tasks)."""

    def __init__(self, n_tasks: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default initialisation, per head
        self.weight = nn.Parameter(torch.empty(n_tasks, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_tasks, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return torch.bmm(x.unsqueeze(1), self.weight[task]).squeeze(1) + self.bias[task]


class MultiHeadActorCritic(nn.Module):
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
        self.actor_trunk = mlp(obs_dim, list(actor_units), None, activation)
        self.critic_trunk = mlp(obs_dim, list(critic_units), None, activation)
        self.actor_heads = TaskHeads(n_tasks, actor_units[-1], action_dim)
        self.critic_heads = TaskHeads(n_tasks, critic_units[-1], 1)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu = self.actor_heads(self.actor_trunk(obs), task)
        return mu, self.log_std.expand_as(mu), self.value(obs, task)

    def value(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.critic_heads(self.critic_trunk(obs), task).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        return [*self.actor_trunk.parameters(), *self.actor_heads.parameters(), self.log_std]

    def critic_parameters(self) -> list[nn.Parameter]:
        return [*self.critic_trunk.parameters(), *self.critic_heads.parameters()]
