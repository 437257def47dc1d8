"""Per-task gradients from one backward pass: record the forward pass layer by layer, then apply the layer rules.

`LayerTape.record(module, task)` wraps the forward pass (and the loss computation) of one minibatch. It keeps,
for every call of a covered layer (`mtbench.mtrl.layer_rules.RULES`) inside `module`, the call's inputs and
output, and for every parameter broadcast to the samples outside a layer (a state-independent log-std,
`p.expand_as(mu)`) the broadcast tensor. `task_gradients(losses, params)` then asks autograd for the signal at
those outputs only (no weight gradients are formed), and each rule turns its layer's inputs and signal into
per-task gradients.

Never a silent wrong answer: while recording, every differentiable use of one of `module`'s parameters is
watched (a `TorchFunctionMode`). A use inside its own covered layer is the rule's; a broadcast over the samples
is recorded; anything else (a layer type without a rule, a parameter used outside its layer) raises
`UncoveredLayerError` at once, naming the parameter. And at backward time a parameter the losses reach that no
record covers is an error too.

Assumption, true of every learner here: each sample's forward pass reads no other sample (no batch norm), so
sample i's outputs reach only the loss of its own task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from mtbench.mtrl.grads import TaskGradients
from mtbench.mtrl.layer_rules import RULES, UncoveredLayerError, broadcast, rule_for
from mtbench.mtrl.segments import TaskSegments

BROADCASTS = {torch.Tensor.expand, torch.Tensor.expand_as, torch.Tensor.broadcast_to, torch.broadcast_to}
COVERED = ", ".join(sorted(t.__name__ for t in RULES))


@dataclass
class LayerCall:
    """One recorded use: a covered layer's call (`module`, its inputs `args`), or a parameter `param` broadcast
    to the samples (`module` None); `output` is what the signal is asked for."""

    module: nn.Module | None
    args: tuple
    output: torch.Tensor
    param: nn.Parameter | None = None

    def __post_init__(self):
        self.version = self.output._version  # an in-place change after the call would make its signal another's


class _Watch(TorchFunctionMode):
    """Sees every torch call of the recorded forward pass; see the module docstring."""

    def __init__(self, tape: LayerTape, root: nn.Module, n_samples: int):
        super().__init__()
        self.tape, self.n_samples = tape, n_samples
        self.names = {id(p): name for name, p in root.named_parameters()}
        self.owner = {id(p): m for m in root.modules() for p in m.parameters(recurse=False)}
        self.running: list[nn.Module] = []  # covered layers whose forward is under way

    def enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if kwargs:
            raise UncoveredLayerError(f"{type(module).__name__} called with keyword inputs {sorted(kwargs)}")
        self.running.append(module)

    def leave(self, module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> None:
        self.running.pop()
        if isinstance(output, torch.Tensor) and output.requires_grad:
            self.tape.calls.append(LayerCall(module, args, output))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not _differentiable(out):
            return out  # nothing differentiable comes of it (metadata, no_grad, detached)
        used = [a for a in _tensors(args, kwargs) if id(a) in self.names]
        if not used:
            return out
        if self.running:
            layer = self.running[-1]
            stray = [a for a in used if self.owner[id(a)] is not layer]
            if stray:
                raise UncoveredLayerError(
                    f"{type(layer).__name__} uses parameter '{self.names[id(stray[0])]}' of another module: "
                    "per-task gradients by layer rules cannot cover it; use scheme.task_gradients=autograd"
                )
            return out
        p = used[0]
        if func in BROADCASTS and len(used) == 1 and args and args[0] is p and out.shape == (self.n_samples, *p.shape):
            self.tape.calls.append(LayerCall(None, (), out, param=p))
            return out
        owner = type(self.owner[id(p)]).__name__
        raise UncoveredLayerError(
            f"parameter '{self.names[id(p)]}' (of {owner}) is used by {getattr(func, '__name__', func)} outside a "
            f"layer with a per-task gradient rule ({COVERED}, or a broadcast over the samples). Add a rule to "
            "mtbench/mtrl/layer_rules.py, or use scheme.task_gradients=autograd (one backward pass per task)."
        )


def _differentiable(out) -> bool:
    if isinstance(out, torch.Tensor):
        return out.requires_grad
    return isinstance(out, (tuple, list)) and any(_differentiable(o) for o in out)


def _tensors(args: tuple, kwargs: dict) -> Iterator[torch.Tensor]:
    """The tensor arguments of a call, one level of lists and tuples deep (torch.cat, torch.stack)."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            yield a
        elif isinstance(a, (tuple, list)):
            yield from (b for b in a if isinstance(b, torch.Tensor))


