"""Pieces every multi-task learner shares: per-task running statistics, per-task reductions, GAE.

Per-task quantities are first-class here: a batch carries a task index (0..n_tasks-1, the one-hot rank)
per sample, and every reduction over tasks is a scatter, never a Python loop over tasks or envs. In a torchrun job
the statistics are pooled over the ranks (sums, sums of squares and counts all-reduced), so that every rank holds
those of the big batch; in one process the same code reduces nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from mtbench import distributed


def task_counts(task: torch.Tensor, n_tasks: int) -> torch.Tensor:
    """Samples per task, (n_tasks,) float."""
    return torch.bincount(task, minlength=n_tasks).to(torch.float32)


def per_task_mean(x: torch.Tensor, task: torch.Tensor, n_tasks: int) -> torch.Tensor:
    """Mean of per-sample values `x` (B,) over each task's samples, (n_tasks,); 0 for absent tasks.
    The count-weighted mean of the result is exactly the plain batch mean (`mtrl.combine_mean`)."""
    sums = x.new_zeros(n_tasks).index_add_(0, task, x)
    return sums / task_counts(task, n_tasks).clamp_min(1.0).to(x.dtype)


def standardize_per_task(x: torch.Tensor, task: torch.Tensor, n_tasks: int, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean_task) / (std_task + eps) inside one batch, so that no task's advantage scale dominates
    the shared policy gradient (MTBench's `actor_loss_mt`). Unbiased std as torch's default; a task with
    a single sample gets std 0 and its centred value 0."""
    counts, sums = pooled_sums(task_counts(task, n_tasks).to(x.dtype), x.new_zeros(n_tasks).index_add_(0, task, x))
    mean = sums / counts.clamp_min(1.0)
    centred = x - mean[task]
    sq = distributed.all_reduce_(x.new_zeros(n_tasks).index_add_(0, task, centred.square()))
    var = sq / (counts - 1.0).clamp_min(1.0)
    return centred / (var.sqrt()[task] + eps)


def mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased standard deviation of all of `x` (over every rank's `x` in a torchrun job)."""
    if distributed.world_size() == 1:
        return x.mean(), x.std()
    n, total = pooled_sums(x.new_tensor(float(x.numel())), x.sum())
    mean = total / n
    sq = distributed.all_reduce_((x - mean).square().sum())
    return mean, (sq / (n - 1.0).clamp_min(1.0)).sqrt()


def pooled_sums(counts: torch.Tensor, sums: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(counts, sums) each summed over the ranks, with one all-reduce (themselves in one process)."""
    if distributed.world_size() == 1:
        return counts, sums
    both = distributed.all_reduce_(torch.cat((counts.reshape(-1), sums.reshape(-1).to(counts.dtype))))
    return both[: counts.numel()].view_as(counts), both[counts.numel() :].view_as(sums).to(sums.dtype)


class TaskRunningMeanStd(nn.Module):
    """One running mean/variance per task over a feature vector (Chan's parallel update, float64).

    Buffers live in the module's state dict, so checkpoints carry the statistics with the network."""

    def __init__(self, n_tasks: int, dim: int, clip: float | None = None, eps: float = 1e-8):
        super().__init__()
        self.n_tasks, self.dim, self.clip, self.eps = n_tasks, dim, clip, eps
        self.register_buffer("mean", torch.zeros(n_tasks, dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(n_tasks, dim, dtype=torch.float64))
        self.register_buffer("count", torch.full((n_tasks,), 1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor, task: torch.Tensor) -> None:
        """Fold a batch (B, dim) with task index (B,) into every task's statistics at once."""
        x = x.to(torch.float64).reshape(-1, self.dim)
        task = task.reshape(-1)
        n, sums = pooled_sums(
            torch.bincount(task, minlength=self.n_tasks).to(torch.float64),
            x.new_zeros(self.n_tasks, self.dim).index_add_(0, task, x),
        )
        safe_n = n.clamp_min(1.0)[:, None]
        b_mean = sums / safe_n
        sq = x.new_zeros(self.n_tasks, self.dim).index_add_(0, task, (x - b_mean[task]).square())
        b_var = distributed.all_reduce_(sq) / safe_n
        total = self.count + n
        delta = b_mean - self.mean
        w = (n / total)[:, None]
        m2 = self.var * self.count[:, None] + b_var * n[:, None] + delta.square() * (self.count * n / total)[:, None]
        present = (n > 0)[:, None]
        self.mean.copy_(torch.where(present, self.mean + delta * w, self.mean))
        self.var.copy_(torch.where(present, m2 / total[:, None], self.var))
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean[task].to(x.dtype), self.var[task].to(x.dtype)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y.clamp(-self.clip, self.clip) if self.clip is not None else y

    def normalize_state(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """An observation whose first `dim` features are normalised and whose tail (the task one-hot) passes
        through unchanged, as the learners feed their networks."""
        return torch.cat((self.normalize(obs[..., : self.dim], task), obs[..., self.dim :]), dim=-1)

    def denormalize(self, y: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        if self.clip is not None:
            y = y.clamp(-self.clip, self.clip)
        mean, var = self.mean[task].to(y.dtype), self.var[task].to(y.dtype)
        return y * torch.sqrt(var + self.eps) + mean


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimates for a (T, N) rollout. `dones[t]` marks that the episode ended at
    step t (the value after it is not bootstrapped; time-outs are bootstrapped through the reward)."""
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(rewards.shape[0])):
        nonterminal = 1.0 - dones[t].to(rewards.dtype)
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
        next_value = values[t]
    return adv
