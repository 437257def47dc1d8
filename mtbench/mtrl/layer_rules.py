"""Per-task gradients of one call of a layer, from its inputs and the back-propagated signal at its output.

A sample's loss enters only its own task's loss, so one backward pass of Σ_t loss_t leaves at every layer output
the signal δ_i = ∂loss_{task(i)}/∂out_i of each sample i. A layer's gradient is a sum over samples of terms that
depend on the sample's input and δ_i alone, so task t's gradient is that sum over task t's samples: for a linear
layer G_t = Σ_{i∈t} δ_iᵀ x_i, one matrix product per task over the task's samples (`TaskSegments`). Together these
products cost one ordinary weight-gradient computation, and the result holds (n_tasks × parameters) numbers.

A rule maps (layer, the call's positional inputs, δ, segments) to {parameter: (n_tasks, *parameter.shape)}. Rules
are looked up by exact type: a subclass may compute something else, so it is not covered (`rule_for`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from mtbench.mtrl.segments import TaskSegments
from mtbench.nets.experts import ExpertLinear
from mtbench.nets.multihead import TaskHeads
from mtbench.nets.paco import CompositionalLinear

Grads = dict[nn.Parameter, torch.Tensor]
Rule = Callable[[nn.Module, tuple, torch.Tensor, TaskSegments], Grads]


class UncoveredLayerError(RuntimeError):
    """A parameter the scheme needs per-task gradients of is used in a way no rule covers."""


def _samples_first(x: torch.Tensor, seg: TaskSegments, what: str, dims: int = 2) -> None:
    if x.dim() != dims or x.shape[0] != seg.n_samples:
        raise UncoveredLayerError(
            f"{what}: per-task gradients need an input of {dims} dims with the {seg.n_samples} samples first, got "
            f"shape {tuple(x.shape)}"
        )


def _wanted(p: nn.Parameter | None) -> bool:
    return p is not None and p.requires_grad


PADDING_LIMIT = 2.0
"""Products run as one batched product over the padded layout while it holds at most this many times the samples
(tasks of similar size, as in every learner's minibatches); beyond, as a loop of one product per task."""


def products(a: torch.Tensor, b: torch.Tensor, seg: TaskSegments) -> torch.Tensor:
    """Σ_{i∈t} a_iᵀ b_i for samples' rows a (B, A) and b (B, C): (n_tasks, A, C)."""
    if seg.padding <= PADDING_LIMIT:
        return torch.bmm(seg.padded(a).transpose(1, 2), seg.padded(b))
    G = a.new_empty(seg.n_tasks, a.shape[1], b.shape[1])
    for t, (at, bt) in enumerate(zip(seg.groups(a), seg.groups(b))):
        torch.mm(at.T, bt, out=G[t])
    return G


def expert_products(a: torch.Tensor, b: torch.Tensor, seg: TaskSegments) -> torch.Tensor:
    """Σ_{i∈t} a_{e,i}ᵀ b_{e,i} for every expert e, a (E, B, A) and b (E, B, C): (n_tasks, E, A, C)."""
    E, _, A = a.shape
    C = b.shape[2]
    if seg.padding <= PADDING_LIMIT:
        pa = seg.padded(a, dim=1).permute(0, 2, 3, 1).reshape(seg.n_tasks * E, A, seg.longest)
        pb = seg.padded(b, dim=1).transpose(1, 2).reshape(seg.n_tasks * E, seg.longest, C)
        return torch.bmm(pa, pb).view(seg.n_tasks, E, A, C)
    G = a.new_empty(seg.n_tasks, E, A, C)
    for t, (at, bt) in enumerate(zip(seg.groups(a, dim=1), seg.groups(b, dim=1))):
        torch.bmm(at.transpose(1, 2), bt, out=G[t])
    return G


def linear(m: nn.Linear, args: tuple, delta: torch.Tensor, seg: TaskSegments) -> Grads:
    """y = x Wᵀ + b: G_W[t] = Σ_{i∈t} δ_iᵀ x_i, G_b[t] = Σ_{i∈t} δ_i."""
    (x,) = args
    _samples_first(x, seg, "nn.Linear")
    out: Grads = {}
    if _wanted(m.weight):
        out[m.weight] = products(delta, x, seg)
    if _wanted(m.bias):
        out[m.bias] = seg.sums(delta)
    return out


def layer_norm(m: nn.LayerNorm, args: tuple, delta: torch.Tensor, seg: TaskSegments) -> Grads:
    """y = x̂ ⊙ γ + β with x̂ the sample's normalised input: G_γ[t] = Σ_{i∈t} δ_i ⊙ x̂_i, G_β[t] = Σ_{i∈t} δ_i."""
    (x,) = args
    if x.shape[0] != seg.n_samples:
        raise UncoveredLayerError(f"nn.LayerNorm: the {seg.n_samples} samples must come first, got {tuple(x.shape)}")
    out: Grads = {}
    # samples first, then any further per-sample dims (summed), then the normalised shape
    fold = lambda v: v.reshape(seg.n_samples, -1, *m.normalized_shape).sum(1)  # noqa: E731
    if _wanted(m.weight):
        with torch.no_grad():
            x_hat = F.layer_norm(x.detach(), m.normalized_shape, None, None, m.eps)
        out[m.weight] = seg.sums(fold(delta * x_hat))
    if _wanted(m.bias):
        out[m.bias] = seg.sums(fold(delta))
    return out


def embedding(m: nn.Embedding, args: tuple, delta: torch.Tensor, seg: TaskSegments) -> Grads:
    """Row lookup: G[t, r] = Σ_{i∈t, idx_i = r} δ_i, as one index_add over (task, row) pairs."""
    (idx,) = args
    if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
        raise UncoveredLayerError("nn.Embedding with max_norm, scale_grad_by_freq or sparse gradients")
    if idx.shape[0] != seg.n_samples:
        raise UncoveredLayerError(f"nn.Embedding: the {seg.n_samples} samples must come first, got {tuple(idx.shape)}")
    out: Grads = {}
    if _wanted(m.weight):
        rows, dim = m.weight.shape
        per_sample = idx.reshape(seg.n_samples, -1)
        key = (seg.task[:, None] * rows + per_sample).reshape(-1)
        G = delta.new_zeros(seg.n_tasks * rows, dim).index_add_(0, key, delta.reshape(-1, dim))
        G = G.view(seg.n_tasks, rows, dim)
        if m.padding_idx is not None:
            G[:, m.padding_idx] = 0.0
        out[m.weight] = G
    return out


def expert_linear(m: ExpertLinear, args: tuple, delta: torch.Tensor, seg: TaskSegments) -> Grads:
    """E linear layers, y_e = x_e W_e + b_e with x (B, in) shared by the experts or (E, B, in), δ (E, B, out):
    G_W[t, e] = Σ_{i∈t} x_{e,i}ᵀ δ_{e,i}, G_b[t, e] = Σ_{i∈t} δ_{e,i}."""
    (x,) = args
    E, d_in, d_out = m.weight.shape
    out: Grads = {}
    if _wanted(m.weight):
        if x.dim() == 2:  # one input for every expert: a single product against all experts' signals
            _samples_first(x, seg, "ExpertLinear")
            G = products(x, delta.transpose(0, 1).reshape(seg.n_samples, E * d_out), seg)
            out[m.weight] = G.view(seg.n_tasks, d_in, E, d_out).transpose(1, 2).contiguous()
        else:
            if x.dim() != 3 or x.shape[1] != seg.n_samples:
                raise UncoveredLayerError(f"ExpertLinear: input (E, {seg.n_samples}, in) wanted, got {tuple(x.shape)}")
            out[m.weight] = expert_products(x, delta, seg)
    if _wanted(m.bias):
        out[m.bias] = seg.sums(delta, dim=1).unsqueeze(2)  # (T, E, 1, out)
    return out


def task_heads(m: TaskHeads, args: tuple, delta: torch.Tensor, seg: TaskSegments) -> Grads:
    """Sample i goes through head `idx_i`, its own task's: task t's gradient lives in head t alone,
    G_W[t, t] = Σ_{i∈t} x_iᵀ δ_i and G_b[t, t] = Σ_{i∈t} δ_i, every other head 0."""
    x, idx = args
    _samples_first(x, seg, "TaskHeads")
    if idx.shape != seg.task.shape or not torch.equal(idx, seg.task):
        raise UncoveredLayerError("TaskHeads picked by something other than each sample's own task")
    heads = m.weight.shape[0]
    if heads != seg.n_tasks:
        raise UncoveredLayerError(f"TaskHeads has {heads} heads for {seg.n_tasks} tasks")
    out: Grads = {}
    rows = torch.arange(seg.n_tasks, device=delta.device)
    if _wanted(m.weight):
        G = x.new_zeros(seg.n_tasks, *m.weight.shape)
        G[rows, rows] = products(x, delta, seg)
        out[m.weight] = G
    if _wanted(m.bias):
        G = delta.new_zeros(seg.n_tasks, *m.bias.shape)
        G[rows, rows] = seg.sums(delta)
        out[m.bias] = G
    return out


def compositional_linear(m: CompositionalLinear, args: tuple, delta: torch.Tensor, seg: TaskSegments) -> Grads:
    """y = Σ_k w_k (x V_k + b_k) with the sample's mix w (B, K): G_V[t, k] = Σ_{i∈t} w_{ik} x_iᵀ δ_i and
    G_b[t, k] = Σ_{i∈t} w_{ik} δ_i.

    When every sample of a task has the same mix (PaCo: w = softmax of the task's logits), G_V[t, k] = w_{tk}
    Σ_{i∈t} x_iᵀ δ_i: one product per task instead of K. Otherwise the mix is applied on the narrower side of each
    task's product, (n, K·in) or (n, K·out), as in the forward pass (cost B·K·in·out, the forward's)."""
    x, w = args
    _samples_first(x, seg, "CompositionalLinear")
    _samples_first(w, seg, "CompositionalLinear (mix)")
    K, d_in, d_out = m.weight.shape
    w = w.detach()
    w_task = _per_task_constant(w, seg)
    out: Grads = {}
    if _wanted(m.weight):
        if w_task is not None:
            out[m.weight] = w_task[:, :, None, None] * products(x, delta, seg)[:, None]
        else:
            G = x.new_empty(seg.n_tasks, K, d_in, d_out)
            for t, (xt, wt, dt) in enumerate(zip(seg.groups(x), seg.groups(w), seg.groups(delta))):
                n = xt.shape[0]
                if d_in <= d_out:
                    mixed = (wt[:, :, None] * xt[:, None, :]).reshape(n, K * d_in)
                    torch.mm(mixed.T, dt, out=G[t].view(K * d_in, d_out))
                else:
                    mixed = (wt[:, :, None] * dt[:, None, :]).reshape(n, K * d_out)
                    G[t] = (xt.T @ mixed).view(d_in, K, d_out).transpose(0, 1)
            out[m.weight] = G
    if _wanted(m.bias):
        if w_task is not None:
            out[m.bias] = w_task[:, :, None] * seg.sums(delta)[:, None, :]
        else:
            out[m.bias] = products(w, delta, seg)
    return out


def _per_task_constant(w: torch.Tensor, seg: TaskSegments) -> torch.Tensor | None:
    """(n_tasks, K): each task's one row of w when all its samples' rows are equal (absent tasks: 0), else None."""
    rows = w.new_zeros(seg.n_tasks, w.shape[1])
    rows[seg.task] = w  # any of a task's rows lands here; the check below decides whether that is all of them
    return rows if torch.equal(rows[seg.task], w) else None


RULES: dict[type, Rule] = {
    nn.Linear: linear,
    nn.LayerNorm: layer_norm,
    nn.Embedding: embedding,
    ExpertLinear: expert_linear,
    TaskHeads: task_heads,
    CompositionalLinear: compositional_linear,
}
"""The layer types whose per-task gradients are computed from one backward pass, by exact type."""


def rule_for(module: nn.Module) -> Rule | None:
    return RULES.get(type(module))


def broadcast(delta: torch.Tensor, seg: TaskSegments) -> torch.Tensor:
    """A parameter broadcast to every sample, (B, *shape) = p.expand(...) (e.g. a state-independent log-std):
    G[t] = Σ_{i∈t} δ_i."""
    return seg.sums(delta)