class LayerTape:
    """The recorded calls of the last forward pass; `task_gradients` consumes them, `clear` forgets them."""

    def __init__(self):
        self.calls: list[LayerCall] = []
        self.task: torch.Tensor | None = None
        self.tracked: set[int] = set()

    @property
    def recorded(self) -> bool:
        return self.task is not None

    @contextmanager
    def record(self, module: nn.Module, task: torch.Tensor) -> Iterator[LayerTape]:
        """Record the forward pass of `module` over samples of tasks `task` (B,) run inside this context."""
        self.clear()
        self.task = task
        self.tracked = {id(p) for p in module.parameters()}
        watch = _Watch(self, module, task.shape[0])
        handles = []
        for m in module.modules():
            if rule_for(m) is not None:
                handles.append(m.register_forward_pre_hook(watch.enter, with_kwargs=True))
                handles.append(m.register_forward_hook(watch.leave, with_kwargs=True))
        try:
            with watch:
                yield self
        finally:
            for h in handles:
                h.remove()

    def clear(self) -> None:
        self.calls, self.task, self.tracked = [], None, set()

    def task_gradients(self, losses: torch.Tensor, params: list[nn.Parameter]) -> TaskGradients:
        """Each task's gradient of `losses` (n_tasks,) w.r.t. `params`, from one pass of autograd for the signals
        at the recorded outputs. The graph is kept (another part may still back-propagate through it)."""
        n_tasks = losses.shape[0]
        outside = [p for p in params if id(p) not in self.tracked]
        if outside:
            raise ValueError(f"{len(outside)} parameter(s) are outside the recorded module: record the one they are in")
        wanted = {id(p) for p in params if p.requires_grad}
        calls = [c for c in self.calls if _reaches_wanted(c, wanted)]
        if not losses.requires_grad or not calls:
            return self._checked(TaskGradients({}, n_tasks), losses, wanted)
        changed = [c for c in calls if c.output._version != c.version]
        if changed:
            what = type(changed[0].module).__name__ if changed[0].module is not None else "broadcast"
            raise UncoveredLayerError(f"the output of a recorded {what} was modified in place after the call")
        seg = TaskSegments(self.task, n_tasks)
        signals = torch.autograd.grad(losses.sum(), [c.output for c in calls], allow_unused=True, retain_graph=True)
        blocks: dict[nn.Parameter, torch.Tensor] = {}
        with torch.no_grad():
            self._apply_rules(calls, signals, seg, wanted, blocks)
        return self._checked(TaskGradients(blocks, n_tasks), losses, wanted)

    @staticmethod
    def _apply_rules(calls: list[LayerCall], signals: tuple, seg: TaskSegments, wanted: set[int], blocks: dict) -> None:
        for call, delta in zip(calls, signals):
            if delta is None:
                continue
            if call.module is None:
                grads = {call.param: broadcast(delta, seg)}
            else:
                grads = rule_for(call.module)(call.module, call.args, delta, seg)
            for p, g in grads.items():
                if id(p) in wanted:
                    blocks[p] = blocks[p] + g if p in blocks else g

    @staticmethod
    def _checked(result: TaskGradients, losses: torch.Tensor, wanted: set[int]) -> TaskGradients:
        """Every wanted parameter the losses reach must have a block: one that has none was used where the tape
        did not see it (a forward pass outside `record`)."""
        if losses.grad_fn is not None:
            have = {id(p) for p in result.blocks}
            missing = reached_parameters(losses, wanted) - have
            if missing:
                raise UncoveredLayerError(
                    f"the losses reach {len(missing)} parameter(s) through calls that were not recorded: run the "
                    "whole forward pass inside scheme.recording(...)"
                )
        return result


def _reaches_wanted(call: LayerCall, wanted: set[int]) -> bool:
    if call.module is None:
        return id(call.param) in wanted
    return any(id(p) in wanted for p in call.module.parameters(recurse=False))


def reached_parameters(output: torch.Tensor, candidates: set[int]) -> set[int]:
    """The ids among `candidates` of the leaf parameters that `output`'s autograd graph reaches (a walk of the
    graph's nodes, no arithmetic)."""
    found: set[int] = set()
    seen: set = set()
    stack = [output.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, "variable", None)
        if var is not None and id(var) in candidates:
            found.add(id(var))
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return found
