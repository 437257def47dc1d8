"""Host synchronisations in the training hot path: one rollout and one update of each learner, every place that makes
the host wait for the device, with its file and line.

On CUDA, torch's own detector (`torch.cuda.set_sync_debug_mode`) flags every synchronising CUDA call: reads of
device values (`.item()`, `bool(t)`, `.tolist()`, `.cpu()`, `nonzero`, masked indexing) and copies from pageable
host memory (`torch.as_tensor(numpy, device=...)`, indexing with a list). Mode "warn" with every warning recorded,
not "error", which would stop at the first one and so report one place per run.

On the CPU (the dry run) nothing synchronises, so a proxy records the calls that would: the same kinds of call made
directly by mtbench's code (calls torch makes internally, e.g. inside an optimizer, are out of its sight), found by
wrapping those torch functions and tensor methods for the duration. It sees Python-level calls only: a C++ op that
syncs internally (`torch.bincount` without `minlength` reads the max back) is listed by name, a `.to(device)` of a
host tensor is not (on the CPU every tensor is a host tensor).
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

PACKAGE = str(Path(__file__).resolve().parent.parent)  # .../mtbench
OWN = str(Path(__file__).resolve().parent)  # .../mtbench/gpucheck: never reported

TENSOR_READS = ("item", "tolist", "__bool__", "__int__", "__float__", "numpy", "cpu", "nonzero", "masked_select")
"""Tensor methods that read device values on the host (a sync on CUDA)."""
TORCH_SYNCING = ("nonzero", "masked_select", "unique", "bincount")
"""torch functions whose output size depends on device values (a sync on CUDA)."""
HOST_DATA = ("tensor", "as_tensor")
"""torch functions that copy host data (numpy, lists, numbers) to the device they are given (a sync on CUDA)."""


def _short(filename: str) -> str:
    return filename[len(PACKAGE) - len("mtbench") :] if filename.startswith(PACKAGE) else filename


def _ours(filename: str) -> bool:
    return filename.startswith(PACKAGE) and not filename.startswith(OWN)


class SyncRecorder:
    """Records host syncs (CUDA) or the calls that would be (CPU proxy) while `record(phase)` is open."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mode = "torch.cuda.set_sync_debug_mode" if device.type == "cuda" else "CPU proxy"
        self.found: dict[tuple[str, str, str], dict] = {}
        self.phase = ""

    # -- bookkeeping -------------------------------------------------------------------------------
    def _add(self, op: str, frames: list[traceback.FrameSummary]) -> None:
        """`frames` innermost first; the place is the innermost frame of mtbench's own code."""
        own = next((i for i, f in enumerate(frames) if f.filename.startswith(OWN)), len(frames))
        ours = [f for f in frames[:own] if _ours(f.filename)]  # up to the gpucheck frame that started it
        if not ours:
            return
        place = ours[0]
        where = f"{_short(place.filename)}:{place.lineno}"
        key = (self.phase, where, op)
        hit = self.found.setdefault(
            key,
            {
                "count": 0,
                "code": (place.line or "").strip(),
                "function": place.name,
                "from": " < ".join(f"{_short(f.filename)}:{f.lineno}" for f in ours[1:4]),
            },
        )
        hit["count"] += 1

    def rows(self) -> list[list[object]]:
        return [
            [phase, where, op, v["function"], v["code"][:90], v["count"], v["from"]]
            for (phase, where, op), v in sorted(self.found.items())
        ]

    # -- recording ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def record(self, phase: str) -> Iterator[None]:
        self.phase = phase
        with self._cuda() if self.device.type == "cuda" else self._proxy():
            yield

    @contextlib.contextmanager
    def _cuda(self) -> Iterator[None]:
        def hook(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
            if "synchroniz" in str(message):
                stack = traceback.extract_stack()[::-1]
                self._add("synchronizing CUDA call", stack)

        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = hook
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode(previous)

    @contextlib.contextmanager
    def _proxy(self) -> Iterator[None]:
        saved: list[tuple[object, str, object, bool]] = []

        def patch(owner: object, name: str, make: Callable[[Callable], Callable]) -> None:
            own = name in vars(owner)
            original = getattr(owner, name)
            saved.append((owner, name, original, own))
            setattr(owner, name, make(original))

        def caller_is_ours() -> bool:
            return _ours(sys._getframe(2).f_code.co_filename)

        def record(op: str) -> None:
            frames = []
            f = sys._getframe(2)
            while f is not None:
                frames.append(traceback.FrameSummary(f.f_code.co_filename, f.f_lineno, f.f_code.co_name))
                f = f.f_back
            self._add(op, frames)

        def always(op: str) -> Callable[[Callable], Callable]:
            def make(original: Callable) -> Callable:
                def wrapper(*args, **kwargs):
                    if caller_is_ours():
                        record(op)
                    return original(*args, **kwargs)

                return wrapper

            return make

        def host_data(op: str) -> Callable[[Callable], Callable]:
            def make(original: Callable) -> Callable:
                def wrapper(data, *args, **kwargs):
                    if kwargs.get("device") is not None and not isinstance(data, torch.Tensor) and caller_is_ours():
                        record(f"{op} of host data")
                    return original(data, *args, **kwargs)

                return wrapper

            return make

        def indexing(op: str) -> Callable[[Callable], Callable]:
            def make(original: Callable) -> Callable:
                def wrapper(self_, index, *rest):
                    if _needs_sync(index) and caller_is_ours():
                        record(f"{op} with {_index_kind(index)}")
                    return original(self_, index, *rest)

                return wrapper

            return make

        try:
            for name in TENSOR_READS:
                patch(torch.Tensor, name, always(f"Tensor.{name}"))
            patch(torch.Tensor, "__getitem__", indexing("indexing"))
            patch(torch.Tensor, "__setitem__", indexing("index assignment"))
            for name in TORCH_SYNCING:
                patch(torch, name, always(f"torch.{name}"))
            for name in HOST_DATA:
                patch(torch, name, host_data(f"torch.{name}"))
            yield
        finally:
            for owner, name, original, own in reversed(saved):
                if own:
                    setattr(owner, name, original)
                else:
                    delattr(owner, name)


def _needs_sync(index: object) -> bool:
    """An index that makes CUDA indexing wait: a bool mask tensor (its count), a numpy array or a list (copied from
    host memory)."""
    if isinstance(index, tuple):
        return any(_needs_sync(i) for i in index)
    if isinstance(index, torch.Tensor):
        return index.dtype == torch.bool
    return isinstance(index, (np.ndarray, list))


def _index_kind(index: object) -> str:
    if isinstance(index, tuple):
        return ", ".join(_index_kind(i) for i in index if _needs_sync(i))
    if isinstance(index, torch.Tensor):
        return "a bool mask"
    return "a numpy array" if isinstance(index, np.ndarray) else "a list"


def hot_path_syncs(step, plan, overrides: dict[str, list[str]]) -> None:
    """Each registered learner on a small env: iterations until it learns, then one rollout and one update recorded."""
    import time

    from mtbench.gpucheck.common import free
    from mtbench.gpucheck.learning import algo_runner, learners

    rec = SyncRecorder(plan.device)
    summary = []
    names = learners()
    for k, algo in enumerate(names):
        share = step.left() / (len(names) - k)
        t0 = time.perf_counter()
        try:
            runner = algo_runner(algo, plan, overrides.get(algo, []), plan.sync_num_envs, plan.sync_task)
        except Exception as e:  # a learner whose settings do not fit the toy sizes: recorded, the others still run
            step.set("fail", f"{algo}: could not build at {plan.sync_num_envs} envs: {type(e).__name__}: {e}")
            continue
        env, learner = runner.env, runner.algo
        env.check_actions = False  # the one deliberate per-step sync, off as in training on CUDA
        warm = 0
        while warm < plan.max_warmup and (warm < 1 or not learner.learning) and time.perf_counter() - t0 < share:
            runner.iteration()
            warm += 1
        before = sum(v["count"] for v in rec.found.values())
        with rec.record(f"{algo} rollout"):
            runner.rollout()
        with rec.record(f"{algo} update"):
            learner.update()
        found = sum(v["count"] for v in rec.found.values()) - before
        summary.append([algo, learner.steps_per_iteration, learner.learning, found])
        del runner, env, learner
        free(plan.device)
    step.table(["learner", "rollout steps", "update ran", "syncs found"], summary)
    rows = rec.rows()
    if rows:
        step.table(["phase", "where", "what", "function", "code", "count", "called from"], rows)
        step.set("warn", f"{sum(r[5] for r in rows)} host sync(s) at {len(rows)} place(s) in the hot path")
    else:
        step.say("No host sync found in the rollouts and updates.")
    step.say(
        f"Detector: {rec.mode}. {_doc(rec.mode)} Env `check_actions` off; each learner warmed up first "
        "(its first iteration, and an off-policy learner's warm-up, are not recorded)."
    )
    step.data["syncs"] = [dict(zip(["phase", "where", "what", "function", "code", "count", "from"], r)) for r in rows]


def _doc(mode: str) -> str:
    if mode == "CPU proxy":
        return (
            "No GPU: the calls mtbench's own code makes that would sync on CUDA (value reads, data-dependent sizes, "
            "host data copied in, indexing with a mask, list or numpy array); syncs inside C++ ops and `.to()` "
            "copies are invisible to it."
        )
    return "Every synchronizing CUDA call torch saw (mode warn, each warning recorded with its Python stack)."
