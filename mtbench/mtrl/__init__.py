"""Gradient schemes: how per-task losses become one update of the network's parameters.

A scheme sees per-task loss vectors `(n_tasks,)`, the number of samples behind each entry, and parameter lists; it
leaves gradients in `.grad`. The learner then clips and steps.

Parts and shared parameters. A learner's loss has parts, the actor's and the critic's (SAC, GRPO and PQN hand one
part at a time to `backward_part`). A scheme that manipulates gradients applies to the critic part, the actor part
or both (`apply_to`; default "critic" as upstream MTBench). A part is a *loss*, not a parameter group: the scheme
takes the per-task gradients of the part it applies to over every parameter that part's losses reach, its own and
any it shares with the other part (PaCo's trunk and task logits), and combines them; a part it does not apply to
contributes the gradient of its plain mean loss. A shared parameter therefore gets both gradients, each part's
in its own way, exactly as a plain backward pass of the sum would give it both. (Upstream MTBench splits by
parameter name and gives the shared trunk no value-loss gradient at all under PCGrad/CAGrad.)

Per-task gradients cost one backward pass (`task_gradients="layers"`, the default): the learner runs its forward
pass inside `scheme.recording(module, task)` and the layer rules turn the recorded layers' inputs and back-
propagated signals into per-task gradients (mtbench.mtrl.recording). `"autograd"` takes one backward pass per task
instead, for a network with a layer no rule covers (which the default refuses loudly).

The critic losses a scheme sees already carry PPO's 0.5 * critic_coef factor (upstream's PCGrad/CAGrad project
the raw value loss; the directions are the same, the critic gradient is scaled by that constant).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Literal

import torch
from torch import nn

from mtbench import distributed
from mtbench.mtrl.cagrad import MAX_ITERATIONS, TOLERANCE, cagrad_coefficients, solve_cagrad
from mtbench.mtrl.famo import LOSS_CHANGES, FAMOWeights
from mtbench.mtrl.grads import TaskGradients, accumulate_grads, autograd_task_gradients
from mtbench.mtrl.pcgrad import pcgrad_weights
from mtbench.mtrl.recording import LayerTape
from mtbench.validation import NonNegFloat, PosFloat, PosInt

APPLY_TO = ("critic", "actor", "both")
TASK_GRADIENTS = ("layers", "autograd")


def combine_mean(per_task: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The plain minibatch mean recovered from per-task means (count-weighted)."""
    return (per_task * counts).sum() / counts.sum()


