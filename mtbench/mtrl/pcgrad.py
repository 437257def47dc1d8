"""PCGrad (Yu et al., 2020) as MTBench applies it: each task's gradient is projected off the normal plane
of every other task's gradient it conflicts with (negative inner product), visiting the others in a random
order; the projected gradients are averaged."""

from __future__ import annotations

import torch


def pcgrad(G: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Combine per-task gradients G (n, P) into one (P,). Projections use the *original* gradients g_j, as
    in the paper; every task visits the others in its own random order. All tasks advance together, one
    visit per step (n batched steps, no host sync)."""
    n = G.shape[0]
    orders = torch.stack([torch.randperm(n, generator=generator, device=G.device) for _ in range(n)])
    norms_sq = (G * G).sum(dim=1).clamp_min(1e-20)
    rows = torch.arange(n, device=G.device)
    projected = G.clone()
    for k in range(n):
        j = orders[:, k]
        Gj = G[j]
        dot = (projected * Gj).sum(dim=1)
        coef = torch.where((dot < 0) & (j != rows), dot / norms_sq[j], torch.zeros_like(dot))
        projected = projected - coef[:, None] * Gj
    return projected.mean(dim=0)
