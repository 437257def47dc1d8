"""The parkour env (mtbench/envs/parkour/env.py): observation, waypoints, curriculum, terminations, rewards, domain
randomisation, the env contract on the CPU backend and on MuJoCo Warp (Warp's CPU device), and the Go1 standing, and
lying on its back (its trunk on the terrain), on every terrain type in both backends.

Expected values are computed here independently of the env: scandots by a per-point loop over the sample grid,
rewards and curriculum moves by hand from the reference (§2.4-2.8).

Timings on 2 shared cores (a benchmark running beside), warm Warp kernel cache (~/.cache/warp): the default set 14 s
(the stand test on 3 types 6.4 s, the Warp run 3.5 s) plus the fallen-robot test on 3 types (about 10 s); `-m slow`
(both on the other 18 types) about 90 s. An empty
Warp cache adds the kernel compilation (about a minute, shared with the other parkour tests).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch
from devices import DEVICE, host, start_like

from mtbench.envs.parkour import observations as O
from mtbench.envs.parkour import rewards as W
from mtbench.envs.parkour import robot as R
from mtbench.envs.parkour import settings as S
from mtbench.envs.parkour import terrains as T
from mtbench.envs.parkour.env import ParkourVecEnv
from mtbench.envs.parkour.scene import TERRAIN_FRICTION

QUIET = dict(domain_rand=False, dof_reset_range=(0.0, 0.0), random_init_progress=False)
"""No randomisation of the robot: starts at the default pose, nominal mass/friction/gains, no pushes."""


def make(task=(6, 20), backend="cpu", **kw) -> ParkourVecEnv:
    """The C engine on the CPU; MuJoCo Warp on MTBENCH_TEST_DEVICE (tests/devices.py)."""
    kw.setdefault("num_envs", 2 * len(task) if isinstance(task, (list, tuple)) else None)
    device = DEVICE if backend == "warp" else "cpu"
    return ParkourVecEnv(list(task) if isinstance(task, tuple) else task, device=device, backend=backend, **kw)


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(w, x, y, z) of R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ]
    )


def block_and_row(env: ParkourVecEnv, i: int):
    b = next(b for b in env.blocks if b.sl.start <= i < b.sl.stop)
    return b, i - b.sl.start


def ground_under(col: T.Column, x: float, y: float) -> float:
    a, c = int(round((x - col.x0) / col.scale)), int(round((y - col.y0) / col.scale))
    return float(col.height[a - 6 : a + 7, c - 4 : c + 5].max())


def place(env: ParkourVecEnv, i: int, x: float, y: float, z: float | None = None, rpy=(0.0, 0.0, 0.0)) -> None:
    """Env i's robot to (x, y), z 0.42 m above the highest sample under it (or `z`), default joints, at rest."""
    b, k = block_and_row(env, i)
    if z is None:
        z = ground_under(b.scene.column, x, y) + R.SPAWN_HEIGHT
    q = np.concatenate([[x, y, z], quat_from_rpy(*rpy), R.DEFAULT_JOINT_POS])
    b.sim.qpos[k] = torch.as_tensor(q, dtype=b.sim.dtype)
    b.sim.qvel[k] = 0


def state(env: ParkourVecEnv) -> tuple[torch.Tensor, torch.Tensor]:
    qpos = torch.cat([b.sim.qpos.double() for b in env.blocks])
    qvel = torch.cat([b.sim.qvel.double() for b in env.blocks])
    return qpos, qvel


# ---------------------------------------------------------------------------------------------------------
# settings, layout, bad input


def test_settings_resolve():
    st, ids = S.resolve("parkour_hard")
    assert ids == list(range(21)) and not st.curriculum
    assert st.difficulties == pytest.approx([i / 9 for i in range(10)])
    st, ids = S.resolve("parkour_easy")
    assert st.difficulties == (0.0,) * 10 and ids == list(range(21))
    st, ids = S.resolve("parkour_hard_cl")
    assert st.curriculum and st.difficulties == S.SETTINGS["parkour_hard"].difficulties
    assert S.resolve("parkour_flat")[1] == [20]
    st, ids = S.resolve([0, "sphere_bump", "20"], setting="easy")
    assert ids == [0, 5, 20] and st.name == "parkour_easy"
    assert S.resolve(3)[0].name == "parkour_hard"  # subsets default to hard
    assert S.is_parkour_task("parkour_hard_cl") and not S.is_parkour_task("mt10")


