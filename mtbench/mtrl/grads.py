"""Per-task gradients of a parameter group as one (n_tasks, P) matrix, and writing a combined gradient back.

One batched backward (`is_grads_batched`, vmapped over the identity) gives every task's gradient at once,
instead of n_tasks sequential backward passes.
"""

from __future__ import annotations

import torch


def task_gradients(losses: torch.Tensor, params: list[torch.nn.Parameter], retain_graph: bool = True) -> torch.Tensor:
    """Rows g_i = d losses[i] / d params, flattened: (n_tasks, P). Parameters a task does not reach get 0."""
    n = losses.shape[0]
    eye = torch.eye(n, dtype=losses.dtype, device=losses.device)
    grads = torch.autograd.grad(
        losses, params, grad_outputs=eye, is_grads_batched=True, retain_graph=retain_graph, allow_unused=True
    )
    return torch.cat(
        [
            (g if g is not None else torch.zeros(n, *p.shape, device=p.device)).reshape(n, -1)
            for g, p in zip(grads, params)
        ],
        dim=1,
    )


def add_flat_grad(params: list[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Accumulate a flat gradient (P,) into `.grad` of `params`, in order."""
    offset = 0
    for p in params:
        k = p.numel()
        g = flat[offset : offset + k].view_as(p)
        p.grad = g.clone() if p.grad is None else p.grad + g
        offset += k


def conflict_stats(G: torch.Tensor, present: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and minimum cosine similarity over task pairs i < j of per-task gradients G (n, P), counting
    only pairs of `present` tasks (MTBench paper, Figure 5: negative values are conflicting tasks).
    Masked, not indexed, so nothing waits for the device."""
    n = G.shape[0]
    unit = G / G.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = unit @ unit.T
    i, j = torch.triu_indices(n, n, offset=1, device=G.device)
    pairs = cos[i, j]
    mask = torch.ones_like(pairs, dtype=torch.bool) if present is None else present[i] & present[j]
    mean = (pairs * mask).sum() / mask.sum().clamp_min(1)
    return mean, torch.where(mask, pairs, torch.full_like(pairs, float("inf"))).min()
