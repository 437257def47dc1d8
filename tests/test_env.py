"""The env contract of DESIGN.md: shapes, allocation, auto-reset, episode statistics, options, bad input. On the CPU
here; MTBENCH_TEST_DEVICE=cuda:0 runs it on CUDA with MuJoCo Warp (tests/devices.py, `mtbench bench gpu`)."""

import numpy as np
import pytest
import torch
from devices import DEVICE, host

import mtbench
from mtbench.envs.core import even_counts

TASKS3 = ["reach-v3", "push", 31]  # Meta-World name, MTBench name, MTBench id


def rand_actions(env, gen=None):
    return (torch.rand(env.num_envs, 4, generator=gen) * 2 - 1).to(env.device)


@pytest.fixture(scope="module")
def env():
    e = mtbench.make(TASKS3, num_envs=7, device=DEVICE, seed=3, episode_length=20)
    e.reset()
    return e


def test_shapes_dtypes_onehot(env):
    obs = env.reset()
    assert obs.shape == (7, 39 + 3) and obs.dtype == torch.float32 and obs.device.type == DEVICE.type
    assert env.task_ids == [40, 38, 31] and env.task_counts == [3, 2, 2]
    # one-hot index = rank of the MTBench id among the selected ids (31 < 38 < 40), as upstream
    expected = torch.tensor([[0, 0, 1]] * 3 + [[0, 1, 0]] * 2 + [[1, 0, 0]] * 2, dtype=torch.float32)
    assert torch.equal(host(obs[:, 39:]), expected)
    o, r, te, tr, info = env.step(rand_actions(env))
    assert o.shape == (7, 42) and r.shape == (7,) and te.dtype == torch.bool and tr.dtype == torch.bool
    assert info["success"].shape == (7,) and info["task_id"].tolist() == [40] * 3 + [38] * 2 + [31] * 2
    assert info["final_obs"].shape == (7, 42)
    # the previous-frame half of the observation is the last step's current frame
    o2, *_ = env.step(rand_actions(env))
    assert torch.allclose(o2[:, 18:36], o[:, :18])


def test_even_counts_match_upstream():
    assert even_counts(4096, 10) == [410] * 6 + [409] * 4
    assert even_counts(24576, 50) == [492] * 26 + [491] * 24


def test_truncation_autoreset_and_episode_stats():
    env = mtbench.make("reach", num_envs=4, device=DEVICE, seed=0, episode_length=5)
    env.reset()
    total = torch.zeros(4, device=env.device)
    for _ in range(5):
        obs, r, te, tr, info = env.step(rand_actions(env))
        total += r
    assert tr.all() and not te.any() and info["episode"]["done"].all()
    assert torch.allclose(info["episode"]["return"], total) and (info["episode"]["length"] == 5).all()
    # returned obs starts a new episode (both frames equal); final_obs is the old episode's last one
    assert torch.allclose(obs[:, :18], obs[:, 18:36])
    assert not torch.allclose(info["final_obs"][:, :18], obs[:, :18])
    assert (env.ep_length == 0).all() and (env.ep_return == 0).all()


def test_goal_modes():
    rand = mtbench.make("reach", num_envs=3, device=DEVICE, seed=0, episode_length=2, goal_mode="rand")
    fixed = mtbench.make("reach", num_envs=3, device=DEVICE, seed=0, episode_length=2, goal_mode="fixed")
    mw = mtbench.make("reach", num_envs=3, device=DEVICE, seed=42, episode_length=2, goal_mode="metaworld")
    goals = {}
    for name, e in (("rand", rand), ("fixed", fixed), ("mw", mw)):
        g0 = e.reset()[:, 36:39].clone()
        for _ in range(2):
            o, *_ = e.step(rand_actions(e))
        goals[name] = (g0, o[:, 36:39])
    assert not torch.allclose(*goals["rand"])
    assert torch.allclose(*goals["fixed"]) and torch.allclose(*goals["mw"])
    from mtbench.envs.metaworld.goals import metaworld_goals
    from mtbench.envs.metaworld.registry import TASKS

    ref = metaworld_goals(TASKS[40](), 42)[:3, 3:]
    np.testing.assert_allclose(host(goals["mw"][0]).numpy(), ref, atol=1e-6)


