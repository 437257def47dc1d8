"""Plasticity metrics of a network on a probe batch (paper 002, McLean et al.): the share of dormant neurons per hidden
layer, the feature rank of the last hidden layer, parameter and gradient norms.

A neuron's score is its mean |activation| over the batch divided by the mean of that over its layer (Sokar et al.'s
tau-dormant definition, as paper 002 uses it); it is dormant when the score is <= tau. The effective rank is
srank_delta = min k such that the k largest singular values of the (batch, width) features hold at least 1 - delta
of their sum (Kumar et al.), delta = 0.01. Hidden layers are the outputs of the activation modules inside a part,
in the order they run; a part with none cannot be measured and says so.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mtbench.nets.mlp import ACTIVATIONS

DORMANT_TAUS = (0.0, 0.025, 0.1)
SRANK_DELTA = 0.01
ACTIVATION_TYPES = tuple(ACTIVATIONS.values())


def neuron_scores(act: torch.Tensor) -> torch.Tensor:
    """Per-neuron (last axis) mean |activation| over every other axis, divided by the layer's mean of it."""
    mean_abs = act.abs().reshape(-1, act.shape[-1]).mean(0)
    return mean_abs / mean_abs.mean().clamp_min(1e-12)


def dormant_shares(acts: list[torch.Tensor], tau: float) -> tuple[list[float], float]:
    """The share of tau-dormant neurons in each layer of `acts` and over all of their neurons together."""
    dead = [(neuron_scores(a) <= tau) for a in acts]
    per_layer = [float(d.float().mean()) for d in dead]
    total = sum(int(d.sum()) for d in dead) / max(1, sum(d.numel() for d in dead))
    return per_layer, total


def srank(features: torch.Tensor, delta: float = SRANK_DELTA) -> int:
    """Effective rank of (batch, width) features: the fewest singular values holding 1 - delta of their sum."""
    s = torch.linalg.svdvals(features.reshape(-1, features.shape[-1]).double())
    if float(s.sum()) == 0.0:
        return 0
    cum = torch.cumsum(s, 0) / s.sum()
    return int((cum < 1.0 - delta).sum()) + 1


def hidden_activations(parts: dict[str, nn.Module], run: Callable[[], object]) -> dict[str, list[torch.Tensor]]:
    """The outputs of every activation module inside each part while `run()` executes (no grad), in the order they
    ran."""
    acts: dict[str, list[torch.Tensor]] = {name: [] for name in parts}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, name=name: acts[name].append(out.detach()))
        for name, part in parts.items()
        for m in part.modules()
        if isinstance(m, ACTIVATION_TYPES)
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return acts


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((t.detach().double() ** 2).sum() for t in tensors))) if tensors else float("nan")


def plasticity_metrics(parts: dict[str, nn.Module], run: Callable[[], object]) -> dict[str, float]:
    """For each part (e.g. actor, critic): dormant shares at every tau per layer and overall, srank of its last
    hidden layer, its parameter norm and the norm of the gradients left by the last update. `run()` must send
    the probe batch through every part once."""
    acts = hidden_activations(parts, run)
    out: dict[str, float] = {}
    for name, part in parts.items():
        if not acts[name]:
            raise ValueError(f"plasticity metrics: the {name} has no activation module ({type(part).__name__})")
        for tau in DORMANT_TAUS:
            per_layer, total = dormant_shares(acts[name], tau)
            out[f"dormant_{tau:g}/{name}"] = total
            out.update({f"dormant_{tau:g}/{name}/layer{i}": v for i, v in enumerate(per_layer)})
        out[f"srank/{name}"] = float(srank(acts[name][-1]))
        params = list(part.parameters())
        out[f"param_norm/{name}"] = _norm(params)
        out[f"grad_norm_last/{name}"] = _norm([p.grad for p in params if p.grad is not None])
    return out
