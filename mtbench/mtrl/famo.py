"""FAMO (Liu et al., 2023), fast adaptive multitask optimisation, as MTBench's PPO applies it: the critic's
per-task losses are weighted by softmax task logits so that every task's loss falls at a similar *rate*;
the logits follow the observed log-loss decreases with O(1) extra cost (no per-task gradients).

With D_i = loss_i + eps, z = softmax(w) and c = sum_i z_i / D_i (detached), the critic backpropagates
sum_i z_i log D_i / c. After each minibatch the logits take an Adam step (weight decay gamma) along the
normalised J_softmax(w)^T delta, delta_i = log D_i(previous minibatch) - log D_i(this minibatch).
"""

from __future__ import annotations

import torch


class FAMOWeights:
    """The task logits and their optimiser; `loss` weights a (n_tasks,) vector of positive losses."""

    def __init__(self, n_tasks: int, device: torch.device, gamma: float = 1e-3, w_lr: float = 1e-3, eps: float = 1e-2):
        self.eps = eps
        self.w = torch.zeros(n_tasks, device=device, requires_grad=True)
        self.opt = torch.optim.Adam([self.w], lr=w_lr, weight_decay=gamma)
        self.prev: torch.Tensor | None = None

    def loss(self, losses: torch.Tensor) -> torch.Tensor:
        D = losses + self.eps
        z = torch.softmax(self.w, dim=0).detach()
        c = (z / D).sum().detach()
        return (z * torch.log(D)).sum() / c

    @torch.no_grad()
    def update(self, losses: torch.Tensor) -> None:
        """Logit step from the previous minibatch's losses to these (before this minibatch's step)."""
        D = losses.detach() + self.eps
        if self.prev is not None:
            delta = torch.log(self.prev) - torch.log(D)
            with torch.enable_grad():
                z = torch.softmax(self.w, dim=0)
                (d,) = torch.autograd.grad(z, self.w, grad_outputs=delta)
            self.w.grad = d / d.norm().clamp_min(1e-12)
            self.opt.step()
        self.prev = D

    def state_dict(self) -> dict:
        return {"w": self.w.detach().clone(), "opt": self.opt.state_dict(), "prev": self.prev}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.opt.load_state_dict(state["opt"])
        self.prev = state["prev"]
