"""The whole env on the MuJoCo Warp backend (Warp's CPU device here; the same kernels run on CUDA, with
MTBENCH_TEST_DEVICE=cuda:0, tests/devices.py) agrees with the MuJoCo C backend: same goals, same reset observations,
same trajectory under actions that keep the hand away from contact-rich chaos for a short horizon."""

import pytest
import torch
from devices import DEVICE, host, start_like

import mtbench
from mtbench.envs.metaworld.registry import METAWORLD_NAMES
from mtbench.envs.metaworld.registry import TASKS as ALL_TASKS

TASKS = ["reach-v3", "drawer-open-v3", "window-close-v3", "peg-insert-side-v3"]


def test_warp_env_matches_cpu_env():
    envs = [mtbench.make(TASKS, num_envs=8, device=d, backend=b, seed=3, goal_mode="rand")
            for d, b in (("cpu", "cpu"), (DEVICE, "warp"))]  # fmt: skip
    assert envs[1].backend == "warp" and envs[0].backend == "cpu"
    obs = [host(e.reset()) for e in envs]
    obs[1] = host(start_like(envs[1], envs[0]))
    # float32 kinematics in Warp vs float64 in C
    assert (obs[0] - obs[1]).abs().max() < 1e-5
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        a = torch.rand(8, 4, generator=g) * 2 - 1
        (obs_c, rew_c, *_, info_c), (obs_w, rew_w, *_, info_w) = [e.step(a.to(e.device)) for e in envs]
    # 10 control steps: hand and objects agree to 2 mm (contact resolution and float32 differ)
    assert (obs_c[:, :18] - host(obs_w[:, :18])).abs().max() < 2e-3
    assert torch.equal(info_c["task_id"], host(info_w["task_id"]))
    assert torch.allclose(rew_c, host(rew_w), atol=0.05, rtol=0.05)


def test_warp_env_autoreset_and_blowup():
    env = mtbench.make(["reach-v3", "drawer-open-v3"], num_envs=4, device=DEVICE, backend="warp", episode_length=3)
    env.reset()
    env.blocks[1].state.sim.qvel[0, 0] = float("nan")
    _, _, _, tr, info = env.step(torch.zeros(4, 4, device=env.device))
    assert info["physics_blowup"].tolist() == [False, False, True, False] and tr[2]
    assert torch.isfinite(env.blocks[1].state.sim.qpos).all()
    for _ in range(2):
        obs, _, _, tr, info = env.step(torch.zeros(4, 4, device=env.device))
        assert not info["physics_blowup"].any()  # the reset world stays healthy
    assert tr.tolist() == [True, True, False, True] and env.ep_length.tolist() == [0, 0, 2, 0]
    assert torch.allclose(obs[[0, 1, 3], :18], obs[[0, 1, 3], 18:36])


@pytest.mark.parametrize("task_id", sorted(ALL_TASKS))
def test_every_task_steps_on_warp(task_id):
    """Every ported scene loads on MuJoCo Warp (Warp's CPU device here) and stays finite and close to
    the C backend over a short random rollout from the same reset."""
    name = METAWORLD_NAMES[task_id]
    envs = [mtbench.make(name, num_envs=2, device=d, backend=b, seed=5, goal_mode="rand")
            for d, b in (("cpu", "cpu"), (DEVICE, "warp"))]  # fmt: skip
    obs = [host(e.reset()[0]) for e in envs]
    obs[1] = host(start_like(envs[1], envs[0])[0])
    torch.testing.assert_close(obs[1], obs[0], atol=1e-4, rtol=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        act = torch.rand(2, 4, generator=gen) * 2 - 1
        obs = [host(e.step(act.to(e.device))[0]) for e in envs]
    assert torch.isfinite(obs[1]).all()
    envs[1].check_sim()  # the scene's measured buffer sizes held
    # hand position after 10 free-space steps: engines differ only by solver details
    torch.testing.assert_close(obs[1][:, :3], obs[0][:, :3], atol=5e-3, rtol=0)
