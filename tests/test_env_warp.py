"""The whole env on the MuJoCo Warp engine (Warp's CPU device here; the same kernels run on CUDA)
agrees with the MuJoCo C engine: same goals, same reset observations, same trajectory under actions
that keep the hand away from contact-rich chaos for a short horizon."""

import torch

import mtbench

TASKS = ["reach-v3", "drawer-open-v3", "window-close-v3", "peg-insert-side-v3"]


def test_warp_env_matches_cpu_env():
    envs = [mtbench.make(TASKS, num_envs=8, device="cpu", backend=b, seed=3, goal_mode="rand") for b in ("cpu", "warp")]
    assert envs[1].engine == "warp" and envs[0].engine == "cpu"
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
