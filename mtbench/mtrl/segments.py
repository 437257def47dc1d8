"""A minibatch's samples grouped by task, so that a per-task sum over samples is one matrix product per task.

Every sample belongs to exactly one task, so the tasks' groups partition the minibatch: the products over the
groups together cost what one product over the whole minibatch costs, whatever the number of tasks. Two layouts:
`groups` (one block per task, for a loop of large products) and `padded` (all tasks in one (n_tasks, longest
group, ...) tensor whose padding is zero, for one batched product: few kernel launches, at the price of the
padding, which `TaskSegments.padding` measures).
"""

from __future__ import annotations

import torch


class TaskSegments:
    """Sample i belongs to task `task[i]`.

    The group sizes are read to the host once per minibatch (the only host read of the fast per-task gradients):
    a split needs its sizes as Python ints."""

    def __init__(self, task: torch.Tensor, n_tasks: int):
        if task.dim() != 1:
            raise ValueError(f"the task index must be one entry per sample, got shape {tuple(task.shape)}")
        self.task = task
        self.n_tasks = n_tasks
        self.n_samples = task.shape[0]
        counts = torch.bincount(task, minlength=n_tasks)
        self.sizes: list[int] = counts.tolist()
        if len(self.sizes) != n_tasks:
            raise ValueError(f"task index {len(self.sizes) - 1} is out of range for {n_tasks} tasks")
        self.order = torch.argsort(task, stable=True)
        self.longest = max(self.sizes, default=0)
        # slot of each sample in the padded layout: task * longest + its rank among its task's samples
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(task)
        rank[self.order] = torch.arange(self.n_samples, device=task.device) - starts[task[self.order]]
        self.slot = task * self.longest + rank

    @property
    def padding(self) -> float:
        """Size of the padded layout over the samples' (1 when every task has as many samples)."""
        return self.n_tasks * self.longest / max(self.n_samples, 1)

    def groups(self, x: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, ...]:
        """x's samples (along `dim`) in one block per task: block t holds task t's samples, possibly none."""
        return x.index_select(dim, self.order).split(self.sizes, dim)

    def padded(self, x: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """x's samples (along `dim`) as (n_tasks, longest group, *the other dims of x), zero where a task has fewer
        samples than the longest group."""
        x = x.movedim(dim, 0)
        out = x.new_zeros(self.n_tasks * self.longest, *x.shape[1:]).index_copy_(0, self.slot, x)
        return out.view(self.n_tasks, self.longest, *x.shape[1:])

    def sums(self, x: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Σ over each task's samples of x (samples along `dim`): (n_tasks, *the other dims of x)."""
        x = x.movedim(dim, 0)
        return x.new_zeros(self.n_tasks, *x.shape[1:]).index_add_(0, self.task, x)
