"""A parkour column as a MuJoCo height field, for the MuJoCo C backend and MuJoCo Warp alike.

Why a height field: the column already is a regular grid, MuJoCo's `hfield` is one, and both backends collide
it with the robot's primitives (MuJoCo Warp: sphere, capsule, box, ... by convex collision against the
triangular prisms of the cells under the geom, at most 4 contacts kept per pair; MuJoCo C: the same prisms,
up to 50 contacts). One geom holds a whole column (~1 M samples for 10 rows) and compiles in ~0.1 s. The
alternatives are worse: a triangle mesh is treated as its convex hull by both backends' mesh colliders, and
boxes would need thousands of geoms for the roughness, bumps and ramps.

Mapping. MuJoCo stores the elevations normalised to [0, 1] and places a sample at z = geom_z + data·size[2].
We pass the heights themselves (MuJoCo normalises by their min and max) and set size[2] = max - min,
geom_z = min, so the surface passes through the column's heights at the grid points (float32: < 1 µm,
checked with mj_ray). MuJoCo's data rows run along y and its columns along x, so the data is
`column.height.T`; sample (a, b) lands at world (x0 + a·H, y0 + b·H) because the geom is centred on the grid
and size[0:2] are half the grid's extent. Between samples the surface is two triangles per cell, so a step
between two samples is a slope over one cell (0.05 m), not upstream's vertical face (upstream moved trimesh
vertices to make steep edges vertical); obstacle tops are therefore up to one cell smaller.

size[3], the solid base under the lowest sample, is `BASE` = 5 cm, deliberately thin. Each cell is a prism
from geom_z - size[3] up to the surface, and MuJoCo Warp 4.0's convex collider (float32 GJK/EPA) grows
unreliable as those prisms get tall and thin (0.05 m wide): now and then it reports a contact 2-10 cm deep,
sometimes with a downward normal, where MuJoCo C finds a 1-3 mm one. Measured with bodies placed 1-3 mm into
the surface at random poses, counting poses where Warp's deepest contact is > 5 mm deeper than C's or points
down (Warp on its CPU device; the kernels are the GPU's):

  terrain (prism height)                 foot sphere r 2 cm   capsule r 2 cm   box 0.2×0.1×0.05
  flat, base 1 m (~1.05 m)               2/1024               4/1024           29/1024
  flat, base 5 cm (~0.1 m)               0/2048               1/2048            9/2048
  box_jump_even, pits at -1 m (~1.1 m)   5/2048               7/2048           41/2048
  staircase_climbing (up to ~3 m)        12/2048              16/2048          44/2048

Clipping the pits to -0.5 m did not help (4/2048 for the foot): cliff edges are also where it fails. In drop
tests (tests/test_parkour_terrains.py) spheres and capsules come to rest at the same heights on both backends
on all 21 terrain types, but a dropped box is thrown around by these contacts in Warp and not in C. So: robot
geoms that touch the terrain are spheres and capsules only (the Go1's trunk box collides as two capsules, see
go1.xml), and the robot-level parity tests (tests/test_parkour_env.py) run on both backends.

Collision bits: by default the terrain geom has contype = 1, conaffinity = 1 (`CONTYPE`, `CONAFFINITY`;
`add_terrain` takes others, e.g. robot.py's TERRAIN_CONAFFINITY = 2) and friction 1.0 (upstream's;
restitution 0 is MuJoCo's behaviour anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from mtbench.envs.parkour.terrains import Column

CONTYPE = 1
CONAFFINITY = 1
FRICTION = (1.0, 0.005, 0.0001)
"""Sliding friction 1.0 (upstream); torsional and rolling at MuJoCo's defaults."""
BASE = 0.05
"""Thickness (m) of the solid base under the lowest sample: thin on purpose (see the module docstring)."""


@dataclass
class HFieldLayout:
    """Everything MuJoCo needs to show `column.height` at its world position."""

    nrow: int  # samples along y
    ncol: int  # samples along x
    size: tuple[float, float, float, float]
    pos: tuple[float, float, float]
    data: np.ndarray  # (nrow * ncol,) float32, normalised to [0, 1], row-major with rows along y

    def world_height(self, normalised: np.ndarray) -> np.ndarray:
        return self.pos[2] + normalised * self.size[2]


def hfield_layout(column: Column, base: float = BASE) -> HFieldLayout:
    h = column.height.astype(np.float64)
    nx, ny = h.shape
    lo, hi = float(h.min()), float(h.max())
    span = max(hi - lo, 1e-6)
    half_x, half_y = (nx - 1) * column.scale / 2, (ny - 1) * column.scale / 2
    data = ((h.T - lo) / span).astype(np.float32).ravel()
    return HFieldLayout(
        nrow=ny,
        ncol=nx,
        size=(half_x, half_y, span, base),
        pos=(column.x0 + half_x, column.y0 + half_y, lo),
        data=data,
    )


def add_terrain(
    spec: mujoco.MjSpec,
    column: Column,
    name: str = "terrain",
    friction=FRICTION,
    contype: int = CONTYPE,
    conaffinity: int = CONAFFINITY,
) -> mujoco.MjsGeom:
    """Add the column's height field (asset `name`) and a world geom `name` showing it to `spec`."""
    lay = hfield_layout(column)
    spec.add_hfield(name=name, nrow=lay.nrow, ncol=lay.ncol, size=list(lay.size), userdata=lay.data.tolist())
    return spec.worldbody.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_HFIELD,
        hfieldname=name,
        pos=list(lay.pos),
        friction=list(friction),
        contype=contype,
        conaffinity=conaffinity,
        rgba=[0.55, 0.5, 0.45, 1.0],
    )


def terrain_spec(column: Column, timestep: float | None = None, **kwargs) -> mujoco.MjSpec:
    """A fresh spec holding only the terrain geom (`kwargs` go to `add_terrain`). `<option>` stays at MuJoCo's
    defaults unless `timestep` is given (upstream's sim dt is 0.005 s), so the spec can be attached into a
    robot's spec without touching its options."""
    spec = mujoco.MjSpec()
    spec.modelname = f"parkour_terrain_{column.tid}"
    if timestep is not None:
        spec.option.timestep = timestep
    add_terrain(spec, column, **kwargs)
    return spec
