"""MOORE (Hendawy et al., 2024; MTBench `moore_a2c`): a mixture of expert MLPs over the observation whose
outputs are orthonormalised per sample (Gram-Schmidt) so every expert has to encode something the others
do not, then mixed by task-specific weights. Separate actor and critic, one shared log-std."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from mtbench.nets.actor_critic import SeparateActorCritic
from mtbench.nets.experts import ExpertMLP
from mtbench.nets.multihead import TaskHeads
from mtbench.validation import PosInt

AGG_ACTIVATIONS = ("tanh", "linear")
"""After the task-weighted sum of the experts: MTBench Table 3 (Meta-World) tanh, Table 7 (parkour) none."""


def xavier_init(module: nn.Module) -> nn.Module:
    """Upstream's initialiser: Xavier-uniform weights and zero biases for every nn.Linear and TaskHeads.
    Expert layers are left alone: they already carry Xavier weights and upstream's U[0, 1) biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, TaskHeads):
            in_dim, out_dim = m.weight.shape[1:]
            bound = math.sqrt(6.0 / (in_dim + out_dim))  # Xavier-uniform per head
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)
    return module


def gram_schmidt(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Orthonormalise the E vectors of each sample: (E, B, D) -> (E, B, D), output k spanning inputs 0..k.

    The modified form (projections removed one basis vector at a time) keeps float32 orthogonality far
    better than the classical form when experts are nearly collinear; E is small, so the loop is cheap.
    `eps` guards a (numerically) dependent expert against a division by zero."""
    basis: list[torch.Tensor] = []
    for v in x.unbind(0):
        for q in basis:
            v = v - (v * q).sum(-1, keepdim=True) * q
        basis.append(v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(eps))
    return torch.stack(basis)


class MOOREBody(nn.Module):
    """One MOORE actor or critic: experts -> Gram-Schmidt -> task-weighted sum -> tanh (or none) -> head."""

    def __init__(
        self,
        obs_dim: int,
        out_dim: int,
        n_tasks: int,
        n_experts: int,
        num_layers: int,
        hidden_dim: int,
        task_encoder_units: tuple[int, ...],
        multihead: bool,
        agg_activation: Literal[AGG_ACTIVATIONS] = "tanh",
    ):
        super().__init__()
        if agg_activation not in AGG_ACTIVATIONS:
            raise ValueError(f"agg_activation must be one of {AGG_ACTIVATIONS}, got {agg_activation!r}")
        self.agg_tanh = agg_activation == "tanh"
        self.n_tasks = n_tasks
        self.true_obs_dim = obs_dim - n_tasks
        self.experts = ExpertMLP(
            n_experts, self.true_obs_dim, [hidden_dim] * num_layers, "relu", out_activation=False, bias_init="uniform"
        )
        # the weights are not softmaxed: with an orthonormal basis any linear combination is a valid feature
        dims = [n_tasks, *task_encoder_units]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.ReLU()]  # upstream `task_encoder.bias: False`
        self.task_encoder = nn.Sequential(*layers, nn.Linear(dims[-1], n_experts, bias=False))
        self.multihead = multihead
        # SH conditions its single head on the task by concatenating the one-hot to the mixed features
        self.head = TaskHeads(n_tasks, hidden_dim, out_dim) if multihead else nn.Linear(hidden_dim + n_tasks, out_dim)
        xavier_init(self)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Orthonormalised expert outputs (E, B, D)."""
        return gram_schmidt(self.experts(obs[:, : self.true_obs_dim]))

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        one_hot = obs[:, self.true_obs_dim :]
        w = self.task_encoder(one_hot)  # (B, E)
        y = torch.einsum("be,ebd->bd", w, self.features(obs))
        if self.agg_tanh:  # agg_activation [Linear, Tanh] (Table 3); parkour's Table 7 has [Linear, Linear]
            y = torch.tanh(y)
        if self.multihead:
            return self.head(y, task)
        return self.head(torch.cat([y, one_hot], dim=-1))


class MOOREActorCritic(SeparateActorCritic):
    """Actor and critic are separate MOORE networks (upstream `separate: True`), so the 4x-weighted value loss
    cannot rotate the actor's expert basis. `n_experts=None` picks the paper's 4 for up to 10 tasks, else 6."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        *,
        n_experts: PosInt | None = None,
        num_layers: PosInt = 3,
        hidden_dim: PosInt = 400,
        task_encoder_units: tuple[PosInt, ...] = (256,),
        init_log_std: float = 0.0,
        multihead: bool = False,
        agg_activation: Literal[AGG_ACTIVATIONS] = "tanh",
    ):
        super().__init__()
        if n_experts is None:
            n_experts = 4 if n_tasks <= 10 else 6
        if n_experts > hidden_dim:
            raise ValueError(f"{n_experts} experts cannot be orthonormal in {hidden_dim} dimensions")
        self.n_tasks = n_tasks
        body = dict(
            obs_dim=obs_dim,
            n_tasks=n_tasks,
            n_experts=n_experts,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            task_encoder_units=tuple(task_encoder_units),
            multihead=multihead,
            agg_activation=agg_activation,
        )
        self.actor = MOOREBody(out_dim=action_dim, **body)
        self.critic = MOOREBody(out_dim=1, **body)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def features(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The actor's orthonormalised expert outputs (E, B, D), for diagnostics and tests."""
        return self.actor.features(obs)