def _unique(params: list[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    return [p for p in params if not (id(p) in seen or seen.add(id(p)))]


class MeanScheme:
    """No MTRL scheme: the gradient of the plain minibatch-mean loss, exactly as single-task PPO.

    Also the learner's interface of every scheme: `recording` around the forward pass, `backward` or
    `backward_part`, and `forget` / `after_step` / `metrics` for the schemes that keep a loss history."""

    name = "none"
    wants_losses_after_step = False
    """True when the learner must re-evaluate the part's losses on the same minibatch after its optimiser step and
    hand them to `after_step` (FAMO's after_step form)."""

    def recording(self, module: nn.Module, task: torch.Tensor, part: str | None = None) -> AbstractContextManager:
        """Wrap the forward pass (and loss) of `module` over samples of tasks `task` (B,) that the next backward
        needs per-task gradients of; `part` (actor/critic) when the forward serves one part only."""
        return nullcontext()

    def backward(self, actor_losses, critic_losses, counts, actor_params, critic_params) -> torch.Tensor:
        """Gradients of the actor's and the critic's losses into `.grad` of their parameters (summed over the ranks
        of a torchrun job, `mtbench.distributed`); returns the loss (this rank's share of it in a torchrun job)."""
        N = distributed.global_counts(counts)
        a, c = distributed.share(actor_losses, counts, N), distributed.share(critic_losses, counts, N)
        total = combine_mean(a, N) + combine_mean(c, N)
        total.backward()
        distributed.sum_grads(_unique([*actor_params, *critic_params]))
        return total.detach()

    def backward_part(self, part: str, losses: torch.Tensor, counts: torch.Tensor, params: list) -> torch.Tensor:
        """One parameter group alone (`part` "actor" or "critic"), for learners that step their actor and critic
        apart (SAC): the same rule as `backward` restricted to that group."""
        N = distributed.global_counts(counts)
        total = combine_mean(distributed.share(losses, counts, N), N)
        total.backward()
        distributed.sum_grads(_unique(list(params)))
        return total.detach()

    def forget(self) -> None:
        """The learner's targets changed (a new rollout, refit normalisers): losses seen so far are no reference."""

    def after_step(self, losses: torch.Tensor) -> None:
        """The scheme's part's per-task losses on the same minibatch after the optimiser step."""

    def metrics(self) -> dict[str, torch.Tensor]:
        """Scheme diagnostics since the last call (e.g. CAGrad's solver iterations), for the learner's log."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _GradientScheme(MeanScheme):
    """Per-task gradients of the chosen part(s), combined as Σ_t β_t g_t with β from their Gram matrix (`weights`);
    a part not chosen by its plain mean. See the module docstring for shared parameters."""

    def __init__(self, apply_to: Literal[APPLY_TO] = "critic", task_gradients: Literal[TASK_GRADIENTS] = "layers"):
        if apply_to not in APPLY_TO:
            raise ValueError(f"apply_to must be one of {APPLY_TO}, got {apply_to!r}")
        if task_gradients not in TASK_GRADIENTS:
            raise ValueError(f"task_gradients must be one of {TASK_GRADIENTS}, got {task_gradients!r}")
        self.apply_to = apply_to
        self.parts = ("actor", "critic") if apply_to == "both" else (apply_to,)
        self.tape = LayerTape() if task_gradients == "layers" else None

    def weights(self, GG: torch.Tensor) -> torch.Tensor:
        """β (n_tasks,) from the Gram matrix of the task gradients (n_tasks, n_tasks)."""
        raise NotImplementedError

    def recording(self, module: nn.Module, task: torch.Tensor, part: str | None = None) -> AbstractContextManager:
        if self.tape is None or (part is not None and part not in self.parts):
            return nullcontext()
        return self.tape.record(module, task)

    def task_gradients(self, losses: torch.Tensor, params: list[nn.Parameter]) -> TaskGradients:
        """Each task's gradient of `losses`: from the recorded forward pass when there is one, else one backward
        pass per task (exact either way)."""
        if self.tape is not None and self.tape.recorded:
            return self.tape.task_gradients(losses, params)
        return autograd_task_gradients(losses, params)

    def _combined(self, losses: torch.Tensor, params: list[nn.Parameter]) -> dict[nn.Parameter, torch.Tensor]:
        """Σ_t β_t g_t of the task gradients of `losses` (in a torchrun job: of the big batch, every rank's task
        gradient matrix summed first, and rank 0's β used by all, as PCGrad draws its task order at random)."""
        tg = self.task_gradients(losses, params)
        if not tg.blocks:
            return {}
        if distributed.world_size() > 1:
            _sum_blocks(tg)
            return tg.combine(distributed.broadcast_(self.weights(tg.gram()).contiguous()))
        return tg.combine(self.weights(tg.gram()))

    def backward(self, actor_losses, critic_losses, counts, actor_params, critic_params) -> torch.Tensor:
        N = distributed.global_counts(counts)
        share = lambda x: distributed.share(x, counts, N)  # noqa: E731
        losses = {"actor": share(actor_losses), "critic": share(critic_losses)}
        every = _unique([*actor_params, *critic_params])
        combined = [self._combined(losses[k], every) for k in self.parts]
        plain = [combine_mean(losses[k], N) for k in losses if k not in self.parts]
        if plain:
            sum(plain).backward()
            distributed.sum_grads(every)  # the plain part's; the combined ones are already the big batch's
        for grads in combined:
            accumulate_grads(grads)
        self._done()
        return (combine_mean(losses["actor"], N) + combine_mean(losses["critic"], N)).detach()

    def backward_part(self, part: str, losses: torch.Tensor, counts: torch.Tensor, params: list) -> torch.Tensor:
        if part not in self.parts:
            return super().backward_part(part, losses, counts, params)
        N = distributed.global_counts(counts)
        losses = distributed.share(losses, counts, N)
        accumulate_grads(self._combined(losses, _unique(params)))
        self._done()
        return combine_mean(losses, N).detach()

    def _done(self) -> None:
        if self.tape is not None:
            self.tape.clear()


class PCGradScheme(_GradientScheme):
    name = "pcgrad"

    def __init__(
        self,
        apply_to: Literal[APPLY_TO] = "critic",
        generator: torch.Generator | None = None,
        task_gradients: Literal[TASK_GRADIENTS] = "layers",
    ):
        super().__init__(apply_to, task_gradients)
        self.gen = generator

    def weights(self, GG: torch.Tensor) -> torch.Tensor:
        return pcgrad_weights(GG, self.gen)


class CAGradScheme(_GradientScheme):
    name = "cagrad"

    def __init__(
        self,
        apply_to: Literal[APPLY_TO] = "critic",
        c: NonNegFloat = 0.4,
        tol: PosFloat = TOLERANCE,
        max_iterations: PosInt = MAX_ITERATIONS,
        task_gradients: Literal[TASK_GRADIENTS] = "layers",
    ):
        super().__init__(apply_to, task_gradients)
        self.c, self.tol, self.max_iterations = c, tol, max_iterations
        self._solves = [0, 0, 0, 0.0]  # since the last `metrics`: solves, iterations, most iterations, largest gap

    def weights(self, GG: torch.Tensor) -> torch.Tensor:
        sol = solve_cagrad(GG, self.c, self.tol, self.max_iterations)
        n, its, most, gap = self._solves
        self._solves = [n + 1, its + sol.iterations, max(most, sol.iterations), max(gap, sol.gap)]
        return cagrad_coefficients(GG, sol.weights, self.c).to(GG.device)

    def metrics(self) -> dict[str, torch.Tensor]:
        """Mean solver iterations per update, the most of them, and the largest final Frank-Wolfe gap (the solver
        stops at `tol` or after `max_iterations`)."""
        n, its, most, gap = self._solves
        if not n:
            return {}
        self._solves = [0, 0, 0, 0.0]
        return {
            "cagrad/iterations": torch.tensor(its / n),
            "cagrad/iterations_max": torch.tensor(float(most)),
            "cagrad/gap_max": torch.tensor(gap),
        }


class FAMOScheme(MeanScheme):
    """One part's per-task losses weighted by FAMO, the rest by the plain mean: upstream's PPO variant weights the
    critic's; a learner without a critic (GRPO) weights its actor's, made positive first (`positive_losses`).
    The one backward pass of the weighted sum gives shared parameters both parts' gradients."""

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
        loss_change: Literal[LOSS_CHANGES] = "previous_minibatch",
    ):
        if apply_to not in ("critic", "actor"):
            raise ValueError(f"FAMO's apply_to must be 'critic' or 'actor', got {apply_to!r}")
        self.apply_to = apply_to
        self.weights = FAMOWeights(n_tasks, device, gamma, w_lr, eps, loss_change)

    @property
    def wants_losses_after_step(self) -> bool:
        return self.weights.loss_change == "after_step"

    def backward(self, actor_losses, critic_losses, counts, actor_params, critic_params) -> torch.Tensor:
        if self.apply_to != "critic":
            raise ValueError("FAMO on an actor-critic weights the critic's (positive) losses: scheme.apply_to=critic")
        N = distributed.global_counts(counts)
        torch._assert_async(N.min() > 0, "FAMO needs every task in every minibatch; raise minibatch_size")
        total = combine_mean(distributed.share(actor_losses, counts, N), N) + self._weighted(critic_losses, counts, N)
        total.backward()
        distributed.sum_grads(_unique([*actor_params, *critic_params]))
        return total.detach()

    def backward_part(self, part: str, losses: torch.Tensor, counts: torch.Tensor, params: list) -> torch.Tensor:
        if part != self.apply_to:
            return super().backward_part(part, losses, counts, params)
        N = distributed.global_counts(counts)
        torch._assert_async(N.min() > 0, "FAMO needs every task in every minibatch; raise the batch size")
        total = self._weighted(losses, counts, N)
        total.backward()
        distributed.sum_grads(_unique(list(params)))
        return total.detach()

    def _weighted(self, losses: torch.Tensor, counts: torch.Tensor, N: torch.Tensor) -> torch.Tensor:
        """FAMO's loss of this minibatch's per-task losses, and the logit update from them. In a torchrun job the
        logits follow the big batch's per-task losses (equal on every rank) and this rank's shares carry the
        gradient; `after_step` pools its losses with the same counts."""
        if distributed.world_size() == 1:
            total = self.weights.loss(losses)
            self.weights.update(losses)
            return total
        shares = distributed.share(losses, counts, N)
        whole = distributed.pooled(shares)
        self._pool = (counts, N)
        total = self.weights.loss(shares, pooled=whole)
        self.weights.update(whole)
        return total

    def forget(self) -> None:
        self.weights.forget()

    def after_step(self, losses: torch.Tensor) -> None:
        if not self.wants_losses_after_step:
            return
        if distributed.world_size() > 1:
            counts, N = self._pool
            losses = distributed.pooled(distributed.share(losses, counts, N))
        self.weights.update_after_step(losses)

    def state_dict(self) -> dict:
        return self.weights.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.weights.load_state_dict(state)


def _sum_blocks(tg: TaskGradients) -> None:
    """Every rank's task gradients summed (one flat all-reduce): the big batch's (n_tasks, P) matrix."""
    blocks = list(tg.blocks.values())
    flat = distributed.all_reduce_(torch.cat([g.reshape(-1) for g in blocks]))
    offset = 0
    for p, g in list(tg.blocks.items()):
        tg.blocks[p] = flat[offset : offset + g.numel()].view_as(g)
        offset += g.numel()


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
