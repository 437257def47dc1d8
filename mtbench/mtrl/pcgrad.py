"""PCGrad (Yu et al., 2020) as MTBench applies it: each task's gradient is projected off the normal plane
of every other task's gradient it conflicts with (negative inner product), visiting the others in a random
order; the projected gradients are averaged.

Every projected gradient stays a linear combination of the original ones, p_i = Σ_m C[i, m] g_m, and every
quantity the projections read is an inner product, p_i · g_j = (C GG)[i, j] with GG = G Gᵀ. So the whole
procedure runs on the (n, n) coefficient matrix C and the Gram matrix, and the result is Σ_t β_t g_t with
β = mean over the rows of C: n² numbers per step instead of n·P.
"""

from __future__ import annotations

import torch


def pcgrad_weights(GG: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """β (n,) such that PCGrad's update is Σ_t β_t g_t, from the Gram matrix GG (n, n) of the task gradients.
    Every task visits the others in its own random order (drawn from `generator` on GG's device); all tasks
    advance together, one visit per step (n batched steps, no host sync)."""
    n = GG.shape[0]
    orders = torch.stack([torch.randperm(n, generator=generator, device=GG.device) for _ in range(n)])
    A = GG.to(torch.float64)
    norms_sq = A.diagonal().clamp_min(1e-20)
    rows = torch.arange(n, device=GG.device)
    C = torch.eye(n, dtype=torch.float64, device=GG.device)
    for k in range(n):
        j = orders[:, k]
        dot = (C * A[:, j].T).sum(dim=1)  # p_i · g_{j_i}
        coef = torch.where((dot < 0) & (j != rows), dot / norms_sq[j], torch.zeros_like(dot))
        C[rows, j] -= coef
    return C.mean(dim=0)


def pcgrad(G: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Combine per-task gradients G (n, P) into one (P,)."""
    beta = pcgrad_weights(G.to(torch.float64) @ G.to(torch.float64).T, generator)
    return beta.to(G.dtype) @ G
