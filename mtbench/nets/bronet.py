"""BRC's networks (paper 003, App. C.3-C.4; BroNet from BRO): a residual MLP regularised by LayerNorm, a learned task
embedding normalised to unit length, the tanh-Gaussian actor and the categorical critic ensemble built on them.

BroNet is Dense -> LayerNorm -> ReLU, then `depth` residual blocks, each Dense -> LN -> ReLU -> Dense -> LN plus the
skip (no activation after the add), then an optional output layer. The LayerNorms bound the features, which is
what lets the critic grow to thousands of units without diverging under TD learning. Every dense layer starts
orthogonal with gain sqrt(2) and zero bias (the reference's initialisation), the actor's log-std head with gain 1.

The critic owns the task embedding: its loss alone trains the table; the actor reads the same (unit-norm) rows as a
constant, so a policy gradient never moves where the tasks sit in the value's input space.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

EMBEDDING_NORMS = ("l2", "l1")


def _dense(in_dim: int, out_dim: int, gain: float = math.sqrt(2.0)) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    if not layer.weight.is_meta:  # counting parameters on the meta device builds without initialising
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


class ResidualBlock(nn.Module):
    """x + LN(Dense(ReLU(LN(Dense(x)))))."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            _dense(width, width), nn.LayerNorm(width), nn.ReLU(), _dense(width, width), nn.LayerNorm(width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class BroNet(nn.Module):
    """`BroNet(in_dim, width, depth, out_dim)`: (B, in_dim) -> (B, out_dim), or the (B, width) features when
    `out_dim` is None (the actor puts its own heads on them)."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int | None = None):
        super().__init__()
        self.stem = nn.Sequential(_dense(in_dim, width), nn.LayerNorm(width), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(depth)))
        self.head = _dense(width, out_dim) if out_dim is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def bronet_parameters(in_dim: int, width: int, depth: int, out_dim: int | None = None) -> int:
    """BroNet's parameter count in closed form: stem (in + 1) w + 2 w (its LayerNorm), each block 2 (w^2 + w) + 4 w,
    the head (w + 1) out. The BRC critic (in = state + action + embedding, 2 blocks, 101 atoms) is 4 w^2 + (in + 116) w
    + 101."""
    head = (width + 1) * out_dim if out_dim is not None else 0
    return (in_dim + 1) * width + 2 * width + depth * (2 * (width * width + width) + 4 * width) + head


class TaskEmbedding(nn.Module):
    """`embedding(task) -> (B, dim)`: a learned row per task divided by its norm (`l2`, the reference code's and
    this project's default; `l1`, as the paper's text says), so only its direction carries the task."""

    def __init__(self, n_tasks: int, dim: int, norm: Literal[EMBEDDING_NORMS] = "l2"):
        super().__init__()
        if norm not in EMBEDDING_NORMS:
            raise ValueError(f"embedding norm must be one of {EMBEDDING_NORMS}, got {norm!r}")
        self.table = nn.Embedding(n_tasks, dim)
        self.p = 2.0 if norm == "l2" else 1.0

    def forward(self, task: torch.Tensor) -> torch.Tensor:
        e = self.table(task)
        return e / e.norm(p=self.p, dim=-1, keepdim=True).clamp_min(1e-12)


class BroNetActor(nn.Module):
    """`actor(state, embedding) -> (mu, log_std)`, both (B, action_dim): BroNet features of [state, embedding], a mean
    head and a log-std head squashed into [log_std_min, log_std_max] by a tanh (the reference's actor)."""

    def __init__(
        self, state_dim: int, action_dim: int, embedding_dim: int, width: int, depth: int,
        log_std_min: float, log_std_max: float,
    ):  # fmt: skip
        super().__init__()
        self.body = BroNet(state_dim + embedding_dim, width, depth)
        self.mean = _dense(width, action_dim)
        self.log_std = _dense(width, action_dim, gain=1.0)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, state: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(torch.cat((state, embedding), dim=-1))
        squashed = 0.5 * (1.0 + torch.tanh(self.log_std(h)))
        return self.mean(h), self.log_std_min + (self.log_std_max - self.log_std_min) * squashed


class CategoricalCritic(nn.Module):
    """`critic(state, action, task) -> logits (n_critics, B, atoms)`: independent BroNets over [state, action, task
    embedding], and the embedding table they share (`embed(task)`, what the actor reads).

    The members run in a Python loop: at BRC's widths each matmul fills the device by itself, so batching them
    would save only kernel launches."""

    def __init__(
        self, state_dim: int, action_dim: int, n_tasks: int, width: int, depth: int, n_critics: int, atoms: int,
        embedding_dim: int, embedding_norm: Literal[EMBEDDING_NORMS] = "l2",
    ):  # fmt: skip
        super().__init__()
        self.embedding = TaskEmbedding(n_tasks, embedding_dim, embedding_norm)
        in_dim = state_dim + action_dim + embedding_dim
        self.qs = nn.ModuleList(BroNet(in_dim, width, depth, atoms) for _ in range(n_critics))

    def embed(self, task: torch.Tensor) -> torch.Tensor:
        return self.embedding(task)

    def forward(self, state: torch.Tensor, action: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        x = torch.cat((state, action, self.embed(task)), dim=-1)
        return torch.stack([q(x) for q in self.qs])


def expected_value(logits: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """The ensemble's value: the members' probabilities averaged (no clipped double-Q), then their mean atom,
    (n_critics, B, atoms) -> (B,)."""
    return F.softmax(logits, dim=-1).mean(0) @ support
