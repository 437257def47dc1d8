"""Gradient schemes: how per-task losses become one update of the shared parameters.

A scheme sees only per-task loss vectors `(n_tasks,)`, the number of samples behind each entry, and the
actor and critic parameter groups; it leaves gradients in `.grad`. The learner then clips and steps.
"""

from __future__ import annotations

import torch


def combine_mean(per_task: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The plain minibatch mean recovered from per-task means (count-weighted)."""
    return (per_task * counts).sum() / counts.sum()


class MeanScheme:
    """No MTRL scheme: the gradient of the plain minibatch-mean loss, exactly as single-task PPO."""

    name = "none"

    def backward(
        self,
        actor_losses: torch.Tensor,
        critic_losses: torch.Tensor,
        counts: torch.Tensor,
        actor_params: list[torch.nn.Parameter],
        critic_params: list[torch.nn.Parameter],
    ) -> torch.Tensor:
        total = combine_mean(actor_losses, counts) + combine_mean(critic_losses, counts)
        total.backward()
        return total.detach()


SCHEMES = {"none": MeanScheme}


def make_scheme(name: str, **kwargs) -> MeanScheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}; available: {', '.join(sorted(SCHEMES))}")
    return SCHEMES[name](**kwargs)
