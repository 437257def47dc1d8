"""Meta-World's own scripted expert policies (from the `metaworld` package) driving our batched env.

They are per-env numpy functions of the 39-d observation, so this is a plain loop over envs: it is a
validation tool (nobody here wrote these policies), not part of the training hot path.
"""

from __future__ import annotations

import numpy as np
import torch


class ScriptedExperts:
    """Actions for every env of a `MultiTaskVecEnv` from `metaworld.policies.ENV_POLICY_MAP`."""

    def __init__(self, task_names: list[str], task_counts: list[int], noise_std: float = 0.0, seed: int = 0):
        from metaworld.policies import ENV_POLICY_MAP

        missing = [n for n in task_names if n not in ENV_POLICY_MAP]
        if missing:
            raise ValueError(f"metaworld ships no scripted policy for {missing}")
        policies = {n: ENV_POLICY_MAP[n]() for n in task_names}
        self.per_env = [policies[n] for n, c in zip(task_names, task_counts) for _ in range(c)]
        self.noise_std = noise_std
        self.rng = np.random.default_rng(seed)

    def __call__(self, metaworld_obs: torch.Tensor) -> torch.Tensor:
        obs = metaworld_obs.detach().cpu().double().numpy()
        act = np.stack([p.get_action(o) for p, o in zip(self.per_env, obs)]).astype(np.float32)
        if self.noise_std:
            act = np.clip(act + self.rng.normal(0.0, self.noise_std, act.shape), -1.0, 1.0).astype(np.float32)
        return torch.from_numpy(act).to(metaworld_obs.device)
