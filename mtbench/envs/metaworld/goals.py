"""Reset vectors: uniform draws with Meta-World's redraw rule, and Meta-World's own 50 seeded goals.

Meta-World's benchmark (`metaworld.MT1(name, seed)`) seeds numpy's global RNG, then resets a fresh env
50 times and keeps each reset's last draw. Each reset calls `reset_model` twice (once directly, once
through gymnasium's `MujocoEnv.reset`), and each call draws until the task accepts the vector. We replay
that sequence with a private `RandomState`, so the goals equal the reference's without running it.
"""

from __future__ import annotations

import numpy as np
import torch

from mtbench.envs.metaworld.task import MetaWorldTask

N_GOALS = 50
CANDIDATES = 32


def metaworld_goals(task: MetaWorldTask, seed: int, n_goals: int = N_GOALS) -> np.ndarray:
    """The (50, 6) reset vectors of `metaworld.MT1(task.name, seed=seed).train_tasks`, in order."""
    rs = np.random.RandomState(seed)
    low, high = task.rand_low, task.rand_high

    def draw() -> np.ndarray:
        while True:
            vec = rs.uniform(low, high, size=low.size)
            if not bool(task.resample(torch.from_numpy(vec[None]))[0]):
                return vec

    goals = []
    for _ in range(n_goals):
        draw()  # the first reset_model call of SawyerXYZEnv.reset
        goals.append(draw())
    return np.stack(goals)


def sample_uniform(
    task: MetaWorldTask, k: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """k reset vectors drawn as Meta-World does (uniform in the reset box, redrawn while the task rejects
    them), batched: each env draws CANDIDATES vectors and keeps its first accepted one. All candidates
    rejected has probability < 1e-20 for the tasks here (acceptance >= 0.8); then the last one is kept."""
    # drawn in float64 whatever the engine's dtype, so a seed gives the same goals on every engine
    low = torch.as_tensor(task.rand_low, dtype=torch.float64, device=device)
    high = torch.as_tensor(task.rand_high, dtype=torch.float64, device=device)
    u = torch.rand((k, CANDIDATES, low.numel()), generator=gen, dtype=torch.float64, device=device)
    cand = low + u * (high - low)
    ok = ~task.resample(cand.reshape(k * CANDIDATES, -1)).reshape(k, CANDIDATES)
    ok[:, -1] = True
    first = ok.to(torch.int8).argmax(dim=1)
    return cand[torch.arange(k, device=device), first].to(dtype)
