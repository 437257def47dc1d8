"""Step scene blocks one after another on a background thread, so that the caller's torch work on a block
whose physics has finished runs while the next block steps.

Why: on the CPU backend MuJoCo's thread pool holds every core only while it steps; the env's observation
and reward torch work is single-threaded, so without overlap one core idles through it (about a fifth of
an MT10 step). `mujoco.batch` releases the GIL while it steps, so a plain Python thread is enough. On the
warp backend the GPU already runs asynchronously to the host, and blocks are stepped inline.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

from mtbench.sim.base import SceneBlock


class _Done:
    """A finished result, with the `Future.result` face."""

    def __init__(self, value: torch.Tensor):
        self._value = value

    def result(self) -> torch.Tensor:
        return self._value


def thread_layout(threads: int, n_blocks: int) -> tuple[int, int]:
    """(worker threads, MuJoCo threads per block) for `threads` cores and `n_blocks` scenes.

    Many blocks: each worker steps whole blocks on one thread, so no block waits at its pool's barrier for
    a thread the scoring work preempted (one 2-thread pool per block behind one worker measured slower
    than no overlap at all on 2 cores). Few blocks: fewer workers, each block's pool wider, so a single
    task still uses every core."""
    if threads < 1 or n_blocks < 1:
        raise ValueError(f"need >= 1 thread and >= 1 block, got {threads} and {n_blocks}")
    workers = min(threads, n_blocks)
    return workers, -(-threads // workers)


class StepQueue:
    """`submit(block, nsubstep)` returns a handle whose `result()` is `block.step(nsubstep)`'s blow-up mask.

    With `workers >= 1` blocks step on that many background threads, taken up in submission order; with 0
    each steps at once in the caller. The caller must not touch a submitted block's tensors until its
    result is taken.
    """

    def __init__(self, workers: int):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mtbench-physics") if workers else None

    def submit(self, block: SceneBlock, nsubstep: int, kinematics: bool = True) -> Future | _Done:
        if self._pool is None:
            return _Done(block.step(nsubstep, kinematics))
        return self._pool.submit(block.step, nsubstep, kinematics)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
