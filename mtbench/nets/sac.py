"""The SAC forms of every network: a tanh-Gaussian actor with a state-dependent log-std and an ensemble of Q(s, a).

Each kind reuses the body of its PPO form (the same settings keys, minus `init_log_std`: the log-std is an
output here). The actor is that body with 2·action_dim outputs, split into the pre-tanh mean and the raw log-std
(the algorithm clamps it). Each Q is that body with one output, built for obs_dim + action_dim inputs and fed
[state, action, one-hot]: the action goes BEFORE the one-hot, so bodies that read the task from the tail (CARE,
MOORE, PaCo, Soft-Mod) see it where they expect it, and their state encoders read state and action together.
Actor and critics share nothing, as in upstream MT-SAC and paper 002.

The bodies are those of `mtbench.nets.bodies`. The critics are evaluated in a Python loop: stacking their
parameters for `torch.func.vmap` would copy every critic weight on each call, and batching them natively would
mean rewriting every body with an ensemble axis.
"""

from __future__ import annotations

import torch
from torch import nn

from mtbench.nets.bodies import make_bodies
from mtbench.nets.paco import PaCoHooks, PaCoNet


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


def make_sac_networks(
    obs_dim: int, action_dim: int, task_names: list[str], name: str = "mlp", n_critics: int = 2, **settings
) -> tuple[nn.Module, nn.Module]:
    """(actor, critic) for network `name`: `actor(obs, task) -> (mu, log_std)` and
    `critic(obs, action, task) -> (n_critics, B)`. `settings` are the PPO form's keys without `init_log_std`;
    an unknown key is an error rather than silently ignored. The actor is built first, then each Q in turn."""
    if n_critics < 1:
        raise ValueError(f"n_critics must be at least 1, got {n_critics}")
    body = make_bodies(name, task_names, "SAC", **settings)
    n = len(task_names)
    actor_body = body("actor", obs_dim, 2 * action_dim)
    qs = [body("critic", obs_dim + action_dim, 1) for _ in range(n_critics)]
    if name == "paco":
        threshold = settings.get("loss_threshold", 100.0)
        return PaCoActor(actor_body, action_dim, threshold), PaCoCritic(qs, n, threshold)
    return GaussianActor(actor_body, action_dim), QEnsemble(qs, n)
