"""The Go1 model (mtbench/envs/parkour/assets/go1.xml), its PD law, and standing in both backends.

The numbers the model must carry are restated here from Unitree's go1_description (const.xacro: joint limits
in degrees, 33.5 N m, link masses), independently of the constants in robot.py. The stand test runs MTBench's
control loop (PD recomputed at every 5 ms physics step, 4 per policy step, action 0) for 5 s from the 0.42 m
spawn on MuJoCo C and on MuJoCo Warp (Warp's CPU device; MTBENCH_TEST_DEVICE=cuda:0 for CUDA). This file took
58 s with an empty Warp kernel cache (JIT) and 15 s warm (~/.cache/warp) on 2 cores.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch
from devices import DEVICE

from mtbench.envs.parkour import robot as R
from mtbench.sim import make_block

LIMITS_DEG = {"hip": (-46.0, 46.0), "thigh": (-60.0, 240.0), "calf": (-154.5, -52.5)}
TORQUE_LIMIT = 33.5
LINK_MASSES = {"trunk": 4.8, "hip": 0.510299, "thigh": 0.898919, "calf": 0.158015, "foot": 0.06}
MASS_BAND = (11.0, 12.5)
"""kg. The published links sum to 11.31 kg; Unitree quotes about 12 kg for the robot with its battery and
shell. A missing leg (-1.6 kg) or a doubled trunk falls outside."""
DEFAULT_POSE = [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5]  # FL FR RL RR x hip thigh calf

N_WORLDS = 4
KP_SCALE = (0.8, 1.0, 1.2, 1.0)
"""Per-world motor strength (MTBench draws U(0.8, 1.2) per env and joint); kd scaled inversely below."""
POLICY_STEPS = 250  # x 4 physics steps x 5 ms = 5 s

HEIGHT_BAND = (0.28, 0.32)
"""Metres, trunk height after 5 s. Measured 0.2995 m at nominal strength, 0.2946 m at Kp 0.8x and 0.3026 m
at 1.2x (the PD sags under the robot's weight: joints end up to 0.11 rad from the targets), in both backends.
Measured failures: without the rotor armature the legs ring and the trunk ends at 0.17-0.25 m; with the
actuators driving the wrong legs it falls over at 0.06-0.12 m. A robot that never landed stays at 0.42 m."""
TILT_MAX = 0.02
"""rad, |roll| and |pitch| after 5 s (measured < 0.005)."""
FOOT_Z_BAND = (0.013, 0.021)
"""Metres, foot-sphere centre height (radius 0.02) on the plane: in contact, penetrating at most 7 mm
(measured 18.1 to 18.6 mm: MuJoCo's soft contact lets the feet sink ~1.7 mm)."""
ENGINE_TOL = 1e-3
"""Metres, trunk height, MuJoCo C (float64) vs MuJoCo Warp (float32), world by world. Measured 1.2e-7 m (joints
1.6e-6 rad): both run the same Euler/Newton step on four sphere-plane contacts. 1 mm still catches a PD written
to the wrong joints, a lost motor-strength factor or a different contact model (e.g. a margin on one side)."""


def test_model_structure_and_published_numbers():
    m = R.load_go1()
    assert (m.nq, m.nv, m.nu) == (19, 18, 12)
    assert m.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE and m.joint(0).name == R.ROOT_JOINT
    assert m.body(1).name == R.BASE_BODY
    R.check_joint_order(m)
    for i, name in enumerate(R.JOINT_NAMES):
        j = m.joint(name)
        assert j.type[0] == mujoco.mjtJoint.mjJNT_HINGE
        part = name.split("_")[1]
        np.testing.assert_allclose(j.range, np.deg2rad(LIMITS_DEG[part]), atol=1e-9, err_msg=name)
        np.testing.assert_allclose(j.axis, [1, 0, 0] if part == "hip" else [0, 1, 0], err_msg=name)
        assert m.actuator_trnid[i, 0] == j.id
    np.testing.assert_allclose(m.actuator_ctrlrange, np.tile([-TORQUE_LIMIT, TORQUE_LIMIT], (12, 1)))
    assert m.actuator_ctrllimited.all() and (m.actuator_gear[:, 0] == 1).all()
    np.testing.assert_allclose(R.TORQUE_LIMITS, TORQUE_LIMIT)
    np.testing.assert_allclose(R.JOINT_LIMITS, m.jnt_range[1:])
    np.testing.assert_allclose(R.DEFAULT_JOINT_POS, DEFAULT_POSE)
    assert ((R.JOINT_LIMITS[:, 0] < R.DEFAULT_JOINT_POS) & (R.DEFAULT_JOINT_POS < R.JOINT_LIMITS[:, 1])).all()

    for leg in R.LEGS:
        for part in ("hip", "thigh", "calf", "foot"):
            assert m.body(f"{leg}_{part}").mass[0] == pytest.approx(LINK_MASSES[part], abs=1e-9)
    assert m.body(R.BASE_BODY).mass[0] == pytest.approx(LINK_MASSES["trunk"], abs=1e-9)
    total = mujoco.mj_getTotalmass(m)
    assert MASS_BAND[0] <= total <= MASS_BAND[1]
    assert total == pytest.approx(R.TOTAL_MASS, abs=1e-9)

    assert m.opt.timestep == R.SIM_DT == 0.005
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert m.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON
    for foot in R.FOOT_GEOMS:
        g = m.geom(foot)
        assert g.type[0] == mujoco.mjtGeom.mjGEOM_SPHERE and g.size[0] == pytest.approx(0.02)
        assert m.geom_bodyid[g.id] == m.body(foot).id
    assert m.site(R.IMU_SITE).bodyid[0] == m.body(R.BASE_BODY).id
    assert (m.geom_margin == 0).all()


def test_collision_bits_self_collision_off():
    m = R.load_go1(floor=True)
    floor = m.geom("floor").id
    robot = [g for g in range(m.ngeom) if g != floor and (m.geom_contype[g] or m.geom_conaffinity[g])]
    assert len(robot) == 2 + 4 * 4  # trunk capsules; hip, thigh, calf capsules and foot sphere per leg
    # only spheres and capsules touch the terrain: MuJoCo Warp's box-height-field contacts are unreliable
    shapes = {int(m.geom_type[g]) for g in robot}
    assert shapes == {int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CAPSULE)}

    def collide(a: int, b: int) -> bool:
        return bool((m.geom_contype[a] & m.geom_conaffinity[b]) | (m.geom_contype[b] & m.geom_conaffinity[a]))

    assert not any(collide(a, b) for i, a in enumerate(robot) for b in robot[i + 1 :])
    assert all(collide(a, floor) for a in robot)
    for g in range(m.ngeom):  # visual geoms never collide
        if g != floor and g not in robot:
            assert m.geom_group[g] == 2 and m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0


def _pd_step(m: mujoco.MjModel, d: mujoco.MjData) -> None:
    q = torch.from_numpy(d.qpos[R.QPOS_JOINTS].copy())[None]
    qd = torch.from_numpy(d.qvel[R.QVEL_JOINTS].copy())[None]
    d.ctrl[:] = R.pd_torque(q, qd, torch.from_numpy(R.DEFAULT_JOINT_POS)[None])[0].numpy()
    mujoco.mj_step(m, d)


def _contact_geoms(m: mujoco.MjModel, d: mujoco.MjData) -> set[tuple[str, str]]:
    return {tuple(sorted((m.geom(c.geom[0]).name, m.geom(c.geom[1]).name))) for c in d.contact[: d.ncon]}


def test_default_pose_touches_the_floor_with_feet_only():
    m = R.load_go1(floor=True)
    d = mujoco.MjData(m)
    d.qpos[:] = R.default_qpos(1.0)
    mujoco.mj_kinematics(m, d)
    lowest = min(d.xpos[m.body(f).id, 2] for f in R.FOOT_BODIES) - 0.02
    d.qpos[2] -= lowest + 0.001  # the lowest foot 1 mm into the floor
    mujoco.mj_forward(m, d)
    feet = {tuple(sorted(("floor", f))) for f in R.FOOT_GEOMS}
    assert d.ncon >= 1 and _contact_geoms(m, d) <= feet
    d.qpos[:] = R.default_qpos()
    for _ in range(300):  # drop from the spawn height and settle under PD
        _pd_step(m, d)
    assert _contact_geoms(m, d) == feet


def test_contact_sensors_carry_the_weight():
    spec = R.go1_scene(floor=True)
    names = R.add_contact_sensors(spec)
    m = spec.compile()
    d = mujoco.MjData(m)
    d.qpos[:] = R.default_qpos(0.33)
    for _ in range(400):
        _pd_step(m, d)
    data = {n: d.sensor(n).data for n in names}
    feet = np.array([data[f"{f}_contact"] for f in R.FOOT_BODIES])
    assert (feet[:, 0] == 1).all() and (np.linalg.norm(feet[:, 1:], axis=1) > 2.0).all()
    assert np.linalg.norm(feet[:, 1:].sum(axis=0)) == pytest.approx(R.TOTAL_MASS * 9.81, rel=0.01)
    for b in R.PENALISED_CONTACT_BODIES:
        assert data[f"{b}_contact"][0] == 0 and not data[f"{b}_contact"][1:].any()


def test_pd_torque_matches_hand_computation_and_clips():
    q = torch.tensor([[0.0, 0.5, -1.0, 0.2, 0.8, -1.5, 0.1, 1.0, -2.0, -0.1, 1.0, -1.5]], dtype=torch.float64)
    qd = torch.tensor([[1.0, -2.0, 0.0, 0.5, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, -1.0, 0.0]], dtype=torch.float64)
    target = torch.from_numpy(R.DEFAULT_JOINT_POS)[None]
    # by hand, Kp 50, Kd 3: 50*(target - q) - 3*qd
    expected = [
        50 * 0.1 - 3 * 1.0,  # 2.0
        50 * 0.3 + 3 * 2.0,  # 21.0
        50 * -0.5,  # -25.0
        50 * -0.3 - 3 * 0.5,  # -16.5
        0.0,
        0.0,
        0.0,
        -3 * 3.0,  # -9.0
        50 * 0.5,  # 25.0
        0.0,
        3 * 1.0,  # 3.0
        0.0,
    ]
    tau = R.pd_torque(q, qd, target)
    torch.testing.assert_close(tau, torch.tensor([expected], dtype=torch.float64))

    # motor-strength factors per joint, and clipping at +-33.5 N m
    kp = torch.full((1, 12), 1.2, dtype=torch.float64)
    kd = torch.full((1, 12), 0.8, dtype=torch.float64)
    q2 = target - torch.tensor([[1.0, -1.0, 0.2, 0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    qd2 = torch.zeros_like(q2)
    qd2[0, 3], qd2[0, 4] = 20.0, -5.0
    tau2 = R.pd_torque(q2, qd2, target, kp_scale=kp, kd_scale=kd)
    # 60*1 = 60 -> 33.5; 60*-1 -> -33.5; 60*0.2 = 12; -2.4*20 = -48 -> -33.5; -2.4*-5 = 12
    torch.testing.assert_close(tau2[0, :5], torch.tensor([33.5, -33.5, 12.0, -33.5, 12.0], dtype=torch.float64))
    assert not tau2[0, 5:].any()
    # limits given explicitly, per env
    tau3 = R.pd_torque(q2, qd2, target, kp_scale=kp, kd_scale=kd, limits=torch.full((1, 12), 10.0))
    torch.testing.assert_close(tau3[0, :5], torch.tensor([10.0, -10.0, 10.0, -10.0, 10.0], dtype=torch.float64))


def _roll_pitch(quat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w, x, y, z = quat.unbind(-1)
    roll = torch.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = torch.asin(torch.clamp(2 * (w * y - z * x), -1, 1))
    return roll, pitch


def _stand(backend: str) -> dict[str, torch.Tensor]:
    """MTBench's loop with action 0 for POLICY_STEPS policy steps from the spawn pose; final state, float64."""
    m = R.load_go1(floor=True)
    where = torch.device("cpu") if backend == "cpu" else DEVICE  # the Warp side on MTBENCH_TEST_DEVICE
    block = make_block(backend, m, N_WORLDS, where, **({"nthread": 1} if backend == "cpu" else {}))
    dt, dev = block.dtype, block.device
    block.qpos[:] = torch.as_tensor(R.default_qpos(R.SPAWN_HEIGHT), dtype=dt, device=dev)
    block.qvel[:] = 0
    block.forward()
    kp = torch.tensor(KP_SCALE, dtype=dt, device=dev)[:, None].expand(N_WORLDS, 12)
    kd = 1.0 / kp
    limits = torch.as_tensor(R.TORQUE_LIMITS, dtype=dt, device=dev)
    default = torch.as_tensor(R.DEFAULT_JOINT_POS, dtype=dt, device=dev)
    action = torch.zeros(N_WORLDS, 12, dtype=dt, device=dev)
    for _ in range(POLICY_STEPS):
        target = default + action * 1.0  # action_scale 1.0
        for _ in range(R.DECIMATION):
            q, qd = block.qpos[:, R.QPOS_JOINTS], block.qvel[:, R.QVEL_JOINTS]
            block.ctrl[:] = R.pd_torque(q, qd, target, kp, kd, limits)
            assert not block.step(1).any()
    feet = [m.body(f).id for f in R.FOOT_BODIES]
    return {
        "qpos": block.qpos.double().cpu().clone(),
        "qvel": block.qvel.double().cpu().clone(),
        "foot_z": block.xpos[:, feet, 2].double().cpu().clone(),
    }


@pytest.fixture(scope="module")
def stood_cpu() -> dict[str, torch.Tensor]:
    return _stand("cpu")


@pytest.fixture(scope="module")
def stood_warp() -> dict[str, torch.Tensor]:
    pytest.importorskip("mujoco_warp")
    return _stand("warp")


@pytest.mark.parametrize("backend", ["cpu", "warp"])
def test_stands_on_a_plane(request: pytest.FixtureRequest, backend: str):
    s = request.getfixturevalue(f"stood_{backend}")
    z = s["qpos"][:, 2]
    assert ((HEIGHT_BAND[0] < z) & (z < HEIGHT_BAND[1])).all(), z
    roll, pitch = _roll_pitch(s["qpos"][:, 3:7])
    assert (roll.abs() < TILT_MAX).all() and (pitch.abs() < TILT_MAX).all(), (roll, pitch)
    fz = s["foot_z"]
    assert ((FOOT_Z_BAND[0] < fz) & (fz < FOOT_Z_BAND[1])).all(), fz
    assert s["qvel"].abs().max() < 0.01  # at rest
    assert (s["qpos"][:, :2].abs() < 0.05).all()  # no walking off
    # the motor-strength factors reach the physics: a stiffer PD sags less
    assert z[0] < z[1] < z[2] and z[1] == pytest.approx(z[3].item(), abs=1e-9)
    err = (s["qpos"][:, R.QPOS_JOINTS] - torch.from_numpy(R.DEFAULT_JOINT_POS)).abs().max()
    assert err < 0.15  # the PD holds the default pose up to its gravity sag (0.114 rad measured)


def test_engines_agree(stood_cpu: dict[str, torch.Tensor], stood_warp: dict[str, torch.Tensor]):
    za, zb = stood_cpu["qpos"][:, 2], stood_warp["qpos"][:, 2]
    assert (za - zb).abs().max() < ENGINE_TOL, (za, zb)
    assert (stood_cpu["qpos"][:, R.QPOS_JOINTS] - stood_warp["qpos"][:, R.QPOS_JOINTS]).abs().max() < 0.01
