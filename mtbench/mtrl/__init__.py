"""Gradient schemes: how per-task losses become one update of the shared parameters.

A scheme sees only per-task loss vectors `(n_tasks,)`, the number of samples behind each entry, and the
actor and critic parameter groups; it leaves gradients in `.grad`. The learner then clips and steps.
Schemes that manipulate gradients apply to the critic, the actor or both (`apply_to`; default "critic" as
upstream MTBench); the untouched part gets the plain mean-loss gradient. The critic losses a scheme sees
already carry PPO's 0.5 * critic_coef factor (upstream's PCGrad/CAGrad project the raw value loss; the
directions are the same, the critic gradient is scaled by that constant).
"""

from __future__ import annotations

from typing import Literal

import torch

from mtbench.mtrl.cagrad import cagrad
from mtbench.mtrl.famo import FAMOWeights
from mtbench.mtrl.grads import add_flat_grad, task_gradients
from mtbench.mtrl.pcgrad import pcgrad
from mtbench.validation import NonNegFloat, PosFloat

APPLY_TO = ("critic", "actor", "both")


def combine_mean(per_task: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The plain minibatch mean recovered from per-task means (count-weighted)."""
    return (per_task * counts).sum() / counts.sum()


class MeanScheme:
    """No MTRL scheme: the gradient of the plain minibatch-mean loss, exactly as single-task PPO."""

    name = "none"

    def backward(self, actor_losses, critic_losses, counts, actor_params, critic_params) -> torch.Tensor:
        total = combine_mean(actor_losses, counts) + combine_mean(critic_losses, counts)
        total.backward()
        return total.detach()

    def backward_part(self, part: str, losses: torch.Tensor, counts: torch.Tensor, params: list) -> torch.Tensor:
        """One parameter group alone (`part` "actor" or "critic"), for learners that step their actor and critic
        apart (SAC): the same rule as `backward` restricted to that group."""
        total = combine_mean(losses, counts)
        total.backward()
        return total.detach()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _GradientScheme(MeanScheme):
    """Per-task gradients of the chosen group(s) combined by `combine`; the rest by the plain mean."""

    def __init__(self, apply_to: Literal[APPLY_TO] = "critic"):
        if apply_to not in APPLY_TO:
            raise ValueError(f"apply_to must be one of {APPLY_TO}, got {apply_to!r}")
        self.apply_to = apply_to

    def combine(self, G: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, actor_losses, critic_losses, counts, actor_params, critic_params) -> torch.Tensor:
        parts = {"actor": (actor_losses, actor_params), "critic": (critic_losses, critic_params)}
        chosen = ("actor", "critic") if self.apply_to == "both" else (self.apply_to,)
        grads = [(parts[k][1], self.combine(task_gradients(parts[k][0], parts[k][1]))) for k in chosen]
        plain = [combine_mean(parts[k][0], counts) for k in parts if k not in chosen]
        if plain:
            sum(plain).backward()
        for params, g in grads:
            add_flat_grad(params, g)
        return (combine_mean(actor_losses, counts) + combine_mean(critic_losses, counts)).detach()

    def backward_part(self, part: str, losses: torch.Tensor, counts: torch.Tensor, params: list) -> torch.Tensor:
        if self.apply_to not in (part, "both"):
            return super().backward_part(part, losses, counts, params)
        add_flat_grad(params, self.combine(task_gradients(losses, params)))
        return combine_mean(losses, counts).detach()


class PCGradScheme(_GradientScheme):
    name = "pcgrad"

    def __init__(self, apply_to: Literal[APPLY_TO] = "critic", generator: torch.Generator | None = None):
        super().__init__(apply_to)
        self.gen = generator

    def combine(self, G: torch.Tensor) -> torch.Tensor:
        return pcgrad(G, self.gen)


class CAGradScheme(_GradientScheme):
    name = "cagrad"

    def __init__(self, apply_to: Literal[APPLY_TO] = "critic", c: NonNegFloat = 0.4):
        super().__init__(apply_to)
        self.c = c

    def combine(self, G: torch.Tensor) -> torch.Tensor:
        return cagrad(G, self.c)


class FAMOScheme(MeanScheme):
    """One part's per-task losses weighted by FAMO, the rest by the plain mean: upstream's PPO variant weights the
    critic's; a learner without a critic (GRPO) weights its actor's, made positive first (`positive_losses`)."""

    name = "famo"
    positive_losses = True
    """FAMO weights log-losses: a learner whose losses can be negative must make them positive first."""

    def __init__(
        self,
        n_tasks: int,
        device: torch.device,
        gamma: NonNegFloat = 1e-3,
        w_lr: PosFloat = 1e-3,
        eps: PosFloat = 1e-2,
        apply_to: Literal["critic", "actor"] = "critic",
    ):
        if apply_to not in ("critic", "actor"):
            raise ValueError(f"FAMO's apply_to must be 'critic' or 'actor', got {apply_to!r}")
        self.apply_to = apply_to
        self.weights = FAMOWeights(n_tasks, device, gamma, w_lr, eps)

    def backward(self, actor_losses, critic_losses, counts, actor_params, critic_params) -> torch.Tensor:
        if self.apply_to != "critic":
            raise ValueError("FAMO on an actor-critic weights the critic's (positive) losses: scheme.apply_to=critic")
        torch._assert_async(counts.min() > 0, "FAMO needs every task in every minibatch; raise minibatch_size")
        total = combine_mean(actor_losses, counts) + self.weights.loss(critic_losses)
        total.backward()
        self.weights.update(critic_losses)
        return total.detach()

    def backward_part(self, part: str, losses: torch.Tensor, counts: torch.Tensor, params: list) -> torch.Tensor:
        if part != self.apply_to:
            return super().backward_part(part, losses, counts, params)
        torch._assert_async(counts.min() > 0, "FAMO needs every task in every minibatch; raise the batch size")
        total = self.weights.loss(losses)
        total.backward()
        self.weights.update(losses)
        return total.detach()

    def state_dict(self) -> dict:
        return self.weights.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.weights.load_state_dict(state)


SCHEMES = {"none": MeanScheme, "pcgrad": PCGradScheme, "cagrad": CAGradScheme, "famo": FAMOScheme}


def make_scheme(name: str, n_tasks: int, device: torch.device, generator: torch.Generator | None = None, **kw):
    """Build scheme `name` with its settings `kw` (e.g. apply_to, gamma, w_lr, eps)."""
    if name == "none":
        return MeanScheme()
    if name == "pcgrad":
        return PCGradScheme(generator=generator, **kw)
    if name == "cagrad":
        return CAGradScheme(**kw)
    if name == "famo":
        return FAMOScheme(n_tasks, device, **kw)
    raise ValueError(f"unknown scheme {name!r}; available: {', '.join(sorted(SCHEMES))}")
