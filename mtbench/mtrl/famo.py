"""FAMO (Liu et al., 2023), fast adaptive multitask optimisation, as MTBench's PPO applies it: the critic's
per-task losses are weighted by softmax task logits so that every task's loss falls at a similar *rate*;
the logits follow the observed log-loss decreases with O(1) extra cost (no per-task gradients).

With D_i = loss_i + eps, z = softmax(w) and c = sum_i z_i / D_i (detached), the critic backpropagates
sum_i z_i log D_i / c. The logits then take an Adam step (weight decay gamma) along J_softmax(w)^T delta, where
delta_i is the decrease of log D_i that the learning produced. Two forms measure that decrease:

- `previous_minibatch` (upstream MTBench, what the paper's Table 1 measured; the default): delta_i =
  log D_i(previous minibatch) - log D_i(this minibatch), taken when this minibatch's losses are known (before its
  step), and J^T delta normalised to unit norm. Two minibatches hold different samples, and when the targets
  themselves change between them (a new rollout, a refit value normaliser) the difference is not learning: the
  learner calls `forget` there, and the next minibatch only records its losses.
- `after_step` (the FAMO paper's official code): delta_i = log D_i(this minibatch, before the step) -
  log D_i(the same minibatch, after the step), the learner re-evaluating the losses after its optimiser step;
  J^T delta is not normalised.
"""

from __future__ import annotations

from typing import Literal

import torch

LOSS_CHANGES = ("previous_minibatch", "after_step")


class FAMOWeights:
    """The task logits and their optimiser; `loss` weights a (n_tasks,) vector of positive losses."""

    def __init__(
        self,
        n_tasks: int,
        device: torch.device,
        gamma: float = 1e-3,
        w_lr: float = 1e-3,
        eps: float = 1e-2,
        loss_change: Literal[LOSS_CHANGES] = "previous_minibatch",
    ):
        if loss_change not in LOSS_CHANGES:
            raise ValueError(f"FAMO's loss_change must be one of {LOSS_CHANGES}, got {loss_change!r}")
        self.eps = eps
        self.loss_change = loss_change
        self.w = torch.zeros(n_tasks, device=device, requires_grad=True)
        self.opt = torch.optim.Adam([self.w], lr=w_lr, weight_decay=gamma)
        self.prev: torch.Tensor | None = None  # log-loss reference: D of the previous minibatch, or of this one

    def loss(self, losses: torch.Tensor, pooled: torch.Tensor | None = None) -> torch.Tensor:
        """Σ z_i log D_i / c. With `pooled` (a torchrun job: `losses` are this rank's shares of the big batch's
        per-task losses, `pooled` those losses), the linear form Σ z_i losses_i / (D_i c) with D from `pooled`,
        whose gradient summed over the ranks is the gradient of Σ z_i log D_i / c at the big batch's D."""
        z = torch.softmax(self.w, dim=0).detach()
        if pooled is not None:
            D = pooled.detach() + self.eps
            return (z * losses / D).sum() / (z / D).sum()
        D = losses + self.eps
        c = (z / D).sum().detach()
        return (z * torch.log(D)).sum() / c

    @torch.no_grad()
    def update(self, losses: torch.Tensor) -> None:
        """This minibatch's losses, before its step: the `previous_minibatch` form steps the logits from the last
        minibatch's losses to these; the `after_step` form keeps them for `update_after_step`."""
        D = losses.detach() + self.eps
        if self.loss_change == "previous_minibatch" and self.prev is not None:
            self._step(torch.log(self.prev) - torch.log(D), normalise=True)
        self.prev = D

    @torch.no_grad()
    def update_after_step(self, losses: torch.Tensor) -> None:
        """The same minibatch's losses after the optimiser step (`after_step` form): step the logits."""
        if self.loss_change != "after_step":
            raise RuntimeError("update_after_step belongs to FAMO's after_step form")
        if self.prev is None:
            raise RuntimeError("FAMO.update_after_step without the losses before the step (call update first)")
        self._step(torch.log(self.prev) - torch.log(losses.detach() + self.eps), normalise=False)
        self.prev = None

    def forget(self) -> None:
        """The targets changed (new data, refit normalisers): no loss seen so far is comparable with the next."""
        self.prev = None

    def _step(self, delta: torch.Tensor, normalise: bool) -> None:
        with torch.enable_grad():
            z = torch.softmax(self.w, dim=0)
            (d,) = torch.autograd.grad(z, self.w, grad_outputs=delta)
        self.w.grad = d / d.norm().clamp_min(1e-12) if normalise else d
        self.opt.step()

    def state_dict(self) -> dict:
        return {"w": self.w.detach().clone(), "opt": self.opt.state_dict(), "prev": self.prev}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.opt.load_state_dict(state["opt"])
        self.prev = state["prev"]