def test_obs_layout_constants():
    parts = [O.PROPRIO, O.SCAN, O.PRIV_EXPLICIT, O.PRIV_LATENT]
    assert [p.start for p in parts[1:]] == [p.stop for p in parts[:-1]] and parts[-1].stop == O.ONEHOT_START == 212
    assert (O.N_PROPRIO, O.N_SCAN, O.N_PRIV_EXPLICIT, O.N_PRIV_LATENT) == (48, 132, 3, 29)
    inner = [O.ANG_VEL, O.ROLL_PITCH, slice(5, 6), slice(6, 7), slice(7, 8), O.DOF_POS, O.DOF_VEL, O.LAST_ACTION,
             O.FOOT_CONTACT]  # fmt: skip
    assert [p.start for p in inner[1:]] == [p.stop for p in inner[:-1]] and inner[-1].stop == 48
    lat = [slice(183, 184), O.COM_OFFSET, slice(187, 188), O.KP_FACTOR, O.KD_FACTOR]
    assert [p.start for p in lat[1:]] == [p.stop for p in lat[:-1]] and lat[-1].stop == 212
    pts = O.scan_offsets()
    assert pts.shape == (132, 2)
    assert np.allclose(np.unique(pts[:, 0]), [-0.45 + 0.15 * i for i in range(12)])
    assert np.allclose(np.unique(pts[:, 1]), [-0.75 + 0.15 * j for j in range(11)])
    assert np.allclose(pts[11 * 3 + 4], [-0.45 + 0.45, -0.75 + 0.6])  # x-major


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="unknown parkour setting"):
        ParkourVecEnv("parkour_medium", device="cpu")
    with pytest.raises(ValueError, match="unknown terrain id 21"):
        ParkourVecEnv([0, 21], device="cpu")
    with pytest.raises(ValueError, match="unknown terrain 'lava'"):
        ParkourVecEnv(["lava"], device="cpu")
    with pytest.raises(ValueError, match="repeat"):
        ParkourVecEnv([3, 3], device="cpu")
    with pytest.raises(ValueError, match="sum to 4 but num_envs=5"):
        ParkourVecEnv([0, 1], num_envs=5, task_counts=[2, 2], device="cpu")
    with pytest.raises(ValueError, match="one count per task"):
        ParkourVecEnv([0, 1], task_counts=[2, 2, 2], device="cpu")
    with pytest.raises(ValueError, match="fewer than"):
        ParkourVecEnv("parkour_hard", num_envs=3, device="cpu")
    with pytest.raises(ValueError, match="drop setting"):
        ParkourVecEnv("parkour_hard", setting="easy", device="cpu")
    with pytest.raises(ValueError, match="onehot='ids' must be one of tasks, terrains"):
        ParkourVecEnv([0], onehot="ids", device="cpu")
    with pytest.raises(ValueError, match="pd='pid' must be one of"):
        ParkourVecEnv([0], pd="pid", device="cpu")
    with pytest.raises(ValueError, match="backend='gpu' must be one of auto, cpu, warp"):
        ParkourVecEnv([0], backend="gpu", device="cpu")
    with pytest.raises(ValueError, match="difficulties"):
        ParkourVecEnv([0], difficulties=[0.5, 1.5], device="cpu")
    env = make((20,), **QUIET)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(2, 12\)"):
        env.step(torch.zeros(2, 4))
    bad = torch.zeros(2, 12)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    with pytest.raises(TypeError, match="floating point"):
        env.step(torch.zeros(2, 12, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------------
# scandots


def brute_scandots(col: T.Column, x: float, y: float, z: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """The 132 scandots by hand, and each point's distance (in cells) to the nearest cell boundary."""
    out, edge = [], []
    nx, ny = col.height.shape
    for i in range(12):
        for j in range(11):
            lx, ly = -0.45 + 0.15 * i, -0.75 + 0.15 * j
            wx = x + math.cos(yaw) * lx - math.sin(yaw) * ly
            wy = y + math.sin(yaw) * lx + math.cos(yaw) * ly
            fx, fy = (wx - col.x0) / col.scale, (wy - col.y0) / col.scale
            a, c = min(max(int(math.floor(fx)), 0), nx - 2), min(max(int(math.floor(fy)), 0), ny - 2)
            h = min(col.height[a, c], col.height[a + 1, c], col.height[a, c + 1])
            out.append(min(max(z - 0.3 - float(h), -1.0), 1.0))
            edge.append(min(abs(fx - round(fx)), abs(fy - round(fy))))
    return np.array(out), np.array(edge)


def test_scandots_match_a_brute_force_query_rotated_with_yaw():
    env = make((6, 15), difficulties=[0.3, 1.0], **QUIET)
    env.reset()
    poses = [(3.37, 2.13, 0.0), (18 + 7.91, 1.62, 0.7), (9.43, 2.41, -2.1), (18 + 4.77, 2.29, math.pi / 2)]
    zs = [0.45, 0.63, 0.12, 1.31]
    for i, ((x, y, yaw), z) in enumerate(zip(poses, zs)):
        place(env, i, x, y, z=z, rpy=(0.0, 0.0, yaw))
    obs = env.refresh_obs()
    for i, ((x, y, yaw), z) in enumerate(zip(poses, zs)):
        b, _ = block_and_row(env, i)
        expect, edge = brute_scandots(b.scene.column, x, y, z, yaw)
        got = obs[i, O.SCAN].double().numpy()
        off = np.abs(got - expect) > 1e-4
        # float32 positions may fall on the other side of a cell boundary the point lies within 1e-3 cells of
        assert (edge[off] < 1e-3).all(), (i, np.flatnonzero(off), got[off], expect[off])
        assert off.sum() <= 2
        assert np.ptp(expect) > 0.05, "the poses must see obstacles, not flat ground"
    # the env's batched gather over stacked columns equals terrains.scan_height on each column
    xy = torch.rand(4, 500, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([190.0, 14.0]) - 5.0
    got = O.scan_heights(env._heights, env.env_block, xy, *env._grid)
    for i in range(4):
        b, _ = block_and_row(env, i)
        assert torch.equal(got[i], T.scan_height(b.scene.column, xy[i]))
    # the yaw turns the grid: with yaw pi/2 the point 1.2 m ahead lies at +1.2 m in world y
    b, _ = block_and_row(env, 3)
    ahead = O.scan_points(torch.tensor([[0.0, 0.0]]), torch.tensor([math.pi / 2]), torch.tensor([[1.2, 0.0]]))
    assert torch.allclose(ahead, torch.tensor([[[0.0, 1.2]]]), atol=1e-6)


def test_velocities_and_attitude_in_the_base_frame():
    env = make((20,), difficulties=[0.0], **QUIET)
    env.reset()
    place(env, 0, 3.0, 2.0, z=0.5, rpy=(0.3, -0.2, 1.1))
    place(env, 1, 3.0, 2.0, z=0.5, rpy=(0.0, 0.0, math.pi / 2))
    b = env.blocks[0]
    # MuJoCo's free joint: linear velocity in the world frame, angular velocity in the body frame
    b.sim.qvel[1, :6] = torch.tensor([1.0, 0.5, 0.0, 0.4, 0.0, -0.8], dtype=b.sim.dtype)
    obs = env.refresh_obs()
    assert obs[0, O.ROLL_PITCH].tolist() == pytest.approx([0.3, -0.2], abs=1e-5)
    # yaw pi/2: world +x is body -y, world +y is body +x
    assert obs[1, O.PRIV_EXPLICIT].tolist() == pytest.approx([2 * 0.5, -2 * 1.0, 0.0], abs=1e-5)
    assert obs[1, O.ANG_VEL].tolist() == pytest.approx([0.1, 0.0, -0.2], abs=1e-6)
    # a rolled and pitched base: R^T v by hand
    rpy = (0.3, -0.2, 1.1)
    b.sim.qvel[0, :3] = torch.tensor([0.3, -0.7, 0.2], dtype=b.sim.dtype)
    obs = env.refresh_obs()
    w, x, y, z = quat_from_rpy(*rpy)
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    assert obs[0, O.PRIV_EXPLICIT].numpy() == pytest.approx(2 * rot.T @ np.array([0.3, -0.7, 0.2]), abs=1e-5)


def test_observation_content_at_reset():
    env = make((6, 20), **QUIET)
    obs = env.reset()
    assert obs.shape == (4, 212 + 2) and obs.dtype == torch.float32
    assert torch.equal(obs[:, O.ONEHOT_START :], torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]]))
    assert torch.allclose(obs[:, O.DOF_POS], torch.zeros(4, 12), atol=1e-6)
    assert not obs[:, O.LAST_ACTION].any() and (obs[:, O.FOOT_CONTACT] == -0.5).all()
    cmd = obs[:, O.COMMAND]
    assert ((0.3 <= cmd) & (cmd <= 0.8)).all()
    assert not obs[:, O.ADDED_MASS].any() and not obs[:, O.COM_OFFSET].any() and (obs[:, O.FRICTION] == 1).all()
    assert not obs[:, O.KP_FACTOR].any() and not obs[:, O.KD_FACTOR].any()
    # spawn at the row origin, facing +x: the yaw differences are the headings to goals 0 and 1
    qpos, _ = state(env)
    for i in range(4):
        goals = env.env_goals[i].double()
        for k, col in ((0, O.DELTA_YAW), (1, O.DELTA_NEXT_YAW)):
            d = goals[k] - qpos[i, :2]
            assert obs[i, col].item() == pytest.approx(math.atan2(d[1], d[0]), abs=1e-5)
    # base 0.42 m above the highest sample under it: the spawn-zone roughness only
    assert ((qpos[:, 2] - R.SPAWN_HEIGHT).abs() <= T.ROUGHNESS[1] + 1e-6).all()


# ---------------------------------------------------------------------------------------------------------
# waypoints, progress, curriculum, terminations: pure functions, then through the env


def test_advance_goals_needs_two_consecutive_steps():
    idx = torch.zeros(4, dtype=torch.long)
    timer = torch.zeros(4, dtype=torch.long)
    seq = [  # distances of 4 envs over 4 steps
        [0.1, 0.1, 0.5, 0.29],
        [0.5, 0.2, 0.1, 0.31],
        [0.1, 0.2, 0.1, 0.29],
        [0.1, 0.1, 0.1, 0.29],
    ]
    hist = []
    for d in seq:
        idx, timer, reached = W.advance_goals(torch.tensor(d), timer, idx)
        hist.append(idx.tolist())
    # env 0: in, out, in, in -> reached at step 4; env 1: reached at step 2, in again at 3, 4 -> reached at 4
    # env 2: out, in, in -> step 3; env 3: in, out, in, in -> step 4
    assert hist == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [1, 2, 1, 1]]
    assert W.progress(torch.tensor([0, 4, 8, 10])).tolist() == [0.0, 0.5, 1.0, 1.0]
    padded = W.pad_goals(torch.arange(16.0).view(1, 8, 2))
    assert padded.shape == (1, 10, 2) and (padded[0, 8:] == padded[0, 7]).all()
    cur, nxt = W.current_goals(padded, torch.tensor([7]))
    assert cur.tolist() == [[14.0, 15.0]] and nxt.tolist() == [[14.0, 15.0]]