def test_reward_scale_and_terminate_on_success():
    a = mtbench.make("reach", num_envs=2, device=DEVICE, seed=5)
    b = mtbench.make("reach", num_envs=2, device=DEVICE, seed=5, reward_scale=100.0)
    a.reset(), b.reset()
    act = torch.zeros(2, 4, device=a.device)
    assert torch.allclose(b.step(act)[1], 100.0 * a.step(act)[1])
    env = mtbench.make("reach", num_envs=2, device=DEVICE, seed=1, terminate_on_success=True, goal_mode="metaworld")
    from mtbench.envs.metaworld.experts import ScriptedExperts

    experts = ScriptedExperts(env.task_names, env.task_counts)
    env.reset()
    for _ in range(150):
        _, _, te, tr, info = env.step(experts(env.metaworld_obs))
        if te.any():
            break
    assert te.any() and info["success"][te].all() and info["episode"]["success"][te].all()


def test_random_init_progress_desynchronises_episode_ends():
    env = mtbench.make("reach", num_envs=32, device=DEVICE, seed=0, random_init_progress=True, episode_length=50)
    env.reset()
    assert len(set(env.ep_length.tolist())) > 10
    ends = 0
    for _ in range(10):
        *_, tr, _ = env.step(rand_actions(env))
        ends += int(tr.sum())
    assert 0 < ends < 32


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(task="reach-v4"), ValueError, "unknown task"),
        (dict(task=["reach", 57]), ValueError, "out of range"),
        (dict(task="mt10", task_counts=[1] * 9), ValueError, "one count per task"),
        (dict(task=["reach", "push"], num_envs=5, task_counts=[2, 2]), ValueError, "sum to 4"),
        (dict(task=["reach", "push"], task_counts=[2, 0]), ValueError, "zeros"),
        (dict(task="reach", device="cuda:3"), RuntimeError, "CUDA"),
        (dict(task="reach", backend="cpu", device="cuda"), (RuntimeError, ValueError), "cuda|CUDA"),
        (dict(task="reach", backend="physx"), ValueError, "backend=.physx. must be one of"),
        (dict(task="reach", goal_mode="random"), ValueError, "goal_mode"),
    ],
)
def test_bad_configuration_fails_before_physics(kwargs, err, match, monkeypatch):
    import mtbench.sim as sim

    def no_physics(*a, **k):
        raise AssertionError("physics was built before the input was checked")

    monkeypatch.setattr(sim, "make_block", no_physics)
    monkeypatch.setattr("mtbench.envs.metaworld.env.make_block", no_physics)
    with pytest.raises(err, match=match):
        mtbench.make(**kwargs)


def test_bad_actions(env):
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(7, 3, device=env.device))
    with pytest.raises(TypeError, match="floating"):
        env.step(torch.zeros(7, 4, dtype=torch.long, device=env.device))
    bad = torch.zeros(7, 4, device=env.device)
    bad[2, 1] = float("nan")
    qpos = env.blocks[0].state.sim.qpos.clone()
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    assert torch.equal(env.blocks[0].state.sim.qpos, qpos)  # nothing was stepped


def test_physics_blowup_resets_only_that_world():
    env = mtbench.make(["reach", "push"], num_envs=6, device=DEVICE, seed=0)
    env.reset()
    env.step(torch.zeros(6, 4, device=env.device))
    sims = [b.state.sim for b in env.blocks]
    before = [s.qpos.clone() for s in sims]
    sims[1].qvel[1, 0] = float("nan")  # env 4: push block, second world
    _, r, te, tr, info = env.step(torch.zeros(6, 4, device=env.device))
    assert info["physics_blowup"].tolist() == [False] * 4 + [True, False]
    assert info["physics_resets"].tolist() == [0] * 4 + [1, 0]
    assert tr[4] and not tr[[0, 1, 2, 3, 5]].any() and r[4] == 0
    # the blown-up world was reset to a valid start state, the others stepped normally
    assert torch.isfinite(sims[1].qpos).all() and torch.isfinite(sims[1].qvel).all()
    assert env.ep_length[4] == 0 and (env.ep_length[[0, 1, 2, 3, 5]] == 2).all()
    assert torch.allclose(sims[0].qpos, before[0], atol=0.05)


def test_same_seed_same_rollout():
    outs = []
    for _ in range(2):
        env = mtbench.make(["reach", "push"], num_envs=4, device=DEVICE, seed=11)
        env.reset()
        g = torch.Generator().manual_seed(0)
        for _ in range(5):
            o, *_ = env.step(rand_actions(env, g))
        outs.append(o)
    assert torch.equal(outs[0], outs[1])
