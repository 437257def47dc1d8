"""Parkour terrains: the 20 MTBench obstacle courses plus flat, as numpy height grids.

Written from the MTBench reference (shared/reference/mtbench-upstream.md §2.1-2.4), not from upstream code.

Conventions (upstream's, §2.2):

* A tile is 18 m along x (the direction of travel) by 4 m along y, sampled every `H` = 0.05 m: `height`
  has shape (360, 80), x along axis 0, and sample (a, b) sits at tile-local (a·H, b·H). Heights are in
  metres, rounded to the vertical step `V` = 0.005 m.
* The robot spawns at tile-local (1.0, 2.0), facing +x. The first 2 m (x < 2 m) are the spawn zone: every
  terrain function leaves it at height 0. Obstacles start after it. On "pit" terrains everything after the
  spawn zone that is not an obstacle is at -1 m, so the robot has to stay on the obstacles.
* Each tile carries 8 goals (tile-local xy). Unless a terrain says otherwise: the spawn goal
  (1.5, 2.0), one per obstacle centre (6), and one 0.5 m past the far end of the last obstacle on y = 2.
* `make_tile` adds uniform roughness everywhere (pits included) and then walls, 2 samples (0.1 m) wide and
  0.495 m high, on all four sides of the tile.

Layout along x, for the terrains that chain obstacles: obstacle k starts at
`max(prev_end, prev_end + gap_k + dx_k)` where `prev_end` is the previous obstacle's far end (2.0 m, the end
of the spawn zone, for the first one) and `dx_k` the documented x jitter. So the spawn zone is followed by a
gap on every terrain and the jitter never makes obstacles overlap. A draw that would put the last obstacle's
far end beyond `X_LAST_END` (rare; only the widest bump and disk draws) is redrawn from the same generator, so
every returned parameter still lies in its documented range.

Pit terrains end in an *exit floor*: from the far end of the last obstacle to the end of the tile the whole
width is ground (at height 0, or at the last platform or step height where the terrain says "the exit is at
the last height"), so the last goal, 0.5 m past the last obstacle, is never over the pit.

`params` in every `Tile` lists, per obstacle, the values drawn (heights, gaps, widths, lengths, ...) and the
realised positions (`x_start`, `x_end`, `y_center`), so tests can check both the ranges and the heights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

H = 0.05
"""Horizontal sample spacing (m)."""
V = 0.005
"""Vertical step (m): all heights are multiples of it."""
TILE_LENGTH = 18.0
TILE_WIDTH = 4.0
NX = int(round(TILE_LENGTH / H))  # 360
NY = int(round(TILE_WIDTH / H))  # 80
SPAWN = (1.0, 2.0)
"""Tile-local xy of the robot's spawn point (upstream's env origin)."""
SPAWN_END = 2.0
"""x (m) where the spawn zone ends and obstacles may begin."""
Y_CENTER = 2.0
PIT = -1.0
WALL_CELLS = 2
WALL_HEIGHT = 0.495
N_GOALS = 8
N_OBSTACLES = 6
X_LAST_END = 16.9
"""Latest far end of the last obstacle: its goal (0.5 m further) stays 0.5 m clear of the end wall."""
BORDER = 5.0
"""Flat border (m) around a column."""
BORDER_CELLS = int(round(BORDER / H))  # 100
ROUGHNESS = (0.02, 0.04)
"""Roughness amplitude range (m), drawn once per tile."""
ROUGHNESS_DOWNSAMPLE = 0.075
"""Spacing (m) of the coarse grid on which roughness is drawn before bilinear upsampling."""

TERRAIN_NAMES = (
    "jump_on_and_off_box",
    "forward_ramp_lips",
    "sphere_bump_lips",
    "forward_ramp_no_lips",
    "flush_a_frame",
    "sphere_bump",
    "box_jump_even",
    "box_jump_uneven",
    "flat_circle_jump",
    "bump_jump",
    "sideways_ramp",
    "stepping_stones_cylinder",
    "stepping_stones_randomly_arranged",
    "staircase_walking_full_width",
    "staircase_walking",
    "staircase_climbing",
    "staircase_spiral",
    "squeeze",
    "agility_poles",
    "balance_beam",
    "flat",
)
FLAT = 20

DIFFICULTY_RANGE: dict[int, tuple[float, float] | None] = {
    0: (-0.1, 0.6),
    1: (0.4, 0.8),
    2: (0.0, 0.9),
    3: (0.2, 0.6),
    4: (0.35, 0.7),
    5: (0.1, 0.8),
    6: (-0.3, 0.4),
    7: (-0.4, 0.6),
    8: (-0.1, 0.8),
    9: (-0.5, 0.5),
    10: (0.0, 0.9),
    11: (-0.4, 0.9),
    12: (0.1, 0.3),
    13: (-0.1, 0.7),
    14: (-0.2, 1.0),
    15: (-0.2, 0.4),
    16: (0.0, 1.0),
    17: (-0.2, 0.8),
    18: (-0.2, 0.8),
    19: (0.3, 0.8),
    20: None,
}
"""(min, max) of the scaled difficulty d' per terrain id, upstream's `DIFFICULTY_SCALING` already shifted by
-0.2 (§2.1). staircase_spiral is unscaled (0, 1); flat ignores difficulty (None)."""

PIT_TERRAINS = frozenset({6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 19})


def scaled_difficulty(tid: int, d: float) -> float:
    """d' = d·(max - min) + min for terrain `tid` (d itself for the unscaled spiral and for flat)."""
    rng = DIFFICULTY_RANGE[tid]
    if rng is None:
        return float(d)
    lo, hi = rng
    return float(d) * (hi - lo) + lo


@dataclass
class Tile:
    """One 18 m × 4 m course: heights (360, 80) float32 metres, 8 goals (tile-local xy), drawn parameters."""

    height: np.ndarray
    goals: np.ndarray
    params: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# geometry helpers

_XS = np.arange(NX) * H
_YS = np.arange(NY) * H
_X, _Y = np.meshgrid(_XS, _YS, indexing="ij")


def _cell(v: float) -> int:
    return int(round(v / H))


def _blank(pit: bool) -> np.ndarray:
    h = np.zeros((NX, NY))
    if pit:
        h[_cell(SPAWN_END) :, :] = PIT
    return h


def _span(x0: float, x1: float, yc: float, w: float) -> tuple[slice, slice]:
    """Sample slices of the rectangle x in [x0, x1), y in [yc - w/2, yc + w/2), kept inside the walls."""
    i0, i1 = max(_cell(x0), 0), min(_cell(x1), NX)
    j0, j1 = max(_cell(yc - w / 2), WALL_CELLS), min(_cell(yc + w / 2), NY - WALL_CELLS)
    return slice(i0, i1), slice(j0, j1)


def _box(h: np.ndarray, x0: float, x1: float, yc: float, w: float, z: float) -> None:
    h[_span(x0, x1, yc, w)] = z


