"""Environments: the env interface (`core.MultiTaskVecEnv`), the suites (`metaworld/`, `parkour/`) and the suite
registry (`suites.py`)."""

from mtbench.envs.core import MultiTaskVecEnv

__all__ = ["MultiTaskVecEnv"]
