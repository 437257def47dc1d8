"""Per-task gradients of a parameter group: `TaskGradients` holds them per parameter, (n_tasks, *shape) each, and
combines them with per-task weights; `autograd_task_gradients` computes them the slow, obviously right way (one
backward pass per task, batched), which the fast layer-by-layer route (`mtbench.mtrl.recording`) is tested
against and which stays available as `scheme.task_gradients=autograd`.

PCGrad's and CAGrad's update is a weighted sum of the task gradients, g = Σ_t β_t g_t, with β decided by the Gram
matrix g_s·g_t alone: so the schemes see the (n_tasks, n_tasks) Gram matrix and return β, and no (n_tasks, P)
matrix is ever concatenated, projected or copied.
"""

from __future__ import annotations

import torch
from torch import nn


class TaskGradients:
    """Row t of `blocks[p]` (n_tasks, *p.shape) is task t's gradient of parameter p. A parameter the losses do not
    reach has no block (it then gets no gradient from this part, as with a plain backward pass)."""

    def __init__(self, blocks: dict[nn.Parameter, torch.Tensor], n_tasks: int):
        self.blocks = blocks
        self.n_tasks = n_tasks

    def gram(self) -> torch.Tensor:
        """g_s · g_t over every reached parameter, (n_tasks, n_tasks) float64 (summed block by block in float64)."""
        device = next(iter(self.blocks.values())).device if self.blocks else None
        GG = torch.zeros(self.n_tasks, self.n_tasks, dtype=torch.float64, device=device)
        for g in self.blocks.values():
            flat = g.reshape(self.n_tasks, -1)
            GG += (flat @ flat.T).to(torch.float64)
        return GG

    def combine(self, beta: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        """Σ_t β_t g_t for every reached parameter."""
        out = {}
        for p, g in self.blocks.items():
            out[p] = (beta.to(device=g.device, dtype=g.dtype) @ g.reshape(self.n_tasks, -1)).view_as(p)
        return out

    def matrix(self, params: list[nn.Parameter]) -> torch.Tensor:
        """(n_tasks, P) over `params` in order, zeros where a parameter is not reached: for tests and diagnostics."""
        rows = []
        for p in params:
            g = self.blocks.get(p)
            rows.append(g.reshape(self.n_tasks, -1) if g is not None else p.new_zeros(self.n_tasks, p.numel()))
        return torch.cat(rows, dim=1)


def autograd_task_gradients(
    losses: torch.Tensor, params: list[nn.Parameter], retain_graph: bool = True
) -> TaskGradients:
    """d losses[t] / d params for every task t by one batched backward pass over the identity (vmapped over the tasks:
    one backward pass per task's worth of work)."""
    n = losses.shape[0]
    params = [p for p in params if p.requires_grad]
    if not losses.requires_grad or not params:
        return TaskGradients({}, n)
    eye = torch.eye(n, dtype=losses.dtype, device=losses.device)
    grads = torch.autograd.grad(
        losses, params, grad_outputs=eye, is_grads_batched=True, retain_graph=retain_graph, allow_unused=True
    )
    return TaskGradients({p: g for p, g in zip(params, grads) if g is not None}, n)


def task_gradients(losses: torch.Tensor, params: list[nn.Parameter], retain_graph: bool = True) -> torch.Tensor:
    """Rows g_i = d losses[i] / d params, flattened: (n_tasks, P). Parameters a task does not reach get 0."""
    return autograd_task_gradients(losses, params, retain_graph).matrix(list(params))


def accumulate_grads(grads: dict[nn.Parameter, torch.Tensor]) -> None:
    """Add each gradient to its parameter's `.grad` (setting it where there is none)."""
    for p, g in grads.items():
        p.grad = g.clone() if p.grad is None else p.grad + g


def add_flat_grad(params: list[nn.Parameter], flat: torch.Tensor) -> None:
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
