"""Soft-Modularization (Yang et al., 2020; MTBench `soft_modularization_ppo`): a base network of E experts per
layer whose outputs are re-mixed between layers by per-sample routing probabilities that a routing network
computes from the state and task embeddings. Separate actor and critic, one shared log-std."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mtbench.nets.actor_critic import SeparateActorCritic
from mtbench.nets.experts import ExpertLinear
from mtbench.nets.mlp import mlp
from mtbench.validation import PosInt


class SoftModularNet(nn.Module):
    """One Soft-Modularization actor or critic. With E experts, num_layers = L + 1 and D the width:

        f = state_encoder(obs without one-hot)    MLP state_units, ReLU, then Linear -> D (no activation)
        z = task_encoder(one-hot)                 MLP task_units, ReLU, then Linear -> D (no activation)
        u = f ⊙ z                                 (B, D)

    Routing network, L routing layers (logits p_l of size E², W_u takes the raw logits, not probabilities):
        p_1 = W_d^1(ReLU(u)),   p_{l+1} = W_d^{l+1}(ReLU(W_u^l(p_l) ⊙ u)),   P_l = softmax_j(p_l as (E, E)[i, j])

    Base network, L hidden MoE layers (D -> D) and a final MoE layer (D -> out), routed after each hidden layer:
        h_1[i]     = ReLU(M_1[i](u))                          every expert gets u (upstream: u, not the paper's f)
        x_l[i]     = Σ_j P_l[i, j] h_l[j]                     l = 1..L: expert i of the next layer takes row i
        h_{l+1}[i] = ReLU(M_{l+1}[i](x_l[i]))                 l = 1..L-1
        out        = Σ_i M_out[i](x_L[i])                     the final experts' outputs are summed

    So L = num_layers - 1 routing matrices (3 for the paper's 4 layers): one after each hidden MoE layer,
    the last one feeding the output layer. Xavier-uniform weights and zero biases throughout."""

    def __init__(
        self,
        state_dim: int,
        n_tasks: int,
        out_dim: int,
        num_experts: int,
        num_layers: int,
        D: int,
        state_units: tuple[int, ...],
        task_units: tuple[int, ...],
    ):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"num_layers must be at least 2 (one routed layer and the output), got {num_layers}")
        self.state_dim, self.n_experts = state_dim, num_experts
        n_routes, n_logits = num_layers - 1, num_experts * num_experts
        self.state_encoder = mlp(state_dim, list(state_units), D, "relu")
        self.task_encoder = mlp(n_tasks, list(task_units), D, "relu")
        self.route_down = nn.ModuleList(nn.Linear(D, n_logits) for _ in range(n_routes))  # W_d^1..L
        self.route_up = nn.ModuleList(nn.Linear(n_logits, D) for _ in range(n_routes - 1))  # W_u^1..L-1
        self.layers = nn.ModuleList(ExpertLinear(num_experts, D, D, bias_init="zeros") for _ in range(n_routes))
        self.head = ExpertLinear(num_experts, D, out_dim, bias_init="zeros")
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """u = f(state) ⊙ z(one-hot), (B, D); obs carries the one-hot as its last columns."""
        return self.state_encoder(obs[:, : self.state_dim]) * self.task_encoder(obs[:, self.state_dim :])

    def routing(self, u: torch.Tensor) -> torch.Tensor:
        """Routing probabilities (L, B, E, E); [l, b, i, j] is how much expert i of layer l+1 takes from expert j
        of layer l, so each row (over j) sums to 1."""
        logits = [self.route_down[0](F.relu(u))]
        for up, down in zip(self.route_up, self.route_down[1:]):
            logits.append(down(F.relu(up(logits[-1]) * u)))
        E = self.n_experts
        return F.softmax(torch.stack(logits).view(len(logits), u.shape[0], E, E), dim=-1)

    def forward(self, obs: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        """`task` is unused: the task enters through the one-hot columns of `obs`."""
        u = self.embed(obs)
        x = u  # (B, D), broadcast to every expert of the first layer
        for layer, p in zip(self.layers, self.routing(u)):
            x = torch.einsum("bij,jbd->ibd", p, F.relu(layer(x)))  # (E, B, D)
        return self.head(x).sum(0)


class SoftModularActorCritic(SeparateActorCritic):
    """Actor and critic are separate SoftModularNets (upstream `separate: True`), each with its own encoders
    and routing, so the 4x-weighted value loss cannot re-route the policy."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        *,
        num_experts: PosInt = 2,
        num_layers: PosInt = 4,
        D: PosInt = 256,
        state_units: tuple[PosInt, ...] = (256, 256),
        task_units: tuple[PosInt, ...] = (256,),
        init_log_std: float = 0.0,
    ):
        super().__init__()
        self.n_tasks = n_tasks
        body = dict(
            state_dim=obs_dim - n_tasks,
            n_tasks=n_tasks,
            num_experts=num_experts,
            num_layers=num_layers,
            D=D,
            state_units=tuple(state_units),
            task_units=tuple(task_units),
        )
        self.actor = SoftModularNet(out_dim=action_dim, **body)
        self.critic = SoftModularNet(out_dim=1, **body)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def routing(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The actor's routing probabilities (L, B, E, E), for diagnostics and tests."""
        return self.actor.routing(self.actor.embed(obs))
