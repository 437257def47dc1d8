"""The actor-critic face shared by the task-conditioned networks (CARE, MOORE, Soft-Modularization).

Each builds an `actor` and a `critic` of the same kind, called as `net(obs, task)`, and one state-independent
`log_std`; what the learner asks of them (action mean and log-std, value, the two parameter groups the MTRL
schemes treat apart) is written once here. Actor and critic share nothing, so the value loss (weighted 4x in
MTBench) cannot reshape the policy's features.
"""

from __future__ import annotations

import torch
from torch import nn


class SeparateActorCritic(nn.Module):
    actor: nn.Module
    critic: nn.Module
    log_std: nn.Parameter

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action mean, log-std broadcast to the batch, normalised value (B,))."""
        mu = self.actor(obs, task)
        return mu, self.log_std.expand_as(mu), self.value(obs, task)

    def value(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.critic(obs, task).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        return [*self.actor.parameters(), self.log_std]

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())
