"""The one action rule of `MultiTaskVecEnv.step` (mtbench/envs/core.py, README "Usage"): a floating-point torch
tensor on the env's device, any float dtype converted to `env.action_dtype`; everything else refused before any
physics runs, with a message naming the fix. Both suites share it. On the CPU here; MTBENCH_TEST_DEVICE=cuda:0 runs
the env fixtures on CUDA with MuJoCo Warp (tests/devices.py)."""

import re

import numpy as np
import pytest
import torch
from devices import DEVICE, ON_CUDA

import mtbench
from mtbench.envs.core import MultiTaskVecEnv
from mtbench.envs.gym_wrapper import GymVectorEnv


@pytest.fixture(scope="module")
def envs() -> dict[str, MultiTaskVecEnv]:
    out = {
        "metaworld": mtbench.make(["reach", "push"], num_envs=3, device=DEVICE, seed=1, episode_length=50),
        "parkour": mtbench.make(
            [6, 20], num_envs=3, device=DEVICE, seed=1, episode_length=50, suite="parkour", random_init_progress=False
        ),
    }
    for env in out.values():
        env.reset()
    return out


def _refused(env: MultiTaskVecEnv, actions, err: type[Exception], match: str) -> None:
    """`actions` raise `err` matching `match`, and nothing was stepped."""
    before = env.ep_length.clone()
    with pytest.raises(err, match=match):
        env.step(actions)
    assert torch.equal(env.ep_length, before)


def test_the_dtype_each_suite_computes_in(envs):
    # Meta-World computes in its engine's dtype (MuJoCo C: float64, MuJoCo Warp: float32), parkour in float32
    assert envs["metaworld"].action_dtype == (torch.float32 if ON_CUDA else torch.float64)
    assert envs["parkour"].action_dtype == torch.float32


@pytest.mark.parametrize("suite", ["metaworld", "parkour"])
def test_lists_tuples_and_numpy_are_refused_with_the_fix(envs, suite):
    env = envs[suite]
    zeros = np.zeros((env.num_envs, env.action_dim), dtype=np.float32)
    fix = r"pass torch\.as_tensor\(actions, .*device=env\.device\)"
    _refused(env, zeros.tolist(), TypeError, rf"actions must be a torch\.Tensor .*got list; {fix}")
    _refused(env, tuple(zeros.tolist()), TypeError, rf"got tuple; {fix}")
    _refused(env, zeros, TypeError, rf"got ndarray; {fix}.*GymVectorEnv")


@pytest.mark.parametrize("suite", ["metaworld", "parkour"])
def test_integer_and_bool_tensors_are_refused(envs, suite):
    env = envs[suite]
    for dtype in (torch.long, torch.int32, torch.bool):
        _refused(env, torch.zeros(env.num_envs, env.action_dim, dtype=dtype, device=env.device), TypeError,
                 rf"actions must be floating point \(e\.g\. actions\.float\(\)\), got dtype {dtype}")  # fmt: skip


@pytest.mark.parametrize("suite", ["metaworld", "parkour"])
def test_a_tensor_on_another_device_is_refused_not_copied(envs, suite):
    env = envs[suite]
    elsewhere = torch.zeros(env.num_envs, env.action_dim, device="meta")  # a device that is not the env's
    fix = r"move them with actions\.to\(env\.device\)"
    where = re.escape(str(env._tensor_device))
    _refused(env, elsewhere, ValueError, rf"actions are on meta but the env is on {where}; {fix}")


@pytest.mark.parametrize("suite", ["metaworld", "parkour"])
def test_the_shape_error_is_unchanged(envs, suite):
    env = envs[suite]
    n, a = env.num_envs, env.action_dim
    for shape in ((n, a + 1), (n,), (n + 1, a), (a,)):
        match = rf"actions must have shape \({n}, {a}\) \(.+\), got "
        _refused(env, torch.zeros(shape, device=env.device), ValueError, match)


@pytest.mark.parametrize("suite", ["metaworld", "parkour"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_any_float_dtype_is_cast_to_the_env_dtype_and_steps_as_float32_does(envs, suite, dtype):
    """Values a half-precision float holds exactly step the env exactly as the same float32 values do."""
    env = envs[suite]
    a32 = torch.tensor([0.5, -0.25, 1.0, -1.0, 0.125, 0.0], device=env.device).repeat(env.num_envs, 2)
    a32 = a32[:, : env.action_dim]
    a32[0, 0] = 100.0  # clipped to +action_bound whatever the dtype
    cast = env._check_actions(a32.to(dtype))
    assert cast.dtype == env.action_dtype and cast.device == env.device
    bound = env.action_bound
    assert torch.equal(cast, a32.clamp(-bound, bound).to(env.action_dtype)) and cast[0, 0] == bound
    start = env.state_dict()
    obs32, rew32, *_ = env.step(a32)
    env.load_state_dict(start)
    obs, rew, *_ = env.step(a32.to(dtype))
    assert torch.equal(obs, obs32) and torch.equal(rew, rew32)


def test_the_gymnasium_face_converts_numpy_itself():
    venv = GymVectorEnv(mtbench.make("reach", num_envs=2, device=DEVICE, episode_length=5))
    venv.reset(seed=0)
    for actions in (np.zeros((2, 4)), np.zeros((2, 4), dtype=np.float32), [[0.1, 0, 0, 0], [0, 0.2, 0, 0]]):
        obs, rew, *_ = venv.step(actions)
        assert obs.shape == (2, 40) and rew.shape == (2,)
