"""Episode-level evaluation: run every env for one full episode and report per-task success and return.

Success is success at any step of the episode (Meta-World's protocol); the table groups envs by task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from mtbench.envs.vec_env import MultiTaskVecEnv


@dataclass
class TaskResult:
    name: str
    episodes: int
    success: float  # fraction of episodes with success at any step
    mean_return: float
    mean_length: float


def run_episodes(
    env: MultiTaskVecEnv, act: Callable[[MultiTaskVecEnv], torch.Tensor], progress: bool = True
) -> list[TaskResult]:
    """One episode per env, from a fresh reset (random initial progress must be off)."""
    if env.random_init_progress:
        raise ValueError("evaluation needs whole episodes: build the env with random_init_progress=False")
    env.reset()
    N = env.num_envs
    finished = torch.zeros(N, dtype=torch.bool, device=env.device)
    succ = torch.zeros(N, dtype=torch.bool, device=env.device)
    ret = torch.zeros(N, device=env.device)
    length = torch.zeros(N, dtype=torch.long, device=env.device)
    for _ in tqdm(range(env.episode_length), desc="episodes", unit="step", disable=not progress, leave=False):
        _, _, _, _, info = env.step(act(env))
        ep = info["episode"]
        new = ep["done"] & ~finished
        succ = torch.where(new, ep["success"], succ)
        ret = torch.where(new, ep["return"], ret)
        length = torch.where(new, ep["length"], length)
        finished |= new
        if bool(finished.all()):
            break
    succ, ret, length = succ.cpu().numpy(), ret.cpu().numpy(), length.cpu().numpy()
    out = []
    for name, blk in zip(env.task_names, env.blocks):
        sl = blk.sl
        out.append(
            TaskResult(
                name, sl.stop - sl.start, float(succ[sl].mean()), float(ret[sl].mean()), float(length[sl].mean())
            )
        )
    return out


def format_table(results: list[TaskResult], title: str = "") -> str:
    """A plain-text table with a mean row, for terminals and READMEs (Markdown-compatible)."""
    lines = [title] if title else []
    lines += ["| task | episodes | success % | return | length |", "|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.episodes} | {100 * r.success:.1f} | {r.mean_return:.1f} | {r.mean_length:.0f} |")
    mean = np.mean([r.success for r in results]) * 100
    lines.append(
        f"| **mean** | {sum(r.episodes for r in results)} | **{mean:.1f}** | "
        f"{np.mean([r.mean_return for r in results]):.1f} | |"
    )
    return "\n".join(lines)
