"""The Q-network forms of every network for MT-PQN: `q(obs, task) -> (B, action_dim, bins)`, one utility per bin
of each action dimension (the factored Q of Seyde et al.; the learner averages over dimensions).

`network=mlp` is upstream's network (after ACME's LayerNormAndResidualMLP): PQN has no target network, and the
LayerNorms are what keep its bootstrapped targets stable. It reads the existing keys: `critic_units: [W] * n` is
width W with n blocks (the input layer and n - 1 residual blocks), `activation` the nonlinearity (upstream: elu).
Every other kind is its body from `mtbench.nets.bodies` with action_dim * bins outputs. PQN has no actor, so
`actor_units` must stay null, and `init_log_std` (PPO's) is ignored as by SAC.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtbench.nets.bodies import TaskFree, make_bodies
from mtbench.nets.mlp import ACTIVATIONS
from mtbench.nets.paco import PaCoHooks, PaCoNet


class ResidualBlock(nn.Module):
    """Linear, activation, LayerNorm, Linear, plus the input, LayerNorm."""

    def __init__(self, width: int, activation: str):
        super().__init__()
        self.inner = nn.Sequential(
            nn.Linear(width, width), ACTIVATIONS[activation](), nn.LayerNorm(width), nn.Linear(width, width)
        )
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.inner(x))


class ResidualLayerNormMLP(nn.Sequential):
    """Linear(in -> W), activation, LayerNorm; `blocks - 1` residual blocks; activation, Linear(W -> out). Every
    linear layer orthogonal with gain sqrt(2) and zero bias, as upstream's pq_network."""

    def __init__(self, in_dim: int, out_dim: int, width: int, blocks: int, activation: str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; available: {', '.join(ACTIVATIONS)}")
        act = ACTIVATIONS[activation]
        super().__init__(
            nn.Linear(in_dim, width), act(), nn.LayerNorm(width),
            *(ResidualBlock(width, activation) for _ in range(blocks - 1)),
            act(), nn.Linear(width, out_dim),
        )  # fmt: skip
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2.0))
                nn.init.zeros_(m.bias)


class FactoredQ(nn.Module):
    """A body with action_dim * bins outputs, viewed as (B, action_dim, bins) utilities."""

    def __init__(self, body: nn.Module, action_dim: int, bins: int):
        super().__init__()
        self.body, self.action_dim, self.bins = body, action_dim, bins

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.body(obs, task).view(-1, self.action_dim, self.bins)


class PaCoFactoredQ(PaCoHooks, FactoredQ):
    """With PaCo's loss mask-out and w-reset for the learner (`mtbench.nets.stabilizer`)."""

    def __init__(self, body: PaCoNet, action_dim: int, bins: int, loss_threshold: float | None):
        super().__init__(body, action_dim, bins)
        self.loss_threshold = loss_threshold

    def paco_nets(self) -> list[PaCoNet]:
        return [self.body]


def _residual_mlp(in_dim: int, out_dim: int, critic_units: list[int] | None, activation: str | None) -> nn.Module:
    units = list(critic_units or [])
    if not units or len(set(units)) != 1:
        raise ValueError(
            f"network.critic_units={units} must be one width repeated once per block for PQN's residual network, "
            "e.g. [256, 256] (width 256, 2 blocks)"
        )
    return TaskFree(ResidualLayerNormMLP(in_dim, out_dim, units[0], len(units), activation or "elu"))


def make_q_network(
    obs_dim: int, action_dim: int, task_names: list[str], bins: int, name: str = "mlp", **settings
) -> FactoredQ:
    """The factored Q-network of network `name`; `settings` are the network YAML's keys."""
    settings.pop("init_log_std", None)  # PPO's log-std: nothing to set here
    if settings.get("actor_units") is not None:
        raise ValueError(f"network.actor_units={settings['actor_units']} sizes an actor, and PQN has none")
    out = action_dim * bins
    if name == "mlp":
        unknown = sorted(set(settings) - {"actor_units", "critic_units", "activation"})
        if unknown:
            raise ValueError(f"PQN network 'mlp' has no settings {unknown}; valid: ['activation', 'critic_units']")
        body = _residual_mlp(obs_dim, out, settings.get("critic_units"), settings.get("activation"))
    else:
        body = make_bodies(name, task_names, "PQN", **settings)("critic", obs_dim, out)
    if name == "paco":
        return PaCoFactoredQ(body, action_dim, bins, settings.get("loss_threshold", 100.0))
    return FactoredQ(body, action_dim, bins)
