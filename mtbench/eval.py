"""Episode-level evaluation: run every env for one full episode and report per-task success and return.

Success is success at any step of the episode (Meta-World's protocol); the table groups envs by task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from mtbench import distributed
from mtbench.envs.core import MultiTaskVecEnv


@dataclass
class TaskResult:
    name: str
    episodes: int
    success: float  # fraction of episodes with success at any step
    mean_return: float
    mean_length: float
    extra: dict[str, float] = field(default_factory=dict)  # suite-specific episode means, e.g. goal_velocity


EXTRA_EPISODE_KEYS = frozenset({"goal_velocity", "goals_reached"})
"""Per-episode quantities a suite may report beside success and return (parkour: m/s toward the goal, goals)."""


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
    extra: dict[str, torch.Tensor] = {}
    for _ in tqdm(range(env.episode_length), desc="episodes", unit="step", disable=not progress, leave=False):
        _, _, _, _, info = env.step(act(env))
        ep = info["episode"]
        new = ep["done"] & ~finished
        succ = torch.where(new, ep["success"], succ)
        ret = torch.where(new, ep["return"], ret)
        length = torch.where(new, ep["length"], length)
        for key in EXTRA_EPISODE_KEYS.intersection(ep):
            extra[key] = torch.where(new, ep[key].float(), extra.get(key, torch.zeros_like(ret)))
        finished |= new
        if bool(finished.all()):
            break
    env.check_sim()  # one host sync: episodes with dropped contacts (MuJoCo Warp) are not results
    succ, ret, length = succ.cpu().numpy(), ret.cpu().numpy(), length.cpu().numpy()
    extra_np = {k: v.cpu().numpy() for k, v in extra.items()}
    out = []
    for name, sl in zip(env.task_names, env.task_slices):
        out.append(
            TaskResult(
                name, sl.stop - sl.start, float(succ[sl].mean()), float(ret[sl].mean()), float(length[sl].mean()),
                {k: float(v[sl].mean()) for k, v in extra_np.items()},
            )
        )  # fmt: skip
    return out


def pool_over_ranks(results: list[TaskResult], device: torch.device) -> list[TaskResult]:
    """The results of every rank of a torchrun job as one table (each rank ran its share of the episodes): episode,
    success and sums of returns, lengths and extra quantities per task added over the ranks (one all-reduce on
    `device`), then averaged, so the table is the one-process protocol's. In one process: `results` themselves."""
    if distributed.world_size() == 1:
        return results
    keys = sorted(set.intersection(*(set(r.extra) for r in results))) if results else []
    rows = [
        [r.episodes, round(r.success * r.episodes), r.mean_return * r.episodes, r.mean_length * r.episodes]
        + [r.extra[k] * r.episodes for k in keys]
        for r in results
    ]
    total = distributed.all_reduce_(torch.tensor(rows, dtype=torch.float64, device=device)).cpu().tolist()
    return [
        TaskResult(r.name, int(n), s / n, ret / n, length / n, {k: v / n for k, v in zip(keys, rest)})
        for r, (n, s, ret, length, *rest) in zip(results, total)
    ]


def format_table(results: list[TaskResult], title: str = "") -> str:
    """A plain-text table with a mean row, for terminals and READMEs (Markdown-compatible); suite-specific
    episode means (`TaskResult.extra`) get their own columns."""
    keys = sorted(set.intersection(*(set(r.extra) for r in results))) if results else []
    lines = [title] if title else []
    lines += [
        "| task | episodes | success % | return | length |" + "".join(f" {k} |" for k in keys),
        "|---|---:|---:|---:|---:|" + "---:|" * len(keys),
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.episodes} | {100 * r.success:.1f} | {r.mean_return:.1f} | {r.mean_length:.0f} |"
            + "".join(f" {r.extra[k]:.3f} |" for k in keys)
        )
    mean = np.mean([r.success for r in results]) * 100
    lines.append(
        f"| **mean** | {sum(r.episodes for r in results)} | **{mean:.1f}** | "
        f"{np.mean([r.mean_return for r in results]):.1f} | |" + "".join(
            f" {np.mean([r.extra[k] for r in results]):.3f} |" for k in keys)
    )  # fmt: skip
    return "\n".join(lines)
