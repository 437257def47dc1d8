"""Mixture-of-experts building blocks shared by CARE, MOORE and Soft-Modularization: E independent linear
layers (or MLPs) held in one tensor and applied with one batched matmul, never a loop over experts."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtbench.nets.mlp import ACTIVATIONS

BIAS_INITS = ("zeros", "uniform")


class ExpertLinear(nn.Module):
    """E linear layers. Input (B, in) is fed to every expert; input (E, B, in) gives expert e its own row e.
    Output (E, B, out).

    Weights are Xavier-uniform per expert. `bias_init="uniform"` draws U[0, 1), the bias upstream MTBench's
    MoE layers keep for CARE and MOORE; "zeros" is Soft-Modularization's."""

    def __init__(self, n_experts: int, in_dim: int, out_dim: int, bias_init: str = "zeros"):
        super().__init__()
        if bias_init not in BIAS_INITS:
            raise ValueError(f"bias_init must be one of {BIAS_INITS}, got {bias_init!r}")
        bound = math.sqrt(6.0 / (in_dim + out_dim))  # Xavier-uniform, as for an nn.Linear(in_dim, out_dim)
        self.weight = nn.Parameter(torch.empty(n_experts, in_dim, out_dim).uniform_(-bound, bound))
        bias = torch.rand(n_experts, 1, out_dim) if bias_init == "uniform" else torch.zeros(n_experts, 1, out_dim)
        self.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return torch.einsum("bi,eio->ebo", x, self.weight) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)


class ExpertMLP(nn.Module):
    """E independent MLPs over the same input: (B, in) -> (E, B, units[-1]), `activation` between layers.
    `out_activation` also applies it after the last layer (MOORE's and CARE's experts end linear, as
    upstream's MoE block does)."""

    def __init__(
        self,
        n_experts: int,
        in_dim: int,
        units: list[int],
        activation: str = "relu",
        out_activation: bool = False,
        bias_init: str = "zeros",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; available: {', '.join(ACTIVATIONS)}")
        dims = [in_dim, *units]
        self.layers = nn.ModuleList(ExpertLinear(n_experts, a, b, bias_init) for a, b in zip(dims[:-1], dims[1:]))
        self.act = ACTIVATIONS[activation]()
        self.out_activation = out_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1 or self.out_activation:
                x = self.act(x)
        return x