def test_waypoints_and_progress_in_the_env():
    env = make((20,), difficulties=[0.0], episode_length=4, **QUIET)
    env.reset()
    g0 = env.env_goals[0, 0].tolist()
    place(env, 0, *g0)
    out = [env.step(torch.zeros(2, 12)) for _ in range(2)]
    assert env.goal_idx.tolist() == [1, 0]  # env 1 stays at the spawn, 0.5 m+ from goal 0
    assert out[0][4]["success"].tolist() == [0.0, 0.0] and out[1][4]["success"].tolist() == [0.125, 0.0]
    _, _, _, trunc, info = env.step(torch.zeros(2, 12))
    assert not trunc.any()
    _, _, term, trunc, info = env.step(torch.zeros(2, 12))  # step 4: time-out
    assert trunc.all() and not term.any()
    ep = info["episode"]
    assert ep["done"].all() and ep["success"].tolist() == [0.125, 0.0] and ep["goals_reached"].tolist() == [1, 0]
    assert ep["progress"].tolist() == [0.125, 0.0] and ep["length"].tolist() == [4, 4]
    assert env.goal_idx.tolist() == [0, 0] and env.ep_length.tolist() == [0, 0]

    # reaching the 8th goal ends the episode as a time-out with progress 1
    env = make((20,), difficulties=[0.0], **QUIET)
    env.reset()
    env.goal_idx[0] = 7
    place(env, 0, *env.env_goals[0, 7].tolist())
    _, _, term, trunc, _ = env.step(torch.zeros(2, 12))
    assert not trunc.any()
    _, _, term, trunc, info = env.step(torch.zeros(2, 12))
    assert trunc.tolist() == [True, False] and not term.any()
    assert info["episode"]["success"][0] == 1.0 and info["episode"]["goals_reached"][0] == 8


