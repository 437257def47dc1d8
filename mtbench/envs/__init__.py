"""Environments: the batched multi-task vector env and its task suites."""

from mtbench.envs.vec_env import MultiTaskVecEnv

__all__ = ["MultiTaskVecEnv"]
