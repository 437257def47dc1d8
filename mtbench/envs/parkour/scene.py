"""One MuJoCo model per terrain type: that type's column of rows with the Go1 and its contact sensors.

Friction. MuJoCo combines the friction of two touching geoms by taking the larger of each coefficient (both
MuJoCo C and MuJoCo Warp; checked through `contact.friction`). Upstream randomises only the robot's friction,
U(0.6, 2.0), against terrain friction 1.0. For the drawn value to be the contact's coefficient, the terrain
here gets a friction below any robot value, `TERRAIN_FRICTION` (sliding 0.01, torsional 0.001, rolling 1e-5):
max(robot, terrain) is then the robot's value in all three, and with domain randomisation off the robot keeps
go1.xml's 1.0 (upstream's default contact). Not 0: MuJoCo Warp warns that a zero sliding friction under
condim 3 may give NaNs. (PhysX, upstream's engine, averages the two by default, so upstream's effective
coefficient was probably (f + 1) / 2 in [0.8, 1.5]; we take the reference's "friction U(0.6, 2.0)" literally.)

PD control (`pd`). "torch": the Go1's `<motor>` actuators as robot.py builds them; the env computes the PD torque
in torch before every physics step and writes it to `ctrl`. "engine": the same law inside the physics engine, so a
policy step is one `step(4)` call: each actuator becomes gain Kp m_p on ctrl (= the joint target) plus the affine
bias -Kp m_p q - Kd m_d qd, clipped to the motor's +-33.5 N m by `forcerange` (ctrl unlimited), with the gains per
world (`actuator_gainprm`, `actuator_biasprm`) for the motor-strength factors; `actuatorfrc` sensors return the
applied torques (for the energy reward). Both engines evaluate it explicitly at the start of each step from the
current q, qd, exactly as the torch path does (the model's Euler integrator treats only joint damping implicitly).

Models are cached by (terrain id, row difficulties, terrain seed, pd): the same column seed gives the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from mtbench.envs.parkour import robot as R
from mtbench.envs.parkour.terrain_scene import terrain_spec
from mtbench.envs.parkour.terrains import Column, make_column

TERRAIN_FRICTION = (0.01, 0.001, 1e-5)
"""Below every robot geom's coefficients, so MuJoCo's max rule makes the robot's friction the contact's."""
PER_WORLD = ("geom_friction", "body_mass", "body_ipos")
"""Model fields that get one value per world, for domain randomisation."""
CONTACT_BODIES = R.FOOT_BODIES + R.PENALISED_CONTACT_BODIES
"""Contact sensors, in this order: 4 feet, 4 thighs, 4 calves."""
PD_FIELDS = ("actuator_gainprm", "actuator_biasprm")
"""Per-world fields of the "engine" PD: gainprm[:, 0] = Kp m_p, biasprm[:, 1] = -Kp m_p, biasprm[:, 2] = -Kd m_d."""
PD_MODES = ("torch", "engine")
SPAWN_FOOTPRINT = (0.3, 0.2)
"""Half extents (m, x and y) of the area under the robot whose highest sample the spawn height is measured from."""


@dataclass(frozen=True)
class ParkourScene:
    """A compiled column of terrain `tid` with the Go1, and the indices the env reads."""

    tid: int
    column: Column
    model: mujoco.MjModel
    force_index: np.ndarray
    """(12, 3) sensordata columns of the net contact force on CONTACT_BODIES (feet, thighs, calves)."""
    torque_index: np.ndarray | None
    """(12,) sensordata columns of the applied joint torques ("engine" PD), None for the "torch" PD."""
    robot_geoms: np.ndarray
    """Ids of the robot's collision geoms (their friction is randomised)."""
    base_body: int
    spawn_ground: np.ndarray
    """(nrows,) metres: the highest height sample within SPAWN_FOOTPRINT of each row's origin."""

    @property
    def nrows(self) -> int:
        return self.column.nrows


_CACHE: dict[tuple, ParkourScene] = {}


def spawn_ground(column: Column, footprint: tuple[float, float] = SPAWN_FOOTPRINT) -> np.ndarray:
    """Per row, the highest sample under the robot's footprint at the origin (roughness makes it up to 4 cm)."""
    out = np.zeros(column.nrows)
    hx, hy = (int(np.ceil(f / column.scale)) for f in footprint)
    for i, (x, y) in enumerate(column.origins):
        a = int(round((x - column.x0) / column.scale))
        b = int(round((y - column.y0) / column.scale))
        out[i] = float(column.height[a - hx : a + hx + 1, b - hy : b + hy + 1].max())
    return out


def engine_pd(spec: mujoco.MjSpec) -> tuple[str, ...]:
    """Turn the Go1's motors into PD actuators with nominal gains (Kp, Kd) and add `actuatorfrc` sensors; returns
    the sensor names, in actuator (JOINT_NAMES) order."""
    names = []
    for act, limit in zip(spec.actuators, R.TORQUE_LIMITS):
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.gainprm = [R.KP] + [0.0] * 9
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.biasprm = [0.0, -R.KP, -R.KD] + [0.0] * 7
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-float(limit), float(limit)]
        name = f"{act.name}_torque"
        spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_ACTUATORFRC, objtype=mujoco.mjtObj.mjOBJ_ACTUATOR,
                        objname=act.name)  # fmt: skip
        names.append(name)
    return tuple(names)


def build_scene(tid: int, difficulties, terrain_seed: int = 0, pd: str = "torch") -> ParkourScene:
    """The column of terrain `tid` (one row per difficulty) with the Go1 attached; cached."""
    if pd not in PD_MODES:
        raise ValueError(f"unknown pd {pd!r}; choose one of {PD_MODES}")
    diffs = tuple(float(d) for d in difficulties)
    key = (int(tid), diffs, int(terrain_seed), pd)
    if key in _CACHE:
        return _CACHE[key]
    column = make_column(tid, diffs, terrain_seed)
    terrain = terrain_spec(
        column, friction=TERRAIN_FRICTION, contype=R.TERRAIN_CONTYPE, conaffinity=R.TERRAIN_CONAFFINITY
    )
    spec = R.go1_scene(terrain)
    names = R.add_contact_sensors(spec, CONTACT_BODIES)
    torque_names = engine_pd(spec) if pd == "engine" else None
    model = spec.compile()
    R.check_joint_order(model)
    force_index = np.array([model.sensor_adr[model.sensor(n).id] + np.arange(1, 4) for n in names])
    collides = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    robot_geoms = np.flatnonzero(collides & (model.geom_bodyid != 0))  # the terrain is the world body's
    scene = ParkourScene(
        tid=int(tid),
        column=column,
        model=model,
        force_index=force_index,
        torque_index=None if torque_names is None else np.array([model.sensor(n).adr[0] for n in torque_names]),
        robot_geoms=robot_geoms,
        base_body=model.body(R.BASE_BODY).id,
        spawn_ground=spawn_ground(column),
    )
    _CACHE[key] = scene
    return scene


def clear_cache() -> None:
    _CACHE.clear()
