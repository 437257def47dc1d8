"""The Unitree Go1 for the parkour suite: model loading, joint order, default pose and the PD law.

The model (`assets/go1.xml`) is written from the robot's published parameters; its header lists every
number and its source. Control follows MTBench (reference §2.6): the policy's 12 actions are joint-position
offsets, target = DEFAULT_JOINT_POS + action * action_scale, and at *every* physics step (dt 0.005, 4 per
policy step) the torque tau = Kp*m_p*(target - q) - Kd*m_d*qd is clipped to the effort limits and written to
`ctrl` of 12 `<motor>` actuators (gear 1). Computing it in torch, not with MuJoCo position actuators, keeps
the per-env, per-joint motor-strength factors m_p, m_d (U(0.8, 1.2) upstream) a plain tensor.

Joint order (qpos[7:19], qvel[6:18], ctrl[0:12], actions): legs FL, FR, RL, RR, each hip, thigh, calf: the
Isaac Gym DOF order of MTBench. Feet, thighs and calves are listed in the same leg order.

Collision bits. MuJoCo lets geoms a, b collide when (contype_a & conaffinity_b) | (contype_b & conaffinity_a):
  robot collision geoms    contype = ROBOT_CONTYPE (2)    conaffinity = ROBOT_CONAFFINITY (1)
  terrain geoms            contype = TERRAIN_CONTYPE (1)  conaffinity = TERRAIN_CONAFFINITY (2)
so robot-terrain pairs collide and robot-robot (self-collision off, as MTBench) and terrain-terrain pairs
never do. A terrain geom left at MuJoCo's default 1/1 still touches the robot, but would also be tested
against other terrain geoms on other bodies. Visual geoms have contype = conaffinity = 0 (group 2).

Composing a scene. `go1_spec()` returns an `MjSpec` of the robot alone; `go1_scene(terrain)` attaches a
terrain spec *into* it (names, joint order and `<option>` stay the robot's), and `load_go1(floor=True)` is
the robot on a plane, for tests. The root body is `trunk` (free joint `root`) at the world origin in the
spec; place it through qpos (`default_qpos`) at reset.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import torch

GO1_XML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "go1.xml")

LEGS = ("FL", "FR", "RL", "RR")
JOINT_NAMES = tuple(f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf"))
ACTUATOR_NAMES = tuple(f"{leg}_{part}" for leg in LEGS for part in ("hip", "thigh", "calf"))
BASE_BODY = "trunk"
ROOT_JOINT = "root"
IMU_SITE = "imu"
FOOT_BODIES = tuple(f"{leg}_foot" for leg in LEGS)
FOOT_GEOMS = FOOT_BODIES
FOOT_SITES = FOOT_BODIES
THIGH_BODIES = tuple(f"{leg}_thigh" for leg in LEGS)
CALF_BODIES = tuple(f"{leg}_calf" for leg in LEGS)
PENALISED_CONTACT_BODIES = THIGH_BODIES + CALF_BODIES
"""Bodies whose contacts the collision penalty counts (MTBench `penalize_contacts_on: [thigh, calf]`)."""

NUM_JOINTS = 12
QPOS_JOINTS = slice(7, 19)
QVEL_JOINTS = slice(6, 18)

# MTBench init_state.default_joint_angles (reference §2.6)
_DEFAULT = {"hip": {"L": 0.1, "R": -0.1}, "thigh": {"F": 0.8, "R": 1.0}, "calf": -1.5}
DEFAULT_JOINT_POS = np.array(
    [v for leg in LEGS for v in (_DEFAULT["hip"][leg[1]], _DEFAULT["thigh"][leg[0]], _DEFAULT["calf"])],
    dtype=np.float64,
)
"""(12,) rad, in JOINT_NAMES order: hips FL/RL +0.1, FR/RR -0.1; thighs front 0.8, rear 1.0; calves -1.5."""

KP = 50.0
"""N m / rad (MTBench control.stiffness)."""
KD = 3.0
"""N m s / rad (MTBench control.damping)."""
SIM_DT = 0.005
DECIMATION = 4
SPAWN_HEIGHT = 0.42
"""Trunk height above the env origin at reset (MTBench init_state.pos); the feet start ~9 cm up and drop."""

_HIP_RANGE = (-0.802851455917, 0.802851455917)  # +-46 deg
_THIGH_RANGE = (-1.0471975512, 4.18879020479)  # -60 .. 240 deg
_CALF_RANGE = (-2.69653369433, -0.916297857297)  # -154.5 .. -52.5 deg
JOINT_LIMITS = np.array([r for _ in LEGS for r in (_HIP_RANGE, _THIGH_RANGE, _CALF_RANGE)], dtype=np.float64)
"""(12, 2) rad, lower/upper, as in the model (Unitree go1_description const.xacro)."""
TORQUE_LIMITS = np.full(NUM_JOINTS, 33.5, dtype=np.float64)
"""(12,) N m, the effort limit of every joint (Unitree const.xacro, the walk-these-ways/Dribblebot URDF that
MTBench's asset descends from). Unitree's newer URDF lists 23.7 N m; see assets/go1.xml."""
TOTAL_MASS = 11.308932
"""kg, the sum of the published link masses (trunk 4.8, per leg 0.510299 + 0.898919 + 0.158015 + 0.06)."""

ROBOT_CONTYPE = 2
ROBOT_CONAFFINITY = 1
TERRAIN_CONTYPE = 1
TERRAIN_CONAFFINITY = 2

_CONDATA = mujoco.mjtConDataField
CONTACT_SENSOR_DATA = (1 << int(_CONDATA.mjCONDATA_FOUND)) | (1 << int(_CONDATA.mjCONDATA_FORCE))
"""`data="found force"` of a MuJoCo contact sensor (intprm[0])."""
CONTACT_SENSOR_NETFORCE = 3
"""`reduce="netforce"` of a MuJoCo contact sensor (intprm[1])."""


def go1_spec() -> mujoco.MjSpec:
    """A fresh `MjSpec` of the Go1 alone (no floor), with the simulation options in go1.xml's `<option>`."""
    return mujoco.MjSpec.from_file(GO1_XML)


def go1_scene(
    terrain: mujoco.MjSpec | None = None, floor: bool = False, terrain_prefix: str = "terrain/"
) -> mujoco.MjSpec:
    """The Go1 spec with `terrain` (a spec of static world geoms) attached under `terrain_prefix`, and/or a plane.

    The terrain goes into the robot's spec, not the other way round, so the robot's names, its joints at
    qpos[7:19] and its actuators at ctrl[0:12] stay as listed here, and the options (timestep 0.005, Euler,
    Newton) are the robot's. Leave the terrain spec's `<option>` at MuJoCo's defaults: an attach keeps the
    parent's value and warns where the child sets another.
    """
    spec = go1_spec()
    if terrain is not None:
        spec.attach(terrain, prefix=terrain_prefix, frame=spec.worldbody.add_frame())
    if floor:
        add_floor(spec)
    return spec


def add_floor(spec: mujoco.MjSpec, friction: float = 1.0) -> mujoco.MjSpec:
    """Add an infinite ground plane `floor` at z = 0 with the terrain collision bits (tests, flat ground)."""
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.0, 0.0, 0.05],
        contype=TERRAIN_CONTYPE,
        conaffinity=TERRAIN_CONAFFINITY,
        friction=[friction, 0.005, 0.0001],
    )
    return spec


