"""Data-parallel training over the ranks `torchrun` starts: PyTorch's own process group (NCCL on CUDA, Gloo on
CPUs), and the few reductions that make N ranks learn as one big batch.

Every function here is a no-op (or the identity) in a single process, so the learners call them unconditionally
and a 1-process run is bit for bit what it was without them.

The rule for losses. A learner's losses are per-task means over its minibatch (`per_task_mean`) with the counts
behind them. Rank r holds n_t^r samples of task t; the big batch holds N_t = Σ_r n_t^r. `share` turns the local
means L_t^r into shares L_t^r n_t^r / N_t, whose sum over ranks is the big batch's per-task mean, so the
gradient of any loss linear in the per-task means is the *sum* over ranks of the gradients of the shares
(`sum_grads`: one flat all-reduce). Ranks may hold different task mixes in a minibatch (random sampling): the
result is still exact, not an average of averages.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

TIMEOUT_S = float(os.environ.get("MTBENCH_DIST_TIMEOUT", 300))
"""Seconds a collective waits for the other ranks before it fails (the process group's timeout): a rank that hangs
ends the job after this long; a rank that dies ends it sooner (torchrun stops the others)."""


_comm_seconds = 0.0


@contextmanager
def _timed() -> Iterator[None]:
    """Count the wall-clock a collective takes (Gloo's are synchronous; NCCL's only their launch) toward
    `pop_comm_seconds`, waiting for slower ranks included."""
    global _comm_seconds
    t0 = time.perf_counter()
    yield
    _comm_seconds += time.perf_counter() - t0


def pop_comm_seconds() -> float:
    """Seconds spent in this module's collectives since the last call (the runner logs it as `time/comm`)."""
    global _comm_seconds
    out, _comm_seconds = _comm_seconds, 0.0
    return out


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0, the one that writes the run directory, checkpoints and the terminal output."""
    return rank() == 0


def launched_world_size() -> int:
    """The world size torchrun announced in the environment (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init(device: torch.device) -> None:
    """Join torchrun's process group (its environment: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE): NCCL for a CUDA
    learner, Gloo for a CPU one."""
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=TIMEOUT_S), **kwargs)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """`t` reduced over the ranks in place (sum, max or min) and returned; `t` itself in one process."""
    if world_size() > 1:
        with _timed():
            dist.all_reduce(t, {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}[op])
    return t


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over the ranks (a new tensor; `t` in one process)."""
    if world_size() == 1:
        return t
    return all_reduce_(t.detach().clone()) / world_size()


def broadcast_(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Rank `src`'s `t` on every rank, in place."""
    if world_size() > 1:
        with _timed():
            dist.broadcast(t, src)
    return t


def broadcast_module_(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (one flat broadcast per dtype), so all ranks start equal."""
    if world_size() == 1:
        return
    tensors = [t for t in [*module.parameters(), *module.buffers()] if t.numel()]
    for dtype in {t.dtype for t in tensors}:
        group = [t for t in tensors if t.dtype == dtype]
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        broadcast_(flat)
        offset = 0
        with torch.no_grad():
            for t in group:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()


_last_counts: tuple[torch.Tensor, int, torch.Tensor] | None = None


def global_counts(counts: torch.Tensor) -> torch.Tensor:
    """N_t: the samples of each task over all ranks' minibatches (`counts` itself in one process). The same counts
    tensor, unchanged, asked again (SAC's critic, actor and temperatures share a batch) is answered without another
    all-reduce; every rank runs the same code, so every rank skips the same calls."""
    global _last_counts
    if world_size() == 1:
        return counts
    last = _last_counts
    if last is not None and last[0] is counts and last[1] == counts._version:
        return last[2]
    total = all_reduce_(counts.detach().clone())
    _last_counts = (counts, counts._version, total)
    return total


def share(losses: torch.Tensor, counts: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """This rank's shares L_t n_t / N_t of the big batch's per-task means (module docstring), from its per-task
    mean losses `losses` over `counts` samples and the global counts `total`; 0 for a task it does not hold. In one
    process: `losses` itself."""
    if world_size() == 1:
        return losses
    weight = (counts / total.clamp_min(1.0)).to(losses.dtype)
    return torch.where(counts > 0, losses * weight, 0.0)


def pooled(shares: torch.Tensor) -> torch.Tensor:
    """The big batch's per-task means from every rank's `shares` (detached, equal on every rank)."""
    return all_reduce_(shares.detach().clone()) if world_size() > 1 else shares.detach()


def sum_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum `.grad` of `params` over the ranks with one flat all-reduce (rsl_rl's form, not the DDP wrapper: the MTRL
    schemes edit gradients between backward and step). Which parameters have a gradient is decided by the graph's
    structure, the same on every rank; those without one keep `None` (an optimiser skips them, as in one process)."""
    if world_size() == 1:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = all_reduce_(torch.cat([p.grad.reshape(-1) for p in params]))
    offset = 0
    for p in params:
        k = p.numel()
        p.grad = flat[offset : offset + k].view_as(p)
        offset += k


def gather_objects(obj) -> list | None:
    """Every rank's `obj` (picklable) on rank 0, in rank order; None on the others; `[obj]` in one process."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj):
    """Rank 0's `obj` on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
