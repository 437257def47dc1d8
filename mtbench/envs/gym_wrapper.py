"""A `gymnasium.vector.VectorEnv` face (numpy in, numpy out) so that other libraries can drive the envs.

Auto-reset follows gymnasium's SAME_STEP mode, as Meta-World's own vector envs: a finished env's
returned observation is its next episode's first one, and `infos["final_obs"]` holds the last one.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from mtbench.envs.core import MultiTaskVecEnv


class GymVectorEnv(gym.vector.VectorEnv):
    """Any suite's env as a gymnasium vector env; the action space is the env's clip range."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, env: MultiTaskVecEnv):
        self.env = env
        self.num_envs = env.num_envs
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (env.obs_dim,), np.float32)
        bound = env.action_bound
        self.single_action_space = gym.spaces.Box(-bound, bound, (env.action_dim,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.env.gen.manual_seed(seed)
            self.action_space.seed(seed)
        obs = self.env.reset()
        return obs.cpu().numpy(), {"task_id": self.env.env_task_id.cpu().numpy()}

    def step(self, actions):
        obs, rew, term, trunc, info = self.env.step(torch.as_tensor(np.asarray(actions, dtype=np.float32)))
        ep = info["episode"]
        infos = {
            "success": info["success"].cpu().numpy(),
            "task_id": info["task_id"].cpu().numpy(),
            "final_obs": info["final_obs"].cpu().numpy(),
            "_final_obs": ep["done"].cpu().numpy(),
            "episode": {k: v.cpu().numpy() for k, v in ep.items()},
        }
        return obs.cpu().numpy(), rew.cpu().numpy(), term.cpu().numpy(), trunc.cpu().numpy(), infos

    def close_extras(self, **kwargs) -> None:
        self.env.close()