def add_contact_sensors(
    spec: mujoco.MjSpec, bodies: tuple[str, ...] = FOOT_BODIES + PENALISED_CONTACT_BODIES
) -> tuple[str, ...]:
    """Add one MuJoCo contact sensor per body: 4 values, [found, net contact force on the body (xyz)].

    This is MTBench's per-body net contact force (foot contact: norm > 2 N; collision penalty: thigh/calf
    norm > 0.1 N), computed by the engine. Returns the sensor names (`<body>_contact`), in `bodies` order.
    Measured: MuJoCo C and MuJoCo Warp both fill it (equal to mj_contactForce), but it is an acceleration-
    stage sensor, so read it from the engine's sensordata after a step; it costs a contact-matching pass
    per step, which is why go1.xml does not carry it by default.
    """
    names = []
    for body in bodies:
        name = f"{body}_contact"
        spec.add_sensor(
            name=name,
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_BODY,
            objname=body,
            intprm=[CONTACT_SENSOR_DATA, CONTACT_SENSOR_NETFORCE, 1],
        )
        names.append(name)
    return tuple(names)


def load_go1(floor: bool = False) -> mujoco.MjModel:
    """The compiled Go1, optionally standing on a plane floor (geom `floor`)."""
    return go1_scene(floor=floor).compile()


def check_joint_order(model: mujoco.MjModel, prefix: str = "") -> None:
    """Raise if `model`'s Go1 joints/actuators are not JOINT_NAMES at qpos[7:19] and ctrl[0:12] (a terrain
    attached with `go1_scene` comes after the robot, so it cannot shift them; a scene built otherwise might)."""
    for i, (joint, act) in enumerate(zip(JOINT_NAMES, ACTUATOR_NAMES)):
        j = model.joint(prefix + joint)
        if j.qposadr[0] != QPOS_JOINTS.start + i or j.dofadr[0] != QVEL_JOINTS.start + i:
            raise ValueError(f"joint {prefix + joint} is at qpos {j.qposadr[0]}, expected {QPOS_JOINTS.start + i}")
        if model.actuator(prefix + act).id != i or model.actuator_trnid[i, 0] != j.id:
            raise ValueError(f"actuator {i} should drive {prefix + joint}")


def default_qpos(height: float = SPAWN_HEIGHT, xy: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(19,) qpos of the Go1 in its default pose: trunk level at `height`, yaw 0, joints DEFAULT_JOINT_POS."""
    q = np.zeros(19)
    q[0:3] = (xy[0], xy[1], height)
    q[3] = 1.0
    q[QPOS_JOINTS] = DEFAULT_JOINT_POS
    return q


def pd_torque(
    q: torch.Tensor,
    qd: torch.Tensor,
    target: torch.Tensor,
    kp_scale: torch.Tensor | float = 1.0,
    kd_scale: torch.Tensor | float = 1.0,
    limits: torch.Tensor | float | None = None,
    kp: float = KP,
    kd: float = KD,
) -> torch.Tensor:
    """MTBench's PD law, batched: clip(kp*kp_scale*(target - q) - kd*kd_scale*qd, -limits, limits).

    q, qd, target: (n, 12); kp_scale, kd_scale: the motor-strength factors, scalars or anything that
    broadcasts to (n, 12); limits: (12,) or (n, 12) effort limits (default TORQUE_LIMITS).
    """
    tau = kp * kp_scale * (target - q) - kd * kd_scale * qd
    if limits is None:
        limits = torch.as_tensor(TORQUE_LIMITS, dtype=tau.dtype, device=tau.device)
    elif not isinstance(limits, torch.Tensor):
        limits = torch.as_tensor(limits, dtype=tau.dtype, device=tau.device)
    return torch.maximum(torch.minimum(tau, limits), -limits)