def test_curriculum_update_rules():
    n_rows = 10
    gen = torch.Generator().manual_seed(0)
    level = torch.tensor([3, 3, 3, 3, 0, 9, 9])
    goals = torch.tensor([7, 8, 3, 0, 2, 7, 8])
    new = W.curriculum_update(level, goals, n_rows, gen)
    assert new[:5].tolist() == [4, 4, 2, 2, 0]  # up at >= 7, down at <= 3, clipped at 0
    # at the top: a random row in [0, 10)
    tops = W.curriculum_update(torch.full((2000,), 9), torch.full((2000,), 8), n_rows, gen)
    assert tops.min() == 0 and tops.max() == 9 and len(tops.unique()) == 10
    # 4..6 goals: stay, or with probability 0.25 a random row below
    for g in (4, 5, 6):
        lv = torch.full((20000,), 5)
        new = W.curriculum_update(lv, torch.full((20000,), g), n_rows, gen)
        moved = new != 5
        assert 0.23 < moved.float().mean() < 0.27
        assert (new[moved] < 5).all() and len(new[moved].unique()) == 5  # rows 0..4
    assert (W.curriculum_update(torch.zeros(100, dtype=torch.long), torch.full((100,), 5), n_rows, gen) == 0).all()
    # seeded: the same generator state gives the same moves
    a = W.curriculum_update(torch.full((50,), 5), torch.full((50,), 5), n_rows, torch.Generator().manual_seed(7))
    b = W.curriculum_update(torch.full((50,), 5), torch.full((50,), 5), n_rows, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_curriculum_in_the_env():
    env = make((0, 20), num_envs=40, setting="hard_cl", episode_length=2, **QUIET)
    assert env.curriculum
    env.reset()
    assert env.level.min() >= 0 and env.level.max() <= S.MAX_INIT_LEVEL and len(env.level.unique()) == 3
    env.level[:] = 5  # then an episode with no goal reached moves every env down a row
    env.step(torch.zeros(40, 12))
    _, _, _, trunc, info = env.step(torch.zeros(40, 12))
    assert trunc.all() and (info["episode"]["terrain_level"] == 5).all()
    assert (info["terrain_level"] == 4).all() and (env.level == 4).all()
    # the new episode starts on the new row: origin x = 18 * 4 + 1
    qpos, _ = state(env)
    assert torch.allclose(qpos[:, 0], torch.full((40,), 73.0, dtype=torch.float64))
    # without the curriculum rows are round-robin within each terrain type
    hard = make((0, 20), num_envs=24, **QUIET)
    hard.reset()
    assert hard.level.tolist() == [i % 10 for i in range(12)] * 2


def test_terminations():
    f = W.failed(torch.tensor([2.6, -2.6, 0.0, 0.0, 0.0, 2.4]), torch.tensor([0.0, 0.0, 1.6, -1.6, 0.0, 1.4]),
                 torch.tensor([0.3, 0.3, 0.3, 0.3, -0.26, -0.24]))  # fmt: skip
    assert f.tolist() == [True, True, True, True, True, False]
    t = W.timed_out(torch.tensor([1999, 2000, 5]), 2000, torch.tensor([7, 0, 8]))
    assert t.tolist() == [False, True, True]

    env = make((6,), num_envs=4, difficulties=[0.5], **QUIET)
    env.reset()
    col = env.blocks[0].scene.column
    pit = np.argwhere(col.height[:, 140] < -0.9)[0, 0]  # a pit sample on the centre line of the tile
    place(env, 0, 1.0, 2.0, z=0.6, rpy=(3.0, 0.0, 0.0))  # upside down
    place(env, 1, 1.0, 2.0, z=0.6, rpy=(0.0, 1.55, 0.0))  # nose down
    place(env, 2, col.x0 + pit * col.scale, 2.0, z=-0.3)  # in the pit
    _, _, term, trunc, info = env.step(torch.zeros(4, 12))
    assert term.tolist() == [True, True, True, False] and not trunc.any()
    assert info["episode"]["done"].tolist() == [True, True, True, False]
    # the three were reset to the spawn
    qpos, _ = state(env)
    assert torch.allclose(qpos[:3, :2], torch.tensor([[1.0, 2.0]] * 3, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------------------
# rewards and domain randomisation


def test_reward_terms_by_hand():
    base, goal = torch.tensor([[0.0, 0.0]] * 3), torch.tensor([[1.0, 0.0]] * 3)
    v = torch.tensor([[0.5, 0.3], [0.2, 0.0], [-0.2, 0.0]])
    r = W.tracking_goal_vel(v, base, goal, torch.tensor([0.4, 0.4, 0.4]))
    assert r.tolist() == pytest.approx([1.0, 0.5, -0.5], abs=1e-4)
    assert W.tracking_yaw(torch.tensor([0.5]), torch.tensor([0.2])).item() == pytest.approx(math.exp(-0.3))
    assert W.energy(torch.tensor([[1.0, -2.0, 3.0]]), torch.tensor([[2.0, 1.0, -1.0]])).item() == 2.0
    assert W.collision(torch.tensor([[0.05, 0.2, 0.0, 5.0, 0, 0, 0, 0.11]])).item() == 3
    assert W.EFFECTIVE_SCALES == pytest.approx(
        {"tracking_goal_vel": 0.08, "tracking_yaw": 0.02, "energy": -1e-5, "collision": -0.2}
    )
    terms = {k: torch.tensor([1.0, 1.0]) for k in W.REWARD_SCALES}
    terms["energy"] = torch.tensor([100.0, 100.0])
    terms["collision"] = torch.tensor([0.0, 1.0])
    total = W.total_reward(terms)
    assert total[0].item() == pytest.approx(0.08 + 0.02 - 1e-3) and total[1].item() == 0.0  # clipped at 0


def test_domain_randomisation_reaches_the_physics():
    env = make((6, 20), num_envs=6, seed=1, dof_reset_range=(0.0, 0.0), random_init_progress=False)
    obs = env.reset()
    assert torch.allclose(obs[:, O.FRICTION], env.friction) and torch.allclose(obs[:, O.KP_FACTOR], env.kp_scale - 1)
    assert ((0.6 <= env.friction) & (env.friction <= 2.0)).all() and len(env.friction.unique()) > 1
    assert ((0 <= env.added_mass) & (env.added_mass <= 3)).all() and (env.com_offset.abs() <= 0.2).all()
    assert ((0.8 <= env.kd_scale) & (env.kd_scale <= 1.2)).all()
    for _ in range(30):  # settle onto the feet
        env.step(torch.zeros(6, 12))
    for b in env.blocks:
        sim, sl, base = b.sim, b.sl, b.scene.base_body
        assert torch.allclose(
            sim.fields["geom_friction"][:, b.robot_geoms, 0].float(),
            env.friction[sl, None].expand(-1, len(b.robot_geoms)),
        )
        assert torch.allclose(sim.fields["body_mass"][:, base].float(), b.mass0 + env.added_mass[sl])
        assert torch.allclose(sim.fields["body_ipos"][:, base].float(), b.ipos0.float() + env.com_offset[sl])
        assert torch.allclose(sim.fields["actuator_gainprm"][:, :, 0].float(), R.KP * env.kp_scale[sl])
        assert torch.allclose(sim.fields["actuator_biasprm"][:, :, 2].float(), -R.KD * env.kd_scale[sl])
        # the contact's friction is the robot's draw: MuJoCo takes the larger of the pair, the terrain's is lower
        assert sim.model.geom_friction[0, 0] == TERRAIN_FRICTION[0] < 0.6
        for k in range(sim.n):
            m = sim.batch.get_model(k)
            d = mujoco.MjData(m)
            d.qpos[:] = sim.qpos[k].numpy()
            mujoco.mj_forward(m, d)
            assert d.ncon >= 4
            fr = np.array([d.contact[c].friction[0] for c in range(d.ncon)])
            assert np.allclose(fr, env.friction[sl][k].item(), rtol=1e-6), (fr, env.friction[sl][k])
            assert m.body_mass[base] == pytest.approx(b.mass0 + env.added_mass[sl][k].item(), rel=1e-6)


def test_pd_in_torch_and_in_the_engine_agree():
    """The same PD law computed in torch before each physics step, or by the engine's affine-bias actuators."""
    envs = [make((6, 15), seed=3, pd=pd, dof_reset_range=(0.0, 0.3)) for pd in ("torch", "engine")]
    for e in envs:
        e.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        a = torch.randn(4, 12, generator=gen) * 0.5
        (oa, ra, *_), (ob, rb, *_) = (e.step(a) for e in envs)
        assert (oa - ob).abs().max() < 1e-4 and (ra - rb).abs().max() < 1e-5
    assert (envs[0]._torques() - envs[1]._torques()).abs().max() < 1e-3
    assert envs[0]._torques().abs().max() > 1.0  # the torques are not trivially zero


# ---------------------------------------------------------------------------------------------------------
# the contract


def check_step_output(env: ParkourVecEnv, out) -> None:
    obs, rew, term, trunc, info = out
    n = env.num_envs
    assert obs.shape == (n, env.obs_dim) and obs.dtype == torch.float32 and torch.isfinite(obs).all()
    assert rew.shape == (n,) and rew.dtype == torch.float32 and (rew >= 0).all()
    assert term.dtype == torch.bool and trunc.dtype == torch.bool and not (term & trunc).any()
    assert obs.abs().max() <= 100
    assert info["final_obs"].shape == obs.shape and info["task_id"].tolist() == env.env_task_id.tolist()
    assert info["success"].dtype == torch.float32 and info["terrain_level"].shape == (n,)
    assert set(info["episode"]) >= {"done", "return", "length", "success", "task_id", "progress", "goals_reached"}
    assert torch.equal(info["episode"]["done"], term | trunc)
    assert info["physics_blowup"].shape == (n,) and info["physics_resets"].shape == (n,)


def test_contract_on_the_cpu_engine():
    env = make((6, 20), num_envs=5, task_counts=[3, 2], episode_length=6, random_init_progress=False)
    assert (env.num_envs, env.num_tasks, env.obs_dim, env.action_dim) == (5, 2, 214, 12)
    assert env.task_ids == [6, 20] and env.task_names == ["box_jump_even", "flat"] and env.task_counts == [3, 2]
    assert env.env_task_id.tolist() == [6, 6, 6, 20, 20] and env.task_index.tolist() == [0, 0, 0, 1, 1]
    assert env.block_of("flat") == slice(3, 5) and env.block_of(6) == slice(0, 3)
    assert "5 envs" in repr(env) and "box_jump_evenx3" in repr(env)
    obs = env.reset()
    assert torch.equal(obs, env.obs) and obs.shape == (5, 214)
    gen = torch.Generator().manual_seed(0)
    acts = torch.randn(6, 5, 12, generator=gen) * 0.5
    for t in range(6):
        out = env.step(acts[t])
        check_step_output(env, out)
    obs, _, term, trunc, info = out
    assert (term | trunc).all() and info["episode"]["length"].tolist() == [6] * 5
    # auto-reset: the returned observation starts a new episode, final_obs holds the last one
    final = info["final_obs"]
    assert torch.allclose(final[:, O.LAST_ACTION], acts[5].clamp(-5, 5))
    assert not obs[:, O.LAST_ACTION].any() and (obs[:, O.FOOT_CONTACT] == -0.5).all()
    assert torch.allclose(obs[:, O.PRIV_EXPLICIT], torch.zeros(5, 3), atol=1e-6)
    assert env.ep_length.tolist() == [0] * 5 and env.ep_return.tolist() == [0.0] * 5
    # a one-hot over all 21 terrain types, indexed by terrain id
    wide = make((6, 20), onehot="terrains", **QUIET)
    obs = wide.reset()
    assert wide.obs_dim == obs.shape[1] == 212 + 21 and wide.task_index.tolist() == [0, 0, 1, 1]
    assert obs[:, 212:].argmax(1).tolist() == [6, 6, 20, 20] and obs[:, 212:].sum(1).tolist() == [1.0] * 4
    # random initial progress on reset()
    env2 = make((6, 20), num_envs=20, episode_length=2000)
    env2.reset()
    assert env2.ep_length.max() > 100 and len(env2.ep_length.unique()) > 10


def test_state_dict_round_trip_and_masked_resets():
    env = make((6, 20), episode_length=5, seed=4)
    env.reset()
    gen = torch.Generator().manual_seed(1)
    acts = torch.randn(12, 4, 12, generator=gen) * 0.5
    for t in range(3):
        env.step(acts[t])
    saved = env.state_dict()
    first = [env.step(acts[t])[0] for t in range(3, 12)]
    env.load_state_dict(saved)
    again = [env.step(acts[t])[0] for t in range(3, 12)]
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    # the CUDA path (every block written masked, no indexing) resets exactly as the host path (indexing)
    envs = [make((6, 20), seed=4) for _ in range(2)]
    envs[1]._host_indexing = False
    mask = torch.tensor([False, True, False, True])
    for e in envs:
        e.reset()
        for t in range(3):
            e.step(acts[t])
        e.gen.manual_seed(9)
        e._reset_envs(mask)
    for k in ("level", "commands", "friction", "kp_scale", "env_goals", "ep_length", "actions"):
        assert torch.equal(getattr(envs[0], k), getattr(envs[1], k)), k
    (qa, va), (qb, vb) = state(envs[0]), state(envs[1])
    assert torch.equal(qa, qb) and torch.equal(va, vb)
    obs = [e._observe(*e._gather(), refresh=mask) for e in envs]
    assert torch.equal(obs[0], obs[1])


def test_warp_engine_short_run():
    pytest.importorskip("mujoco_warp")
    envs = {e: make((6, 20), backend=e, seed=2, episode_length=4, random_init_progress=False) for e in ("cpu", "warp")}
    first = {e: env.reset() for e, env in envs.items()}
    first["warp"] = host(start_like(envs["warp"], envs["cpu"]))  # CUDA: the C engine's draws (tests/devices.py)
    assert envs["warp"].backend == "warp"
    assert (first["cpu"] - first["warp"]).abs().max() < 1e-4  # the same draws, the same first observation
    gen = torch.Generator().manual_seed(0)
    acts = torch.randn(6, 4, 12, generator=gen) * 0.3
    for t in range(6):
        outs = {e: env.step(acts[t].to(env.device)) for e, env in envs.items()}
        check_step_output(envs["warp"], outs["warp"])
        # a few steps from the same start stay close across engines (float32 vs float64)
        if t < 3:
            assert (outs["cpu"][0] - host(outs["warp"][0])).abs().max() < 0.05
    assert outs["warp"][4]["episode"]["length"].tolist() == [2] * 4  # auto-reset at step 4


# ---------------------------------------------------------------------------------------------------------
# standing on every terrain type, both backends

STAND_GOALS = (1, 7)
"""Besides the spawn, the robot is placed at these goals (the first obstacle's centre, the exit 0.5 m past the
last obstacle)."""
STAND_STEPS = 50  # 1 s
REST_SPEED = 0.15
"""m/s or rad/s: the largest |qvel| entry of a robot counted as at rest after 1 s."""
ENGINE_DZ = 0.01
"""Metres: base heights after 1 s, MuJoCo C vs MuJoCo Warp, for robots at rest in both. Measured (difficulty 0.5,
seed 0): at the spawn <= 0.84 mm on all 21 types; at goals 1 and 7 <= 3.9 mm where both backends stand (sideways
ramp goal 1: 3.9 mm; box_jump_even goal 1: 2.3 mm)."""


def stand(tids: list[int], backend: str, like: dict | None = None) -> dict:
    """`like`: the C engine's reset state, which a Warp env on CUDA starts from (tests/devices.py)."""
    per = 1 + len(STAND_GOALS)
    device = DEVICE if backend == "warp" else "cpu"
    env = ParkourVecEnv(tids, task_counts=[per] * len(tids), device=device, backend=backend, difficulties=[0.5],
                        **QUIET)  # fmt: skip
    env.reset()
    start = env.state_dict()
    if like is not None:
        start_like(env, like)
    for b in env.blocks:
        for k, g in enumerate(STAND_GOALS):
            place(env, b.sl.start + 1 + k, *b.scene.column.goals[0, g])
    done = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
    for _ in range(STAND_STEPS):
        _, _, term, trunc, _ = env.step(torch.zeros(env.num_envs, 12, device=env.device))
        done |= term | trunc
    qpos, qvel = (host(x) for x in state(env))
    return {"z": qpos[:, 2], "done": host(done), "speed": qvel.abs().max(1).values, "per": per, "start": start}


def check_stand(tids: list[int]) -> None:
    pytest.importorskip("mujoco_warp")
    c = stand(tids, "cpu")
    w = stand(tids, "warp", like=c["start"])
    per = c["per"]
    rows, failures, compared = [], [], 0
    for n, tid in enumerate(tids):
        for k in range(per):
            i = n * per + k
            where = "spawn" if k == 0 else f"goal {STAND_GOALS[k - 1]}"
            rest = not c["done"][i] and not w["done"][i] and c["speed"][i] < REST_SPEED and w["speed"][i] < REST_SPEED
            dz = abs(c["z"][i] - w["z"][i]).item()
            zs = f"z {c['z'][i]:.4f} / {w['z'][i]:.4f} dz {1000 * dz:6.2f} mm"
            rows.append(f"{tid:2d} {T.TERRAIN_NAMES[tid]:34s} {where:7s} {zs} done {bool(c['done'][i])}/"
                        f"{bool(w['done'][i])} rest {rest}")  # fmt: skip
            if k == 0 and not rest:
                failures.append(f"{T.TERRAIN_NAMES[tid]}: the robot does not stand at the spawn")
            if rest:
                compared += 1
                if dz > ENGINE_DZ:
                    failures.append(f"{T.TERRAIN_NAMES[tid]} {where}: engines differ by {1000 * dz:.1f} mm")
    print("\n".join(rows))
    assert not failures, "\n".join(failures + rows)
    assert compared >= 0.75 * len(rows), "too few placements at rest to compare\n" + "\n".join(rows)


def test_robot_stands_alike_on_both_engines():
    check_stand([0, 6, 15])


@pytest.mark.slow
def test_robot_stands_alike_on_both_engines_all_types():
    check_stand([t for t in range(21) if t not in (0, 6, 15)])


def test_play_parkour_prints_the_progress_table(capsys):
    from mtbench.cli import main

    main(["play", "task=parkour_flat", "policy=zero", "num_envs=2", "episode_length=10"])
    out = capsys.readouterr().out
    assert "| flat | 2 |" in out and "success % = progress" in out
    with pytest.raises(SystemExit) as e:
        main(["play", "task=parkour_flat", "policy=nonsense", "num_envs=1", "episode_length=2"])
    assert e.value.code == 2 and "policy must be zero, random or a checkpoint" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# a fallen robot: the trunk on the terrain, both backends

FALLEN_POSES = {"back": (math.pi, 0.0, 0.0), "back, across": (math.pi, 0.0, math.pi / 2)}
"""(roll, pitch, yaw) of the robot lying on its back, legs up, along and across the course: the trunk's collision
geoms carry it (on its side it rests on its legs instead, which the standing test covers)."""
FALLEN_CLEARANCE = 0.12
"""Metres between the highest sample under the robot and its base at the start: it falls a few cm."""


def lie_down(tids: list[int], backend: str) -> dict:
    """The Go1 dropped on its back (FALLEN_POSES) at the spawn and STAND_GOALS of each type, the engine PD holding
    the default joint targets, 1 s; base positions and speeds after it."""
    from mtbench.envs.parkour.scene import build_scene
    from mtbench.sim import make_block

    out = {"pos": [], "speed": [], "ground": []}
    for tid in tids:
        scene = build_scene(tid, [0.5], pd="engine")
        col = scene.column
        points = [tuple(col.origins[0])] + [tuple(col.goals[0, g]) for g in STAND_GOALS]
        rows = [(x, y, rpy) for x, y in points for rpy in FALLEN_POSES.values()]
        threads = {"nthread": 1} if backend == "cpu" else {}
        sim = make_block(backend, scene.model, len(rows), DEVICE if backend == "warp" else torch.device("cpu"),
                         **threads)  # fmt: skip
        ground = [ground_under(col, x, y) for x, y, _ in rows]
        qpos = [np.concatenate([[x, y, g + FALLEN_CLEARANCE], quat_from_rpy(*rpy), R.DEFAULT_JOINT_POS])
                for (x, y, rpy), g in zip(rows, ground)]  # fmt: skip
        sim.qpos[:] = torch.as_tensor(np.stack(qpos), dtype=sim.dtype)
        sim.qvel[:] = 0
        sim.ctrl[:] = torch.as_tensor(R.DEFAULT_JOINT_POS, dtype=sim.dtype)
        sim.forward()
        for _ in range(STAND_STEPS):
            assert not sim.step(R.DECIMATION, kinematics=False).any()
        out["pos"].append(host(sim.qpos[:, :3]).double())
        out["speed"].append(host(sim.qvel).double().abs().max(1).values)
        out["ground"].append(torch.tensor(ground, dtype=torch.float64))
    return {k: torch.cat(v) for k, v in out.items()}


def check_fallen(tids: list[int]) -> None:
    pytest.importorskip("mujoco_warp")
    c, w = lie_down(tids, "cpu"), lie_down(tids, "warp")
    per = (1 + len(STAND_GOALS)) * len(FALLEN_POSES)
    rows, failures, compared = [], [], 0
    for i in range(len(c["speed"])):
        tid, k = tids[i // per], i % per
        rest = c["speed"][i] < REST_SPEED and w["speed"][i] < REST_SPEED
        same_place = float((c["pos"][i, :2] - w["pos"][i, :2]).norm()) < 0.015
        dz = abs(float(c["pos"][i, 2] - w["pos"][i, 2]))
        lifted = float(c["pos"][i, 2] - c["ground"][i])
        rows.append(f"{T.TERRAIN_NAMES[tid]:34s} #{k} z {c['pos'][i, 2]:.4f} / {w['pos'][i, 2]:.4f} dz {1000 * dz:6.2f}"
                    f" mm, base {lifted:.3f} m over the ground, rest {rest}, same place {same_place}")  # fmt: skip
        if rest and same_place:
            compared += 1
            if dz > ENGINE_DZ:
                failures.append(f"{rows[-1]}: engines differ")
        # lying on its back, the base is within 0.1 m of the highest sample around its start (lower where it slid
        # down a step); a robot held up by its legs would be 0.3 m up
        if rest and lifted > 0.1:
            failures.append(f"{rows[-1]}: not lying on the terrain")
    print("\n".join(rows))
    assert not failures, "\n".join(failures + rows)
    assert compared >= 0.75 * len(rows), "too few placements at rest to compare\n" + "\n".join(rows)


def test_fallen_robot_rests_alike_on_both_engines():
    check_fallen([0, 6, 15])


@pytest.mark.slow
def test_fallen_robot_rests_alike_on_both_engines_all_types():
    check_fallen([t for t in range(21) if t not in (0, 6, 15)])