def _ramp_x(h: np.ndarray, x0: float, x1: float, yc: float, w: float, z0: float, z1: float) -> None:
    """A block whose top rises linearly along x from z0 (at x0) to z1 (at x1)."""
    sx, sy = _span(x0, x1, yc, w)
    t = np.clip((_XS[sx] - x0) / (x1 - x0), 0.0, 1.0)
    h[sx, sy] = (z0 + (z1 - z0) * t)[:, None]


def _radius(cx: float, cy: float) -> np.ndarray:
    return np.hypot(_X - cx, _Y - cy)


def _exit_floor(h: np.ndarray, x_end: float, z: float) -> None:
    h[_cell(x_end) :, :] = z


def _chain(
    lengths: np.ndarray, gaps: np.ndarray, dxs: np.ndarray, x0: float = SPAWN_END
) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of obstacles laid out along +x (see the module docstring)."""
    starts, ends = [], []
    cursor = x0
    for length, gap, dx in zip(lengths, gaps, dxs):
        s = max(cursor + gap + dx, cursor)
        starts.append(s)
        ends.append(s + length)
        cursor = s + length
    return np.array(starts), np.array(ends)


def _fit(draw: Callable[[], dict], tries: int = 200) -> dict:
    """Call `draw()` (returning a dict with "x_end") until the last obstacle ends before X_LAST_END."""
    for _ in range(tries):
        p = draw()
        if p["x_end"][-1] <= X_LAST_END:
            return p
    raise RuntimeError("could not fit the obstacles in the tile; the parameter ranges are inconsistent")


def _goals(xs, ys, last_end: float) -> np.ndarray:
    """Spawn goal, the given obstacle goals (6), and 0.5 m past the last obstacle on the centre line."""
    g = [(SPAWN[0] + 0.5, Y_CENTER), *zip(xs, ys), (last_end + 0.5, Y_CENTER)]
    assert len(g) == N_GOALS, len(g)
    return np.asarray(g, dtype=np.float64)


def _lists(p: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in p.items()}


def _tile(h: np.ndarray, goals: np.ndarray, tid: int, d: float, dp: float, **params) -> Tile:
    p = {"terrain": TERRAIN_NAMES[tid], "d": float(d), "d_scaled": float(dp), "pit": tid in PIT_TERRAINS}
    p.update(_lists(params))
    return Tile(height=quantize(h), goals=goals, params=p)


def quantize(h: np.ndarray) -> np.ndarray:
    """Round to the vertical step, as float32 metres."""
    return (np.round(np.asarray(h, dtype=np.float64) / V) * V).astype(np.float32)


def _u(rng: np.random.Generator, lo: float, hi: float, n: int | None = None):
    """U(lo, hi) that also accepts lo > hi (some shifted formulas cross over at negative d')."""
    return lo + (hi - lo) * rng.random(n)


# ---------------------------------------------------------------------------------------------------------
# the 20 terrain types + flat. Each takes the nominal difficulty d in [0, 1] and a generator.


def jump_on_and_off_box(d: float, rng: np.random.Generator) -> Tile:
    """6 boxes to climb onto and jump off: length 1.2 - 0.25d', width U(1, 2), height
    U(0.10 + 0.55d', 0.15 + 0.55d') + 0.05·i, gap 1.0 - 0.1d', jitter dx ±0.2, dy ±0.1. Goals on box centres."""
    tid = 0
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        length = np.full(n, 1.2 - 0.25 * dp)
        gap = np.full(n, 1.0 - 0.1 * dp)
        dx = rng.uniform(-0.2, 0.2, n)
        x0, x1 = _chain(length, gap, dx)
        return {"length": length, "gap": gap, "dx": dx, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = rng.uniform(1.0, 2.0, n)
    p["dy"] = rng.uniform(-0.1, 0.1, n)
    p["height"] = rng.uniform(0.10 + 0.55 * dp, 0.15 + 0.55 * dp, n) + 0.05 * np.arange(n)
    p["y_center"] = Y_CENTER + p["dy"]
    h = _blank(False)
    for i in range(n):
        _box(h, p["x_start"][i], p["x_end"][i], p["y_center"][i], p["width"][i], p["height"][i])
    goals = _goals((p["x_start"] + p["x_end"]) / 2, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def forward_ramp_lips(d: float, rng: np.random.Generator) -> Tile:
    """6 ramps rising along x that start with a lip (a step up): length 1.2 - 0.3d', width U(1, 2), lip
    U(0.1 + 0.2d', 0.15 + 0.2d'), rise U(0.03 + 0.25d', 0.05 + 0.3d') over the length, then a drop back to
    the ground; gap 0.7 + 0.3d', dx ±0.3, dy ±0.1. Goals on ramp centres."""
    tid = 1
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        length = np.full(n, 1.2 - 0.3 * dp)
        gap = np.full(n, 0.7 + 0.3 * dp)
        dx = rng.uniform(-0.3, 0.3, n)
        x0, x1 = _chain(length, gap, dx)
        return {"length": length, "gap": gap, "dx": dx, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = rng.uniform(1.0, 2.0, n)
    p["dy"] = rng.uniform(-0.1, 0.1, n)
    p["lip"] = rng.uniform(0.1 + 0.2 * dp, 0.15 + 0.2 * dp, n)
    p["rise"] = rng.uniform(0.03 + 0.25 * dp, 0.05 + 0.3 * dp, n)
    p["y_center"] = Y_CENTER + p["dy"]
    h = _blank(False)
    for i in range(n):
        lip, top = p["lip"][i], p["lip"][i] + p["rise"][i]
        _ramp_x(h, p["x_start"][i], p["x_end"][i], p["y_center"][i], p["width"][i], lip, top)
    goals = _goals((p["x_start"] + p["x_end"]) / 2, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def _bump_layout(rng: np.random.Generator, radius_cells: Callable[[], np.ndarray], spacing: float, n: int):
    """Bumps of nominal radius R (cells) whose centres sit 2R + spacing (+ dx jitter ±0.4) apart."""

    def draw() -> dict:
        r = radius_cells()
        length = 2 * r * H
        gap = np.full(n, spacing)
        dx = rng.uniform(-0.4, 0.4, n)
        x0, x1 = _chain(length, gap, dx)
        return {"radius_cells": r, "spacing": gap, "dx": dx, "x_start": x0, "x_end": x1}

    return _fit(draw)


def sphere_bump_lips(d: float, rng: np.random.Generator) -> Tile:
    """6 truncated bumps to climb: nominal radius R ~ U(20 - 5d', 21 - 5d') cells, lip radius
    r_lip ~ U(10 - 2d', 11 - 2d') cells, height h ~ U(0.1 + 0.4d', 0.15 + 0.45d') + 0.05·i.

    Ambiguity resolved here: the profile is the cubic dome h·(1 - (r/R)³) (upstream writes "h - (r/R)³";
    scaled by h so that small bumps do not vanish), cut off at r_lip: nearly flat on top (the cubic is flat
    near its centre) and ending in a vertical lip of height h·(1 - (r_lip/R)³) ≈ 0.85-0.89·h, which is what
    makes it a climbing terrain. Centres are 2R + spacing apart (spacing 0.2 - 0.05d'), jitter dx ±0.4,
    dy ±0.9. Goals on the bump centres (height h).
    """
    tid = 2
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES
    p = _bump_layout(rng, lambda: rng.uniform(20 - 5 * dp, 21 - 5 * dp, n), 0.2 - 0.05 * dp, n)
    p["lip_radius_cells"] = rng.uniform(10 - 2 * dp, 11 - 2 * dp, n)
    p["height"] = rng.uniform(0.1 + 0.4 * dp, 0.15 + 0.45 * dp, n) + 0.05 * np.arange(n)
    p["dy"] = rng.uniform(-0.9, 0.9, n)
    p["y_center"] = Y_CENTER + p["dy"]
    xc = (p["x_start"] + p["x_end"]) / 2
    h = _blank(False)
    for i in range(n):
        r = _radius(xc[i], p["y_center"][i]) / H
        big_r, hi = p["radius_cells"][i], p["height"][i]
        bump = np.where(r <= p["lip_radius_cells"][i], hi * (1 - (r / big_r) ** 3), 0.0)
        h = np.maximum(h, bump)
    goals = _goals(xc, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def forward_ramp_no_lips(d: float, rng: np.random.Generator) -> Tile:
    """6 ramps rising along x from the ground to a top U(0.1 + 0.5d', 0.2 + 0.6d'), then dropping back:
    length 1.2 - 0.5d', width 1.5 - 0.5d', gap 0.1 + 0.7d', dx ±0.2, dy ±0.1. Goals on ramp centres."""
    tid = 3
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        length = np.full(n, 1.2 - 0.5 * dp)
        gap = np.full(n, 0.1 + 0.7 * dp)
        dx = rng.uniform(-0.2, 0.2, n)
        x0, x1 = _chain(length, gap, dx)
        return {"length": length, "gap": gap, "dx": dx, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = np.full(n, 1.5 - 0.5 * dp)
    p["dy"] = rng.uniform(-0.1, 0.1, n)
    p["height"] = rng.uniform(0.1 + 0.5 * dp, 0.2 + 0.6 * dp, n)
    p["y_center"] = Y_CENTER + p["dy"]
    h = _blank(False)
    for i in range(n):
        _ramp_x(h, p["x_start"][i], p["x_end"][i], p["y_center"][i], p["width"][i], 0.0, p["height"][i])
    goals = _goals((p["x_start"] + p["x_end"]) / 2, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def flush_a_frame(d: float, rng: np.random.Generator) -> Tile:
    """6 A-frames: an up-ramp then a down-ramp, each of length 1.0 - 0.4d', width 1.5 - 0.5d', from a base
    lip U(0.01 + 0.05d', 0.03 + 0.03d') (a small step at both feet) to a peak U(0.1 + 0.6d', 0.15 + 0.6d');
    gap 0.1 + 0.7d'. The spec gives no jitter for this terrain; we use dx ±0.2, dy ±0.1 like the other
    ramps. `length` is the full A-frame (2 ramps). Goals at the apex."""
    tid = 4
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        ramp = np.full(n, 1.0 - 0.4 * dp)
        gap = np.full(n, 0.1 + 0.7 * dp)
        dx = rng.uniform(-0.2, 0.2, n)
        x0, x1 = _chain(2 * ramp, gap, dx)
        return {"ramp_length": ramp, "length": 2 * ramp, "gap": gap, "dx": dx, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = np.full(n, 1.5 - 0.5 * dp)
    p["dy"] = rng.uniform(-0.1, 0.1, n)
    p["height"] = rng.uniform(0.1 + 0.6 * dp, 0.15 + 0.6 * dp, n)
    p["lip"] = rng.uniform(0.01 + 0.05 * dp, 0.03 + 0.03 * dp, n)
    p["y_center"] = Y_CENTER + p["dy"]
    apex = p["x_start"] + p["ramp_length"]
    h = _blank(False)
    for i in range(n):
        yc, w, lip, top = p["y_center"][i], p["width"][i], p["lip"][i], p["height"][i]
        _ramp_x(h, p["x_start"][i], apex[i], yc, w, lip, top)
        _ramp_x(h, apex[i], p["x_end"][i], yc, w, top, lip)
    goals = _goals(apex, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def sphere_bump(d: float, rng: np.random.Generator) -> Tile:
    """6 smooth bumps: radius R ~ U(20 - 5.5d', 21 - 5.5d') cells, height h ~ U(0.2 + 0.4d', 0.25 + 0.4d'),
    profile max(0, h - (r/R)^(2 - 0.15d')) (r, R in the same unit; the clip makes the footprint radius
    R·h^(1/p), about 0.5-0.85 R). Centres 2R + spacing apart (spacing 0.2 - 0.05d'), dx ±0.4, dy ±0.9.
    Goals on the bump tops."""
    tid = 5
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES
    p = _bump_layout(rng, lambda: rng.uniform(20 - 5.5 * dp, 21 - 5.5 * dp, n), 0.2 - 0.05 * dp, n)
    p["height"] = rng.uniform(0.2 + 0.4 * dp, 0.25 + 0.4 * dp, n)
    p["exponent"] = 2 - 0.15 * dp
    p["dy"] = rng.uniform(-0.9, 0.9, n)
    p["y_center"] = Y_CENTER + p["dy"]
    xc = (p["x_start"] + p["x_end"]) / 2
    h = _blank(False)
    for i in range(n):
        r = _radius(xc[i], p["y_center"][i]) / H
        bump = np.clip(p["height"][i] - (r / p["radius_cells"][i]) ** p["exponent"], 0.0, None)
        h = np.maximum(h, bump)
    goals = _goals(xc, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def box_jump_even(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 6 platforms at height 0 to jump between: length 1.0 - 0.3d', width U(1, 1 + 0.1d'), gaps
    U(0.4 + 0.5d', 0.5 + 0.5d'), dx ±0.2, dy ±0.1; exit floor at 0 after the last platform (so the last
    platform is the start of the exit). Goals on platform centres."""
    tid = 6
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        length = np.full(n, 1.0 - 0.3 * dp)
        gap = rng.uniform(0.4 + 0.5 * dp, 0.5 + 0.5 * dp, n)
        dx = rng.uniform(-0.2, 0.2, n)
        x0, x1 = _chain(length, gap, dx)
        return {"length": length, "gap": gap, "dx": dx, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = _u(rng, 1.0, 1.0 + 0.1 * dp, n)
    p["dy"] = rng.uniform(-0.1, 0.1, n)
    p["height"] = np.zeros(n)
    p["y_center"] = Y_CENTER + p["dy"]
    h = _blank(True)
    for i in range(n):
        _box(h, p["x_start"][i], p["x_end"][i], p["y_center"][i], p["width"][i], 0.0)
    _exit_floor(h, p["x_end"][-1], 0.0)
    p["exit_height"] = 0.0
    goals = _goals((p["x_start"] + p["x_end"]) / 2, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def box_jump_uneven(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 6 platforms of length 1.2 - 0.3d' whose height changes from one to the next by
    |U(0.01 + 0.2d', 0.02 + 0.25d')|, up or down at random (down only if the platform stays above 0, so the
    first one goes up from the spawn level); gaps U(0.4 + 0.3d', 0.5 + 0.4d'), dx ±0.3; exit floor at the
    last height.

    Ambiguities resolved here: the change's formula is negative for d' < -0.05 (the -0.2 shift reaches
    d' = -0.4), we use its magnitude; the spec gives no width or y jitter, we use box_jump_even's width
    U(1, 1 + 0.1d') and keep platforms on the centre line. `height_change` records the signed change.
    """
    tid = 7
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        length = np.full(n, 1.2 - 0.3 * dp)
        gap = rng.uniform(0.4 + 0.3 * dp, 0.5 + 0.4 * dp, n)
        dx = rng.uniform(-0.3, 0.3, n)
        x0, x1 = _chain(length, gap, dx)
        return {"length": length, "gap": gap, "dx": dx, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = _u(rng, 1.0, 1.0 + 0.1 * dp, n)
    mag = np.abs(_u(rng, 0.01 + 0.2 * dp, 0.02 + 0.25 * dp, n))
    down = rng.random(n) < 0.5
    z, heights, changes = 0.0, [], []
    for i in range(n):
        c = -mag[i] if (down[i] and z - mag[i] > 0) else mag[i]
        z += c
        heights.append(z)
        changes.append(c)
    p["height_change"] = np.array(changes)
    p["height"] = np.array(heights)
    p["y_center"] = np.full(n, Y_CENTER)
    h = _blank(True)
    for i in range(n):
        _box(h, p["x_start"][i], p["x_end"][i], Y_CENTER, p["width"][i], heights[i])
    _exit_floor(h, p["x_end"][-1], heights[-1])
    p["exit_height"] = heights[-1]
    goals = _goals((p["x_start"] + p["x_end"]) / 2, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def flat_circle_jump(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 6 flat disks to jump between, radius (R - lip) cells with R ~ U(20 - 0.5d', 21 + 1.2d') and
    lip ~ U(10 + 0.4d', 10.1 + 0.6d'), height U(0.1 + 0.08d', 0.2 + 0.1d'); the edge-to-edge gap is
    `spacing` ~ U(0.4 + 0.7d', 0.5 + 0.8d') plus the x jitter dx ~ U(-0.2 + 0.15d', 0.2 + 0.15d'), and
    dy is drawn from the same range. Exit floor at 0. Goals on disk centres."""
    tid = 8
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        big_r = rng.uniform(20 - 0.5 * dp, 21 + 1.2 * dp, n)
        lip = rng.uniform(10 + 0.4 * dp, 10.1 + 0.6 * dp, n)
        radius = (big_r - lip) * H
        gap = rng.uniform(0.4 + 0.7 * dp, 0.5 + 0.8 * dp, n)
        dx = rng.uniform(-0.2 + 0.15 * dp, 0.2 + 0.15 * dp, n)
        x0, x1 = _chain(2 * radius, gap, dx)
        return {
            "R_cells": big_r,
            "lip_cells": lip,
            "radius": radius,
            "spacing": gap,
            "dx": dx,
            "x_start": x0,
            "x_end": x1,
        }

    p = _fit(draw)
    p["height"] = rng.uniform(0.1 + 0.08 * dp, 0.2 + 0.1 * dp, n)
    p["dy"] = rng.uniform(-0.2 + 0.15 * dp, 0.2 + 0.15 * dp, n)
    p["y_center"] = Y_CENTER + p["dy"]
    xc = (p["x_start"] + p["x_end"]) / 2
    h = _blank(True)
    for i in range(n):
        h[_radius(xc[i], p["y_center"][i]) <= p["radius"][i]] = p["height"][i]
    _exit_floor(h, p["x_end"][-1], 0.0)
    p["exit_height"] = 0.0
    goals = _goals(xc, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def bump_jump(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 6 round bumps to jump between: R ~ U(20 - 2.5d', 21 - 2.5d') cells, lip ~ U(3 + 1.5d',
    3.5 + 2d') cells, height h ~ U(0.1 + 0.05d', 0.15 + 0.07d'), quadratic profile h·(1 - (r/R)²); the low
    outer ring r > R - lip is pit, so each bump ends in an edge about 0.25-0.4·h high. Edge-to-edge spacing
    U(0.4 + 0.4d', 0.5 + 0.5d'); "random dy" taken as U(-0.2, 0.2). Exit floor at 0. Goals on bump tops."""
    tid = 9
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        big_r = rng.uniform(20 - 2.5 * dp, 21 - 2.5 * dp, n)
        lip = rng.uniform(3 + 1.5 * dp, 3.5 + 2 * dp, n)
        gap = rng.uniform(0.4 + 0.4 * dp, 0.5 + 0.5 * dp, n)
        x0, x1 = _chain(2 * (big_r - lip) * H, gap, np.zeros(n))
        return {"R_cells": big_r, "lip_cells": lip, "spacing": gap, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["height"] = rng.uniform(0.1 + 0.05 * dp, 0.15 + 0.07 * dp, n)
    p["dy"] = rng.uniform(-0.2, 0.2, n)
    p["y_center"] = Y_CENTER + p["dy"]
    xc = (p["x_start"] + p["x_end"]) / 2
    h = _blank(True)
    for i in range(n):
        r = _radius(xc[i], p["y_center"][i]) / H
        big_r = p["R_cells"][i]
        inside = r <= big_r - p["lip_cells"][i]
        h[inside] = p["height"][i] * (1 - (r[inside] / big_r) ** 2)
    _exit_floor(h, p["x_end"][-1], 0.0)
    p["exit_height"] = 0.0
    goals = _goals(xc, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def sideways_ramp(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 6 platforms whose top slopes across y, from 0 on the low side to a maximum
    U(0.05 + 0.25d', 0.05 + 0.5d') on the high side: length 1.2 - 0.5d', width U(1, 1 + 0.1d'),
    gap 0.1 + 0.65d' (no jitter given). Each platform slopes one way at random (`slope_sign` +1: rises
    towards +y, on the centre line; -1: rises towards -y, "sloping left" in upstream's words, and shifted
    by -0.5 m in y). Exit floor at 0. Goals on platform centres (half the maximum height)."""
    tid = 10
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        length = np.full(n, 1.2 - 0.5 * dp)
        gap = np.full(n, 0.1 + 0.65 * dp)
        x0, x1 = _chain(length, gap, np.zeros(n))
        return {"length": length, "gap": gap, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = _u(rng, 1.0, 1.0 + 0.1 * dp, n)
    p["height"] = rng.uniform(0.05 + 0.25 * dp, 0.05 + 0.5 * dp, n)
    p["slope_sign"] = np.where(rng.random(n) < 0.5, -1, 1)
    p["y_center"] = Y_CENTER - 0.5 * (p["slope_sign"] < 0)
    h = _blank(True)
    for i in range(n):
        sx, sy = _span(p["x_start"][i], p["x_end"][i], p["y_center"][i], p["width"][i])
        w = p["width"][i]
        t = np.clip((_YS[sy] - (p["y_center"][i] - w / 2)) / w, 0.0, 1.0)
        if p["slope_sign"][i] < 0:
            t = 1.0 - t
        h[sx, sy] = p["height"][i] * t[None, :]
    _exit_floor(h, p["x_end"][-1], 0.0)
    p["exit_height"] = 0.0
    goals = _goals((p["x_start"] + p["x_end"]) / 2, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


def _every_second(xs, ys, last_end: float) -> np.ndarray:
    """Goals for 12 stepping stones: spawn, stones 2, 4, ..., 12, and 0.5 m onto the exit floor."""
    return _goals(np.asarray(xs)[1::2], np.asarray(ys)[1::2], last_end)


def stepping_stones_cylinder(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 12 cylinders of radius (7 - 3.5d') cells, top height U(0, 0.07d') (slightly below 0 for d' < 0),
    zig-zagging about the centre line by dy ~ U(0.15 - 0.05d', 0.2 - 0.05d') (first to +y), edge-to-edge
    gaps U(0.05 + 0.05d', 0.1 + 0.07d'). Exit floor at 0. There are 12 stones but 8 goals: spawn, every
    second stone, exit."""
    tid = 11
    dp = scaled_difficulty(tid, d)
    n = 12
    radius = (7 - 3.5 * dp) * H

    def draw() -> dict:
        gap = rng.uniform(0.05 + 0.05 * dp, 0.1 + 0.07 * dp, n)
        x0, x1 = _chain(np.full(n, 2 * radius), gap, np.zeros(n))
        return {"radius": np.full(n, radius), "gap": gap, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["height"] = _u(rng, 0.0, 0.07 * dp, n)
    p["dy"] = rng.uniform(0.15 - 0.05 * dp, 0.2 - 0.05 * dp, n)
    p["y_center"] = Y_CENTER + p["dy"] * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    xc = (p["x_start"] + p["x_end"]) / 2
    h = _blank(True)
    for i in range(n):
        h[_radius(xc[i], p["y_center"][i]) <= radius] = p["height"][i]
    _exit_floor(h, p["x_end"][-1], 0.0)
    p["exit_height"] = 0.0
    return _tile(h, _every_second(xc, p["y_center"], p["x_end"][-1]), tid, d, dp, **p)


def stepping_stones_randomly_arranged(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 12 rectangular stones at height 0, length 0.7 - 0.55d', width 0.6 - 0.3d', each shifted
    sideways from the centre line by dy ~ U(0.03 + 0.04d', 0.05 + 0.08d') to a random side; edge-to-edge
    gaps U(0.05 + 0.1d', 0.1 + 0.2d'). Exit floor at 0. Goals: spawn, every second stone, exit."""
    tid = 12
    dp = scaled_difficulty(tid, d)
    n = 12

    def draw() -> dict:
        length = np.full(n, 0.7 - 0.55 * dp)
        gap = rng.uniform(0.05 + 0.1 * dp, 0.1 + 0.2 * dp, n)
        x0, x1 = _chain(length, gap, np.zeros(n))
        return {"length": length, "gap": gap, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width"] = np.full(n, 0.6 - 0.3 * dp)
    p["dy"] = rng.uniform(0.03 + 0.04 * dp, 0.05 + 0.08 * dp, n)
    p["side"] = np.where(rng.random(n) < 0.5, -1, 1)
    p["y_center"] = Y_CENTER + p["side"] * p["dy"]
    p["height"] = np.zeros(n)
    h = _blank(True)
    for i in range(n):
        _box(h, p["x_start"][i], p["x_end"][i], p["y_center"][i], p["width"][i], 0.0)
    _exit_floor(h, p["x_end"][-1], 0.0)
    p["exit_height"] = 0.0
    xc = (p["x_start"] + p["x_end"]) / 2
    return _tile(h, _every_second(xc, p["y_center"], p["x_end"][-1]), tid, d, dp, **p)


def staircase_walking_full_width(d: float, rng: np.random.Generator) -> Tile:
    """5 full-width staircases of 6 steps, alternately up and down, each followed by a 5-tread landing:
    tread 0.25 - 0.1d', rise U(0.05 + 0.1d', 0.07 + 0.15d') + 0.05·floor(k/2) for staircase k.

    Ambiguity resolved here: a down staircase (k odd) reuses the rise of the up staircase before it (same
    floor(k/2), so the same range), so every up/down pair returns to the ground and no tread goes below 0.
    The spec marks this terrain "pit", but full-width treads cover the whole pit; the exit floor continues
    at the last height. Goals: 8 evenly spaced on y = 2 from x = 2 m to the end of the last landing."""
    tid = 13
    dp = scaled_difficulty(tid, d)
    tread = 0.25 - 0.1 * dp
    rises = []
    for k in range(5):
        rises.append(rises[-1] if k % 2 else rng.uniform(0.05 + 0.1 * dp, 0.07 + 0.15 * dp) + 0.05 * (k // 2))
    h = _blank(True)
    x, z = SPAWN_END, 0.0
    step_z, step_x0 = [], []
    for k in range(5):
        sign = 1.0 if k % 2 == 0 else -1.0
        for _ in range(6):
            z += sign * rises[k]
            _box(h, x, x + tread, Y_CENTER, TILE_WIDTH, z)
            step_z.append(z)
            step_x0.append(x)
            x += tread
        _box(h, x, x + 5 * tread, Y_CENTER, TILE_WIDTH, z)
        x += 5 * tread
    _exit_floor(h, x, z)
    goals = np.stack([np.linspace(SPAWN_END, x, N_GOALS), np.full(N_GOALS, Y_CENTER)], axis=1)
    return _tile(
        h,
        goals,
        tid,
        d,
        dp,
        tread=tread,
        rise=np.array(rises),
        step_height=np.array(step_z),
        step_x_start=np.array(step_x0),
        x_end=[x],
        exit_height=z,
    )


def _staircase(tid: int, d: float, rng: np.random.Generator, tread: float, width: float, rise) -> Tile:
    """Pit; 6 ascending steps from x = 2 m, no gaps, of the given tread and width; exit floor at the top
    height. Goals on step centres."""
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES
    rises = rng.uniform(rise[0], rise[1], n)
    heights = np.cumsum(rises)
    x0 = SPAWN_END + tread * np.arange(n)
    x1 = x0 + tread
    h = _blank(True)
    for i in range(n):
        _box(h, x0[i], x1[i], Y_CENTER, width, heights[i])
    _exit_floor(h, x1[-1], heights[-1])
    goals = _goals((x0 + x1) / 2, np.full(n, Y_CENTER), x1[-1])
    return _tile(
        h,
        goals,
        tid,
        d,
        dp,
        tread=np.full(n, tread),
        width=np.full(n, width),
        rise=rises,
        height=heights,
        x_start=x0,
        x_end=x1,
        y_center=np.full(n, Y_CENTER),
        exit_height=heights[-1],
    )


def staircase_walking(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 6 ascending steps, tread 0.5 - 0.05d', width 1.0 - 0.45d', rise U(0.05 + 0.1d', 0.07 + 0.15d')."""
    dp = scaled_difficulty(14, d)
    return _staircase(14, d, rng, 0.5 - 0.05 * dp, 1.0 - 0.45 * dp, (0.05 + 0.1 * dp, 0.07 + 0.15 * dp))


def staircase_climbing(d: float, rng: np.random.Generator) -> Tile:
    """Pit; 6 ascending big steps, tread 1.5 - 0.1d', width 1.5 - 0.4d', rise U(0.3 + 0.3d', 0.4 + 0.3d')."""
    dp = scaled_difficulty(15, d)
    return _staircase(15, d, rng, 1.5 - 0.1 * dp, 1.5 - 0.4 * dp, (0.3 + 0.3 * dp, 0.4 + 0.3 * dp))


SPIRAL_RADIUS = 1.8
"""Outer radius (m) of the spiral at d = 0; it fits the 4 m tile inside the walls."""
SPIRAL_HUB = 0.3
"""Radius (m) of the spiral's central column, as high as the top sector."""


def staircase_spiral(d: float, rng: np.random.Generator) -> Tile:
    """14 circular sectors (2π/14 each) of an annulus around a centre, climbing counter-clockwise seen from
    above by U(0.05 + 0.15d, 0.05 + 0.2d) per sector (d unscaled). The spec's "radius reduction 1 - 0.35d"
    is taken as the outer radius SPIRAL_RADIUS·(1 - 0.35d); in the middle a column of radius SPIRAL_HUB (our
    choice) stands at the top height. The centre sits on y = 2, just after the spawn zone; sector 0 faces the spawn
    (angle π), so the robot steps onto it from the ground and walks round once. Ground elsewhere (no pit).
    Goals: spawn, then the mid-radius centres of sectors 1, 3, ..., 13 (they go round, not along +x)."""
    tid = 16
    dp = scaled_difficulty(tid, d)
    n = 14
    rises = rng.uniform(0.05 + 0.15 * d, 0.05 + 0.2 * d, n)
    heights = np.cumsum(rises)
    r_out = SPIRAL_RADIUS * (1 - 0.35 * d)
    cx, cy = SPAWN_END + 0.1 + r_out, Y_CENTER
    r = _radius(cx, cy)
    step = 2 * np.pi / n
    ang = np.mod(np.arctan2(_Y - cy, _X - cx) - np.pi + step / 2, 2 * np.pi)
    sector = np.minimum((ang / step).astype(int), n - 1)
    h = _blank(False)
    ring = (r <= r_out) & (r > SPIRAL_HUB)
    h[ring] = heights[sector[ring]]
    h[r <= SPIRAL_HUB] = heights[-1]
    r_mid = (SPIRAL_HUB + r_out) / 2
    theta = np.pi + step * np.arange(1, n, 2)
    goals = np.concatenate(
        [[(SPAWN[0] + 0.5, Y_CENTER)], np.stack([cx + r_mid * np.cos(theta), cy + r_mid * np.sin(theta)], axis=1)]
    )
    return _tile(
        h,
        goals,
        tid,
        d,
        dp,
        rise=rises,
        height=heights,
        outer_radius=r_out,
        center=[cx, cy],
        goal_sectors=list(range(1, n, 2)),
    )


SQUEEZE_WALL_HEIGHT = 0.7
SQUEEZE_WALL_THICKNESS = 0.5
SQUEEZE_NARROWING = 0.01
"""Metres by which each successive tunnel is narrower than the previous one (our reading of "slightly")."""


def squeeze(d: float, rng: np.random.Generator) -> Tile:
    """6 tunnels between pairs of 0.7 m-high, 0.5 m-thick walls on the centre line: tunnel length
    0.6 + 0.4d', width w0 - 0.01·i with w0 ~ U(0.5 - 0.15d', 0.6 - 0.15d') drawn once (`width0`), gaps
    between pairs U(0.4 - 0.1d', 0.5 - 0.1d'). Goals at tunnel centres."""
    tid = 17
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES

    def draw() -> dict:
        length = np.full(n, 0.6 + 0.4 * dp)
        gap = rng.uniform(0.4 - 0.1 * dp, 0.5 - 0.1 * dp, n)
        x0, x1 = _chain(length, gap, np.zeros(n))
        return {"length": length, "gap": gap, "x_start": x0, "x_end": x1}

    p = _fit(draw)
    p["width0"] = float(rng.uniform(0.5 - 0.15 * dp, 0.6 - 0.15 * dp))
    p["width"] = p["width0"] - SQUEEZE_NARROWING * np.arange(n)
    p["y_center"] = np.full(n, Y_CENTER)
    p["wall_height"] = SQUEEZE_WALL_HEIGHT
    h = _blank(False)
    t = SQUEEZE_WALL_THICKNESS
    for i in range(n):
        x0, x1, w = p["x_start"][i], p["x_end"][i], p["width"][i]
        _box(h, x0, x1, Y_CENTER - w / 2 - t / 2, t, SQUEEZE_WALL_HEIGHT)
        _box(h, x0, x1, Y_CENTER + w / 2 + t / 2, t, SQUEEZE_WALL_HEIGHT)
    goals = _goals((p["x_start"] + p["x_end"]) / 2, p["y_center"], p["x_end"][-1])
    return _tile(h, goals, tid, d, dp, **p)


POLE_RADIUS_CELLS = 3
POLE_HEIGHT = 1.0


def agility_poles(d: float, rng: np.random.Generator) -> Tile:
    """6 poles (radius 3 cells, 1 m high) on the centre line, spaced 2 - 1.15d' apart, the first half a
    spacing after the spawn zone. Goals beside the poles, alternately at y = 2 ± (0.9 - 0.07d') (first to +y),
    so the robot weaves; the last goal is 0.5 m past the last pole on the centre line."""
    tid = 18
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES
    spacing = 2 - 1.15 * dp
    lateral = 0.9 - 0.07 * dp
    xs = SPAWN_END + spacing * (np.arange(n) + 0.5)
    h = _blank(False)
    for x in xs:
        h[_radius(x, Y_CENTER) <= POLE_RADIUS_CELLS * H + 1e-9] = POLE_HEIGHT
    ys = Y_CENTER + lateral * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    goals = _goals(xs, ys, xs[-1])
    return _tile(
        h,
        goals,
        tid,
        d,
        dp,
        spacing=np.full(n, spacing),
        lateral=lateral,
        x_center=xs,
        x_end=xs + POLE_RADIUS_CELLS * H,
        y_center=np.full(n, Y_CENTER),
    )


def balance_beam(d: float, rng: np.random.Generator) -> Tile:
    """Pit; a beam at height 0 on the centre line made of 6 contiguous segments of length 0.5 + 1.5d' and
    width 0.85 - 0.5d', starting at the edge of the spawn zone (no gap: the spec gives none, nor any lateral
    offset). Exit floor at 0. Goals on segment centres."""
    tid = 19
    dp = scaled_difficulty(tid, d)
    n = N_OBSTACLES
    length, width = 0.5 + 1.5 * dp, 0.85 - 0.5 * dp
    x0 = SPAWN_END + length * np.arange(n)
    x1 = x0 + length
    h = _blank(True)
    _box(h, x0[0], x1[-1], Y_CENTER, width, 0.0)
    _exit_floor(h, x1[-1], 0.0)
    goals = _goals((x0 + x1) / 2, np.full(n, Y_CENTER), x1[-1])
    return _tile(
        h,
        goals,
        tid,
        d,
        dp,
        length=np.full(n, length),
        width=np.full(n, width),
        height=np.zeros(n),
        x_start=x0,
        x_end=x1,
        y_center=np.full(n, Y_CENTER),
        exit_height=0.0,
    )


def flat(d: float, rng: np.random.Generator) -> Tile:
    """Flat ground; 8 goals evenly spaced from x = 2 m to 16 m with y jitter U(-1, 1) m."""
    tid = FLAT
    goals = np.stack([np.linspace(2.0, 16.0, N_GOALS), Y_CENTER + rng.uniform(-1.0, 1.0, N_GOALS)], axis=1)
    return _tile(_blank(False), goals, tid, d, float(d), y_jitter=(goals[:, 1] - Y_CENTER))


TERRAIN_FUNCTIONS: tuple[Callable[[float, np.random.Generator], Tile], ...] = (
    jump_on_and_off_box,
    forward_ramp_lips,
    sphere_bump_lips,
    forward_ramp_no_lips,
    flush_a_frame,
    sphere_bump,
    box_jump_even,
    box_jump_uneven,
    flat_circle_jump,
    bump_jump,
    sideways_ramp,
    stepping_stones_cylinder,
    stepping_stones_randomly_arranged,
    staircase_walking_full_width,
    staircase_walking,
    staircase_climbing,
    staircase_spiral,
    squeeze,
    agility_poles,
    balance_beam,
    flat,
)
assert [f.__name__ for f in TERRAIN_FUNCTIONS] == list(TERRAIN_NAMES)

GOALS_ALONG_X_EXCEPT = frozenset({16})
"""Terrains whose goals do not advance along +x: the spiral's go round its centre. (Agility poles and the
zig-zag stepping stones weave sideways but still advance along +x.)"""


# ---------------------------------------------------------------------------------------------------------
# roughness, walls, tiles


def add_roughness(height: np.ndarray, rng: np.random.Generator) -> float:
    """Add uniform roughness in place and return its amplitude a ~ U(0.02, 0.04) m.

    Values are drawn from {-a, -a + 0.005, ..., <= a} on a coarse grid of spacing 0.075 m covering the tile,
    upsampled bilinearly to the 0.05 m grid and rounded to the vertical step, so |added| <= a. Applied to
    every sample, pits included (as upstream adds it to the whole heightfield; a pit floor at -1 ± 0.04 m
    makes no difference since falling into it ends the episode); `add_walls` afterwards overwrites the rim.
    """
    nx, ny = height.shape
    amp = float(rng.uniform(*ROUGHNESS))
    levels = np.arange(-amp, amp + 1e-9, V)
    cx = np.arange(0.0, (nx - 1) * H + ROUGHNESS_DOWNSAMPLE, ROUGHNESS_DOWNSAMPLE)
    cy = np.arange(0.0, (ny - 1) * H + ROUGHNESS_DOWNSAMPLE, ROUGHNESS_DOWNSAMPLE)
    coarse = rng.choice(levels, size=(cx.size, cy.size))
    xs, ys = np.arange(nx) * H, np.arange(ny) * H
    along_x = np.stack([np.interp(xs, cx, coarse[:, j]) for j in range(cy.size)], axis=1)  # (nx, ncy)
    fine = np.stack([np.interp(ys, cy, along_x[i]) for i in range(nx)], axis=0)  # (nx, ny)
    height += np.round(fine / V) * V
    return amp


def add_walls(height: np.ndarray) -> None:
    """Walls 2 samples (0.1 m) wide and 0.495 m high on all four sides of the tile, in place."""
    w = WALL_CELLS
    height[:w, :] = WALL_HEIGHT
    height[-w:, :] = WALL_HEIGHT
    height[:, :w] = WALL_HEIGHT
    height[:, -w:] = WALL_HEIGHT


def make_tile(tid: int, difficulty: float, seed: int) -> Tile:
    """Terrain `tid` at nominal difficulty `difficulty` in [0, 1], with roughness and walls; deterministic in
    `seed` (one generator drives the obstacles, then the roughness)."""
    if not 0 <= tid < len(TERRAIN_FUNCTIONS):
        raise ValueError(f"terrain id {tid} out of range 0..{len(TERRAIN_FUNCTIONS) - 1}")
    rng = np.random.default_rng(seed)
    tile = TERRAIN_FUNCTIONS[tid](float(difficulty), rng)
    h = tile.height.astype(np.float64)
    tile.params["roughness"] = add_roughness(h, rng)
    add_walls(h)
    tile.height = quantize(h)
    return tile


# ---------------------------------------------------------------------------------------------------------
# columns: all rows of one terrain type in one heightfield


@dataclass
class Column:
    """Rows (difficulty levels) of one terrain type stacked along x, with a flat border around.

    World frame (upstream's): row i's tile spans x in [18 i, 18 i + 18), y in [0, 4]; height sample (a, b)
    sits at world (x0 + a·H, y0 + b·H) with (x0, y0) = (-5, -5). `origins[i]` is the spawn point of row i,
    (18 i + 1.0, 2.0); `goals[i]` its 8 goals in world xy. Heights are float32 metres.
    """

    tid: int
    height: np.ndarray
    origins: np.ndarray
    goals: np.ndarray
    difficulties: np.ndarray
    params: list[dict]
    x0: float = -BORDER
    y0: float = -BORDER
    scale: float = H
    _torch_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def nrows(self) -> int:
        return len(self.difficulties)

    def torch_height(self, device):
        """The height grid as a float32 torch tensor on `device` (cached)."""
        import torch

        key = str(device)
        if key not in self._torch_cache:
            self._torch_cache[key] = torch.as_tensor(self.height, dtype=torch.float32, device=device)
        return self._torch_cache[key]


def row_seed(seed: int, tid: int, row: int) -> int:
    """The tile seed of (terrain, row) in a column built with `seed`: distinct per row and type."""
    return int(np.random.SeedSequence([int(seed), int(tid), int(row)]).generate_state(1)[0])


def make_column(tid: int, difficulties, seed: int) -> Column:
    """All rows of terrain `tid` (one per entry of `difficulties`) as one heightfield with a 5 m flat border.

    Parkour-easy: `difficulties = [0.0] * 10` (rows differ by seed); parkour-hard: `[i / 9 for i in range(10)]`.
    """
    diffs = np.asarray(list(difficulties), dtype=np.float64)
    n = len(diffs)
    b = BORDER_CELLS
    height = np.zeros((n * NX + 2 * b, NY + 2 * b), dtype=np.float32)
    origins = np.zeros((n, 2))
    goals = np.zeros((n, N_GOALS, 2))
    params = []
    for i, d in enumerate(diffs):
        tile = make_tile(tid, float(d), row_seed(seed, tid, i))
        height[b + i * NX : b + (i + 1) * NX, b : b + NY] = tile.height
        offset = np.array([i * TILE_LENGTH, 0.0])
        origins[i] = np.array(SPAWN) + offset
        goals[i] = tile.goals + offset
        params.append(tile.params)
    return Column(tid=tid, height=height, origins=origins, goals=goals, difficulties=diffs, params=params)


# ---------------------------------------------------------------------------------------------------------
# height queries (numpy or torch)


def _grid_coords(column: Column, xy):
    """Continuous sample coordinates of world xy, clamped to the grid."""
    nx, ny = column.height.shape
    fx = (xy[..., 0] - column.x0) / column.scale
    fy = (xy[..., 1] - column.y0) / column.scale
    return fx.clip(0, nx - 1), fy.clip(0, ny - 1)


def height_at(column: Column, xy, mode: str = "bilinear"):
    """Terrain height at world xy, shape (..., 2) -> (...); numpy in, numpy (float64) out; torch in, torch
    float32 out on xy's device. `mode`: "bilinear" (between the 4 surrounding samples; MuJoCo's height field
    matches it at the samples and along the grid lines) or "nearest". Points outside the grid read its edge."""
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    is_torch = not isinstance(xy, np.ndarray) and hasattr(xy, "device")
    nx, ny = column.height.shape
    fx, fy = _grid_coords(column, xy)
    if is_torch:
        hgrid = column.torch_height(xy.device)
        if mode == "nearest":
            return hgrid[fx.round().long(), fy.round().long()]
        i = fx.floor().long().clamp(max=nx - 2)
        j = fy.floor().long().clamp(max=ny - 2)
        tx, ty = (fx - i).to(hgrid.dtype), (fy - j).to(hgrid.dtype)

        def at(a, b):
            return hgrid[a, b]
    else:
        hgrid = column.height
        if mode == "nearest":
            return hgrid[np.round(fx).astype(int), np.round(fy).astype(int)].astype(np.float64)
        i = np.minimum(np.floor(fx).astype(int), nx - 2)
        j = np.minimum(np.floor(fy).astype(int), ny - 2)
        tx, ty = fx - i, fy - j

        def at(a, b):
            return hgrid[a, b].astype(np.float64)

    h00, h10, h01, h11 = at(i, j), at(i + 1, j), at(i, j + 1), at(i + 1, j + 1)
    return (h00 * (1 - tx) + h10 * tx) * (1 - ty) + (h01 * (1 - tx) + h11 * tx) * ty


def scan_height(column: Column, xy):
    """Scandot height at world xy (..., 2) -> (...): with (i, j) = floor of the sample coordinates (clamped
    so that i + 1, j + 1 exist), the minimum of the samples (i, j), (i + 1, j) and (i, j + 1) — the 3
    neighbouring cells upstream takes the minimum of, which reads an edge as its lower side. numpy in, numpy
    out; torch in, torch float32 out on xy's device."""
    is_torch = not isinstance(xy, np.ndarray) and hasattr(xy, "device")
    nx, ny = column.height.shape
    fx, fy = _grid_coords(column, xy)
    if is_torch:
        import torch

        hgrid = column.torch_height(xy.device)
        i = fx.floor().long().clamp(max=nx - 2)
        j = fy.floor().long().clamp(max=ny - 2)
        return torch.minimum(torch.minimum(hgrid[i, j], hgrid[i + 1, j]), hgrid[i, j + 1])
    hgrid = column.height
    i = np.minimum(np.floor(fx).astype(int), nx - 2)
    j = np.minimum(np.floor(fy).astype(int), ny - 2)
    return np.minimum(np.minimum(hgrid[i, j], hgrid[i + 1, j]), hgrid[i, j + 1]).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------
# a picture to check by eye


def overview_png(path: str, difficulties=(0.0, 0.5, 1.0), seed: int = 0) -> str:
    """Draw every terrain type (rows) at each difficulty (columns) as a height image, goals numbered in
    red, pits in black; colours are scaled per tile over its non-pit interior. Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nd = len(difficulties)
    fig, axes = plt.subplots(len(TERRAIN_NAMES), nd, figsize=(6.2 * nd, 1.75 * len(TERRAIN_NAMES)), squeeze=False)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="black")
    for tid, name in enumerate(TERRAIN_NAMES):
        for k, d in enumerate(difficulties):
            tile = make_tile(tid, d, seed + 1000 * tid + k)
            h = tile.height.astype(np.float64)
            inner = h[WALL_CELLS:-WALL_CELLS, WALL_CELLS:-WALL_CELLS]
            ok = inner[inner > -0.5]
            img = np.ma.masked_less(h, -0.5).T
            ax = axes[tid, k]
            ax.imshow(
                img,
                origin="lower",
                extent=(0, TILE_LENGTH, 0, TILE_WIDTH),
                cmap=cmap,
                vmin=ok.min(),
                vmax=max(ok.max(), ok.min() + 1e-3),
                interpolation="nearest",
            )
            g = tile.goals
            ax.plot(g[:, 0], g[:, 1], "-", color="red", lw=0.8)
            for m, (gx, gy) in enumerate(g):
                ax.text(
                    gx,
                    gy,
                    str(m),
                    color="white",
                    fontsize=6,
                    ha="center",
                    va="center",
                    bbox={"boxstyle": "circle,pad=0.15", "fc": "red", "ec": "none"},
                )
            ax.plot(*SPAWN, marker="^", color="orange", ms=5)
            ax.set_title(
                f"{tid} {name}  d={d:g} (d'={tile.params['d_scaled']:.2f})  z {ok.min():.2f}..{ok.max():.2f} m",
                fontsize=7,
            )
            ax.set_xticks(range(0, 19, 2))
            ax.set_yticks([0, 2, 4])
            ax.tick_params(labelsize=5)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path
