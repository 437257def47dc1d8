"""The whole env on the MuJoCo Warp backend (Warp's CPU device here; the same kernels run on CUDA)
agrees with the MuJoCo C backend: same goals, same reset observations, same trajectory under actions
that keep the hand away from contact-rich chaos for a short horizon."""

import pytest
import torch

import mtbench
from mtbench.envs.metaworld.registry import METAWORLD_NAMES
from mtbench.envs.metaworld.registry import TASKS as ALL_TASKS

TASKS = ["reach-v3", "drawer-open-v3", "window-close-v3", "peg-insert-side-v3"]


def test_warp_env_matches_cpu_env():
    envs = [mtbench.make(TASKS, num_envs=8, device="cpu", backend=b, seed=3, goal_mode="rand") for b in ("cpu", "warp")]
    assert envs[1].backend == "warp" and envs[0].backend == "cpu"
    obs = [e.reset() for e in envs]
    # float32 kinematics in Warp vs float64 in C
    assert (obs[0] - obs[1]).abs().max() < 1e-5
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        a = torch.rand(8, 4, generator=g) * 2 - 1
        out = [e.step(a) for e in envs]
    # 10 control steps: hand and objects agree to 2 mm (contact resolution and float32 differ)
    assert (out[0][0][:, :18] - out[1][0][:, :18]).abs().max() < 2e-3
    assert torch.equal(out[0][4]["task_id"], out[1][4]["task_id"])
    assert torch.allclose(out[0][1], out[1][1], atol=0.05, rtol=0.05)


def test_warp_env_autoreset_and_blowup():
    env = mtbench.make(["reach-v3", "drawer-open-v3"], num_envs=4, device="cpu", backend="warp", episode_length=3)
    env.reset()
    env.blocks[1].state.sim.qvel[0, 0] = float("nan")
    _, _, _, tr, info = env.step(torch.zeros(4, 4))
    assert info["physics_blowup"].tolist() == [False, False, True, False] and tr[2]
    assert torch.isfinite(env.blocks[1].state.sim.qpos).all()
    for _ in range(2):
        obs, _, _, tr, info = env.step(torch.zeros(4, 4))
        assert not info["physics_blowup"].any()  # the reset world stays healthy
    assert tr.tolist() == [True, True, False, True] and env.ep_length.tolist() == [0, 0, 2, 0]
    assert torch.allclose(obs[[0, 1, 3], :18], obs[[0, 1, 3], 18:36])


@pytest.mark.parametrize("task_id", sorted(ALL_TASKS))
def test_every_task_steps_on_warp(task_id):
    """Every ported scene loads on MuJoCo Warp (Warp's CPU device here) and stays finite and close to
    the C backend over a short random rollout from the same reset."""
    name = METAWORLD_NAMES[task_id]
    envs = [mtbench.make(name, num_envs=2, device="cpu", backend=b, seed=5, goal_mode="rand") for b in ("cpu", "warp")]
    obs = [e.reset()[0] for e in envs]
    torch.testing.assert_close(obs[1], obs[0], atol=1e-4, rtol=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        act = torch.rand(2, 4, generator=gen) * 2 - 1
        obs = [e.step(act)[0] for e in envs]
    assert torch.isfinite(obs[1]).all()
    envs[1].check_sim()  # the scene's measured buffer sizes held
    # hand position after 10 free-space steps: engines differ only by solver details
    torch.testing.assert_close(obs[1][:, :3], obs[0][:, :3], atol=5e-3, rtol=0)
