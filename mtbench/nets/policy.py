"""Actor-only forms of every network, for learners without a critic (MT-GRPO): a Gaussian policy whose mean is a
body of `mtbench.nets.bodies` with action_dim outputs and whose log-std is one learned vector, independent of the
state, as PPO's networks and upstream's `MTModelGRPOContinuousLogStd`."""

from __future__ import annotations

import torch
from torch import nn

from mtbench.nets.bodies import BODIES, body_settings, make_bodies
from mtbench.nets.paco import PaCoHooks, PaCoNet


class GaussianPolicy(nn.Module):
    """`policy(obs, task) -> (mu, log_std)`, both (B, action_dim)."""

    def __init__(self, body: nn.Module, action_dim: int, init_log_std: float):
        super().__init__()
        self.body = body
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.body(obs, task)
        return mu, self.log_std.expand_as(mu)

    def actor_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


class PaCoPolicy(PaCoHooks, GaussianPolicy):
    """With PaCo's loss mask-out and w-reset for the learner (`mtbench.nets.stabilizer`)."""

    def __init__(self, body: PaCoNet, action_dim: int, init_log_std: float, loss_threshold: float | None):
        super().__init__(body, action_dim, init_log_std)
        self.loss_threshold = loss_threshold

    def paco_nets(self) -> list[PaCoNet]:
        return [self.body]


def make_policy_network(
    obs_dim: int, action_dim: int, task_names: list[str], name: str = "mlp", init_log_std: float = 0.0, **settings
) -> GaussianPolicy:
    """The policy of network `name`, sized by its actor settings (mlp and multihead: `actor_units`); `settings`
    are the PPO form's keys, and a critic's sizes are refused: there is no critic to size."""
    if settings.get("critic_units") is not None:
        raise ValueError(f"network.critic_units={settings['critic_units']} sizes a critic, and this learner has none")
    if name in BODIES and "critic_units" in body_settings(name):
        settings["critic_units"] = ()  # the kinds that size actor and critic apart: no critic body is built
    body = make_bodies(name, task_names, "policy", **settings)("actor", obs_dim, action_dim)
    if name == "paco":
        return PaCoPolicy(body, action_dim, init_log_std, settings.get("loss_threshold", 100.0))
    return GaussianPolicy(body, action_dim, init_log_std)
