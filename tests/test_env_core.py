"""The env interface (mtbench/envs/core.py) and the suite registry (mtbench/envs/suites.py): both suites are one
`MultiTaskVecEnv`, with the same checks, errors and `info` layout, and a task finds its suite in one place. On the CPU
here; MTBENCH_TEST_DEVICE=cuda:0 runs the env fixtures on CUDA with MuJoCo Warp (tests/devices.py)."""

import subprocess
import sys

import pytest
import torch
from devices import DEFAULT_BACKEND, DEVICE

import mtbench
from mtbench.envs.core import BACKENDS, MultiTaskVecEnv, resolve_backend, resolve_device
from mtbench.envs.metaworld.env import MetaWorldVecEnv
from mtbench.envs.parkour.env import ParkourVecEnv
from mtbench.envs.suites import SUITES, suite_of


@pytest.fixture(scope="module")
def envs() -> dict[str, MultiTaskVecEnv]:
    out = {
        "metaworld": mtbench.make(["reach", "push"], num_envs=3, device=DEVICE, seed=1, episode_length=3),
        "parkour": mtbench.make(
            [6, 20], num_envs=3, device=DEVICE, seed=1, episode_length=3, suite="parkour", random_init_progress=False
        ),  # fmt: skip
    }
    for env in out.values():
        env.reset()
    return out


def test_both_suites_are_the_interface(envs):
    assert mtbench.MultiTaskVecEnv is MultiTaskVecEnv
    assert isinstance(envs["metaworld"], MetaWorldVecEnv) and isinstance(envs["parkour"], ParkourVecEnv)
    for name, env in envs.items():
        assert isinstance(env, MultiTaskVecEnv) and isinstance(env, SUITES[name].env_class)
        assert env.backend == DEFAULT_BACKEND and env.device.type == DEVICE.type and env.task_counts == [2, 1]
        assert env.task_slices == [slice(0, 2), slice(2, 3)] and env.block_of(env.task_names[1]) == slice(2, 3)
        assert env.env_task_id.tolist() == [env.task_ids[0]] * 2 + [env.task_ids[1]]
        assert torch.equal(env.onehot.argmax(1), env.task_index)
        assert repr(env).startswith(f"{type(env).__name__}(3 envs on {env.device}/{DEFAULT_BACKEND}")


def test_the_info_layout_is_shared(envs):
    for env in envs.values():
        env.reset()
        for _ in range(3):
            obs, rew, term, trunc, info = env.step(torch.zeros(env.num_envs, env.action_dim, device=env.device))
        assert obs.shape == (3, env.obs_dim) and rew.shape == (3,) and (term | trunc).all()
        assert {"success", "task_id", "final_obs", "physics_blowup", "physics_resets", "episode"} <= set(info)
        ep = info["episode"]
        assert {"done", "return", "length", "success", "task_id"} <= set(ep)
        assert ep["done"].all() and ep["length"].tolist() == [3] * 3 and torch.equal(ep["task_id"], env.env_task_id)
        assert env.ep_length.tolist() == [0] * 3 and env.ep_return.tolist() == [0.0] * 3  # new episodes


@pytest.mark.parametrize(
    "bad, err, match",
    [
        (lambda n, a: torch.zeros(n, a + 1), ValueError, r"actions must have shape \(3, \d+\)"),
        (lambda n, a: torch.zeros(n, a, dtype=torch.long), TypeError, "actions must be floating point"),
        (lambda n, a: torch.zeros(n, a).index_fill_(0, torch.tensor([1]), float("nan")), ValueError,
         r"actions hold NaN/Inf \(envs \[1\]"),
    ],
)  # fmt: skip
def test_action_checks_are_the_same_on_both_suites(envs, bad, err, match):
    for env in envs.values():
        before = env.ep_length.clone()
        with pytest.raises(err, match=match):
            env.step(bad(env.num_envs, env.action_dim).to(env.device))
        assert torch.equal(env.ep_length, before)  # nothing was stepped


def test_bad_setup_errors_are_shared():
    assert BACKENDS == ("auto", "cpu", "warp")
    with pytest.raises(ValueError, match="unknown backend 'physx'"):
        resolve_backend("physx", torch.device("cpu"))
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    for task, suite in (("reach", None), ([20], "parkour")):
        with pytest.raises(ValueError, match="backend=.physx. must be one of auto, cpu, warp"):
            mtbench.make(task, device="cpu", backend="physx", suite=suite)
        with pytest.raises(ValueError, match="fewer than the 2 tasks"):
            mtbench.make([0, 1], num_envs=1, device="cpu", suite=suite or "metaworld")
        with pytest.raises(ValueError, match="episode_length"):
            mtbench.make(task, device="cpu", episode_length=0, suite=suite)


def test_state_dicts_load_only_into_the_same_layout(envs):
    for env in envs.values():
        state = env.state_dict()
        assert (state["task_ids"], state["task_counts"]) == (env.task_ids, [2, 1])
        state["task_counts"] = [1, 2]
        with pytest.raises(ValueError, match="env state is for tasks"):
            env.load_state_dict(state)


def test_suite_of_names_ids_and_bad_suites():
    assert suite_of("mt10").name == "metaworld" and suite_of("reach-v3").name == "metaworld"
    assert suite_of([0, 31]).name == "metaworld" and suite_of(5).name == "metaworld"
    assert suite_of("parkour_hard").name == "parkour" and suite_of("Parkour_flat").name == "parkour"
    assert suite_of([0, 31], "parkour").name == "parkour" and suite_of("mt10", "auto").name == "metaworld"
    with pytest.raises(ValueError, match=r"unknown suite 'atari'.*metaworld.*parkour"):
        suite_of("mt10", "atari")
    with pytest.raises(ValueError, match="unknown suite"):
        mtbench.make("reach", suite="atari")
    # a misspelt setting reaches the parkour error that names the settings
    with pytest.raises(ValueError, match="unknown parkour setting"):
        suite_of("parkour_medium").resolve("parkour_medium")


def test_suite_entries():
    mw, pk = SUITES["metaworld"], SUITES["parkour"]
    assert mw.resolve(["reach", 31]) == ([40, 31], ["reach-v3", "pick-place-v3"])
    assert pk.resolve([0, "flat"], "easy") == ([0, 20], ["jump_on_and_off_box", "flat"])
    assert pk.resolve("parkour_flat") == ([20], ["flat"])
    with pytest.raises(ValueError, match="parkour option"):
        mw.resolve("reach", "easy")
    assert (mw.eval_episodes, pk.eval_episodes) == (50, 100)
    assert dict(mw.eval_options) == dict(goal_mode="rand", terminate_on_success=False, random_init_progress=False)
    assert dict(pk.eval_options) == dict(curriculum=False, random_init_progress=False)
    assert (mw.default_train, mw.default_network, pk.default_train, pk.default_network) == (
        None, None, "ppo_go1", "mlp_go1")  # fmt: skip


def test_parkour_does_not_import_metaworld():
    code = (
        "import sys, mtbench.envs.parkour, mtbench.envs.parkour.env; "
        "print(sorted(m for m in sys.modules if m.startswith('mtbench.envs.metaworld')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # the names module holds constants only (the gymnasium ids registered on `import mtbench` need them)
    assert out.strip() == str(["mtbench.envs.metaworld", "mtbench.envs.metaworld.names"])
