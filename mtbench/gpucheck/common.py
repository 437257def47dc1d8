"""Small pieces the steps of `mtbench bench gpu` share: building an env the way the benchmark does, random actions,
switching CUDA-graph capture, waiting for the device, freeing it between sizes."""

from __future__ import annotations

import gc
import time

import torch

import mtbench
from mtbench.envs.core import MultiTaskVecEnv
from mtbench.gpucheck.plan import make_kwargs


def build_env(suite: str, task: object, num_envs: int | None, device: torch.device, **options) -> MultiTaskVecEnv:
    """A training-like env for speed measurements: MuJoCo Warp, no action checks (a host sync per step on CUDA),
    random initial progress so episode ends spread over the steps as in training."""
    opts = {"check_actions": False, "random_init_progress": True, **make_kwargs(suite, task), **options}
    return mtbench.make(task, num_envs=num_envs, device=str(device), backend="warp", seed=0, **opts)


def random_actions(env: MultiTaskVecEnv, count: int, seed: int = 0) -> list[torch.Tensor]:
    """`count` batches of actions on the env's device: uniform in the Meta-World box, N(0, 0.3) joint offsets for
    parkour (as its CPU benchmark)."""
    gen = torch.Generator(device=env.device).manual_seed(seed)
    shape = (env.num_envs, env.action_dim)
    if env.action_dim == 4:
        return [torch.rand(shape, generator=gen, device=env.device) * 2 - 1 for _ in range(count)]
    return [torch.randn(shape, generator=gen, device=env.device) * 0.3 for _ in range(count)]


def set_capture(env: MultiTaskVecEnv, on: bool) -> None:
    """CUDA-graph capture on or off for every Warp block of `env` (`WarpBlock.capture`)."""
    for blk in env.blocks:
        if hasattr(blk.sim, "capture"):
            blk.sim.capture = on


def wait(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(
    env: MultiTaskVecEnv, actions: list[torch.Tensor], min_seconds: float, min_steps: int = 3, max_steps: int = 10_000
) -> tuple[int, float]:
    """Step until both `min_seconds` and `min_steps` are reached; (steps, seconds), the device waited for."""
    wait(env.device)
    start = time.perf_counter()
    n = 0
    while n < max_steps:
        env.step(actions[n % len(actions)])
        n += 1
        if n >= min_steps:
            wait(env.device)
            if time.perf_counter() - start >= min_seconds:
                break
    wait(env.device)
    return n, time.perf_counter() - start


def free(device: torch.device) -> None:
    """Let the memory of dropped envs go back (torch's cache and Warp's pool), so the next size sees it free."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        import warp as wp

        wp.synchronize_device(f"cuda:{device.index or 0}")


def free_memory(device: torch.device) -> tuple[int, int]:
    """(free, total) bytes on a CUDA device; (0, 0) elsewhere."""
    if device.type != "cuda":
        return 0, 0
    return torch.cuda.mem_get_info(device)
