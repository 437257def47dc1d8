"""The gymnasium ids (`gymnasium.make_vec("MTBench/MT10", ...)`): registered on `import mtbench`, building what
`mtbench.make` builds, accepting and rejecting its options as it does, and understanding Meta-World's keywords."""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import mtbench
from mtbench.envs.gym_wrapper import GymVectorEnv
from mtbench.envs.metaworld.registry import METAWORLD_NAMES


def test_ids_are_registered_on_import():
    ids = {f"MTBench/{n}" for n in ("MT1", "MT10", "MT25", "MT50", "custom-mt-envs", *METAWORLD_NAMES)}
    assert ids <= set(gym.registry)
    with pytest.raises(gym.error.Error, match="make_vec"):
        gym.make("MTBench/MT10")  # the envs come batched only


@pytest.mark.parametrize(
    "env_id, kwargs, task",
    [
        ("MTBench/MT10", {}, "mt10"),
        ("MTBench/MT10", {"num_envs": 13}, "mt10"),
        ("MTBench/push-v3", {"num_envs": 3}, "push-v3"),
        ("MTBench/MT1", {"env_name": "push-v3", "num_envs": 3}, "push-v3"),
        ("MTBench/custom-mt-envs", {"envs_list": ["reach-v3", "push"], "num_envs": 5}, ["reach-v3", "push"]),
        ("MTBench/custom-mt-envs", {"envs_list": [40, 38], "task_counts": [1, 2]}, [40, 38]),
    ],
)
def test_ids_build_what_mtbench_make_builds(env_id, kwargs, task):
    venv = gym.make_vec(env_id, device="cpu", seed=5, **kwargs)
    assert isinstance(venv, GymVectorEnv) and venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    options = {k: v for k, v in kwargs.items() if k not in ("env_name", "envs_list")}
    if task == "mt10" and "num_envs" not in options:
        options["num_envs"] = None  # gymnasium's default num_envs=1: one env per task, as Meta-World
    env = mtbench.make(task, device="cpu", seed=5, **options)
    core = venv.unwrapped.env
    assert (core.task_names, core.task_counts, venv.num_envs) == (env.task_names, env.task_counts, env.num_envs)
    obs, _ = venv.reset()
    assert np.array_equal(obs, env.reset().numpy())
    action = np.full((env.num_envs, 4), 0.3, np.float32)
    assert np.array_equal(venv.step(action)[0], env.step(torch.from_numpy(action))[0].numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_envs": 5},  # fewer envs than MT10's tasks
        {"num_envs": 10, "task_counts": [2] * 10},
        {"task_counts": [1, 0] + [1] * 8},
        {"nope": 1},
        {"device": "cuda:7"},
        {"device": "tpu"},
        {"backend": "jax"},
        {"episode_length": 0},
        {"goal_mode": "sometimes"},
        {"reward_scale": -1.0},
        {"seed": None},
        {"terminate_on_success": "yes"},
    ],
)
def test_ids_reject_what_mtbench_make_rejects(kwargs):
    with pytest.raises(Exception) as made:
        mtbench.make("mt10", **{"device": "cpu", **kwargs})
    with pytest.raises(made.type, match=re.escape(str(made.value))):
        gym.make_vec("MTBench/MT10", **{"device": "cpu", **kwargs})


def test_metaworld_keywords():
    venv = gym.make_vec(
        "MTBench/reach-v3", num_envs=2, device="cpu", vector_strategy="async", max_episode_steps=7, use_one_hot=False,
        seed=1, autoreset_mode="NextStep", reward_function_version="v2", terminate_on_success=True,
        reward_normalization_method=None, normalize_observations=False, num_goals=50, task_select="random",
    )  # fmt: skip
    core = venv.unwrapped.env
    assert core.episode_length == 7 and core.terminate_on_success and venv.single_observation_space.shape == (39,)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    bad = [
        ({"vector_strategy": "threads"}, "vector_strategy"),
        ({"reward_function_version": "v1"}, "v2"),
        ({"normalize_observations": True}, "NormalizeObservation"),
        ({"reward_normalization_method": "gymnasium"}, "NormalizeReward"),
        ({"max_episode_steps": 7, "episode_length": 7}, "not both"),
        ({"autoreset_mode": AutoresetMode.DISABLED}, "autoreset_mode"),
        ({"tensors": "jax"}, "tensors"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            gym.make_vec("MTBench/reach-v3", device="cpu", **kwargs)
    with pytest.raises(ValueError, match="env_name"):
        gym.make_vec("MTBench/MT1", device="cpu")
    with pytest.raises(ValueError, match="envs_list"):
        gym.make_vec("MTBench/custom-mt-envs", device="cpu")
