"""Parkour terrains: the generators against the MTBench reference (§2.1-2.4), and their MuJoCo height field on
both backends.

Expected parameter ranges below are written out again from the reference table, not imported from the
generator, so that a wrong formula in either place shows up as a disagreement.

The engine tests drop free bodies onto every terrain type and run the MuJoCo C backend and MuJoCo Warp (on Warp's
CPU device) side by side. On 2 cores: this file takes 18 s warm (the drops on 3 types and the box ~8 s);
`pytest -m slow` adds the other 18 types in 36 s. The first run compiles MJWarp's kernels, the height-field
ones included, for the CPU: 69 s for the file with an empty ~/.cache/warp (WARP_CACHE_PATH).
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch
from devices import DEVICE

from mtbench.envs.parkour import terrain_scene as S
from mtbench.envs.parkour import terrains as T

SEEDS = (0, 1, 2, 3)
EPS = 1e-9
TILE_TOL = T.V / 2 + 1e-6  # heights are rounded to the 5 mm vertical step

# ---------------------------------------------------------------------------------------------------------
# the reference, restated

UNSHIFTED_RANGE = {  # anchors §8.1: DIFFICULTY_SCALING before the global -0.2 shift
    0: (0.1, 0.8), 1: (0.6, 1.0), 2: (0.2, 1.1), 3: (0.4, 0.8), 4: (0.55, 0.9), 5: (0.3, 1.0), 6: (-0.1, 0.6),
    7: (-0.2, 0.8), 8: (0.1, 1.0), 9: (-0.3, 0.7), 10: (0.2, 1.1), 11: (-0.2, 1.1), 12: (0.3, 0.5),
    13: (0.1, 0.9), 14: (0.0, 1.2), 15: (0.0, 0.6), 17: (0.0, 1.0), 18: (0.0, 1.0), 19: (0.5, 1.0),
}  # fmt: skip


def dprime(tid: int, d: float) -> float:
    if tid in (16, 20):  # the spiral is unscaled; flat ignores difficulty
        return d
    lo, hi = UNSHIFTED_RANGE[tid]
    return d * ((hi - 0.2) - (lo - 0.2)) + (lo - 0.2)


def const(f):
    return lambda p, i: (f(p), f(p))


def unif(lo, hi):
    return lambda p, i: (lo(p), hi(p))


# per terrain: parameter -> (d', obstacle index) -> (a, b), the value lies between a and b
RANGES = {
    0: {"length": const(lambda p: 1.2 - 0.25 * p), "width": unif(lambda p: 1, lambda p: 2),
        "height": lambda p, i: (0.10 + 0.55 * p + 0.05 * i, 0.15 + 0.55 * p + 0.05 * i),
        "gap": const(lambda p: 1.0 - 0.1 * p), "dx": unif(lambda p: -0.2, lambda p: 0.2),
        "dy": unif(lambda p: -0.1, lambda p: 0.1)},
    1: {"length": const(lambda p: 1.2 - 0.3 * p), "width": unif(lambda p: 1, lambda p: 2),
        "lip": unif(lambda p: 0.1 + 0.2 * p, lambda p: 0.15 + 0.2 * p),
        "rise": unif(lambda p: 0.03 + 0.25 * p, lambda p: 0.05 + 0.3 * p), "gap": const(lambda p: 0.7 + 0.3 * p),
        "dx": unif(lambda p: -0.3, lambda p: 0.3), "dy": unif(lambda p: -0.1, lambda p: 0.1)},
    2: {"radius_cells": unif(lambda p: 20 - 5 * p, lambda p: 21 - 5 * p),
        "lip_radius_cells": unif(lambda p: 10 - 2 * p, lambda p: 11 - 2 * p),
        "height": lambda p, i: (0.1 + 0.4 * p + 0.05 * i, 0.15 + 0.45 * p + 0.05 * i),
        "spacing": const(lambda p: 0.2 - 0.05 * p), "dx": unif(lambda p: -0.4, lambda p: 0.4),
        "dy": unif(lambda p: -0.9, lambda p: 0.9)},
    3: {"length": const(lambda p: 1.2 - 0.5 * p), "width": const(lambda p: 1.5 - 0.5 * p),
        "height": unif(lambda p: 0.1 + 0.5 * p, lambda p: 0.2 + 0.6 * p), "gap": const(lambda p: 0.1 + 0.7 * p),
        "dx": unif(lambda p: -0.2, lambda p: 0.2), "dy": unif(lambda p: -0.1, lambda p: 0.1)},
    4: {"ramp_length": const(lambda p: 1.0 - 0.4 * p), "width": const(lambda p: 1.5 - 0.5 * p),
        "height": unif(lambda p: 0.1 + 0.6 * p, lambda p: 0.15 + 0.6 * p),
        "lip": unif(lambda p: 0.01 + 0.05 * p, lambda p: 0.03 + 0.03 * p), "gap": const(lambda p: 0.1 + 0.7 * p)},
    5: {"radius_cells": unif(lambda p: 20 - 5.5 * p, lambda p: 21 - 5.5 * p),
        "height": unif(lambda p: 0.2 + 0.4 * p, lambda p: 0.25 + 0.4 * p),
        "spacing": const(lambda p: 0.2 - 0.05 * p), "dx": unif(lambda p: -0.4, lambda p: 0.4),
        "dy": unif(lambda p: -0.9, lambda p: 0.9)},
    6: {"length": const(lambda p: 1.0 - 0.3 * p), "width": unif(lambda p: 1, lambda p: 1 + 0.1 * p),
        "gap": unif(lambda p: 0.4 + 0.5 * p, lambda p: 0.5 + 0.5 * p), "dx": unif(lambda p: -0.2, lambda p: 0.2),
        "dy": unif(lambda p: -0.1, lambda p: 0.1), "height": const(lambda p: 0.0)},
    7: {"length": const(lambda p: 1.2 - 0.3 * p), "gap": unif(lambda p: 0.4 + 0.3 * p, lambda p: 0.5 + 0.4 * p),
        "dx": unif(lambda p: -0.3, lambda p: 0.3)},
    8: {"R_cells": unif(lambda p: 20 - 0.5 * p, lambda p: 21 + 1.2 * p),
        "lip_cells": unif(lambda p: 10 + 0.4 * p, lambda p: 10.1 + 0.6 * p),
        "height": unif(lambda p: 0.1 + 0.08 * p, lambda p: 0.2 + 0.1 * p),
        "spacing": unif(lambda p: 0.4 + 0.7 * p, lambda p: 0.5 + 0.8 * p),
        "dx": unif(lambda p: -0.2 + 0.15 * p, lambda p: 0.2 + 0.15 * p),
        "dy": unif(lambda p: -0.2 + 0.15 * p, lambda p: 0.2 + 0.15 * p)},
    9: {"R_cells": unif(lambda p: 20 - 2.5 * p, lambda p: 21 - 2.5 * p),
        "lip_cells": unif(lambda p: 3 + 1.5 * p, lambda p: 3.5 + 2 * p),
        "height": unif(lambda p: 0.1 + 0.05 * p, lambda p: 0.15 + 0.07 * p),
        "spacing": unif(lambda p: 0.4 + 0.4 * p, lambda p: 0.5 + 0.5 * p)},
    10: {"length": const(lambda p: 1.2 - 0.5 * p), "width": unif(lambda p: 1, lambda p: 1 + 0.1 * p),
         "height": unif(lambda p: 0.05 + 0.25 * p, lambda p: 0.05 + 0.5 * p), "gap": const(lambda p: 0.1 + 0.65 * p)},
    11: {"radius": const(lambda p: (7 - 3.5 * p) * 0.05), "height": unif(lambda p: 0.0, lambda p: 0.07 * p),
         "dy": unif(lambda p: 0.15 - 0.05 * p, lambda p: 0.2 - 0.05 * p),
         "gap": unif(lambda p: 0.05 + 0.05 * p, lambda p: 0.1 + 0.07 * p)},
    12: {"length": const(lambda p: 0.7 - 0.55 * p), "width": const(lambda p: 0.6 - 0.3 * p),
         "dy": unif(lambda p: 0.03 + 0.04 * p, lambda p: 0.05 + 0.08 * p),
         "gap": unif(lambda p: 0.05 + 0.1 * p, lambda p: 0.1 + 0.2 * p)},
    13: {"rise": lambda p, i: (0.05 + 0.1 * p + 0.05 * (i // 2), 0.07 + 0.15 * p + 0.05 * (i // 2))},
    14: {"tread": const(lambda p: 0.5 - 0.05 * p), "width": const(lambda p: 1.0 - 0.45 * p),
         "rise": unif(lambda p: 0.05 + 0.1 * p, lambda p: 0.07 + 0.15 * p)},
    15: {"tread": const(lambda p: 1.5 - 0.1 * p), "width": const(lambda p: 1.5 - 0.4 * p),
         "rise": unif(lambda p: 0.3 + 0.3 * p, lambda p: 0.4 + 0.3 * p)},
    16: {"rise": unif(lambda p: 0.05 + 0.15 * p, lambda p: 0.05 + 0.2 * p)},
    17: {"length": const(lambda p: 0.6 + 0.4 * p), "gap": unif(lambda p: 0.4 - 0.1 * p, lambda p: 0.5 - 0.1 * p),
         "width0": unif(lambda p: 0.5 - 0.15 * p, lambda p: 0.6 - 0.15 * p)},
    18: {"spacing": const(lambda p: 2 - 1.15 * p)},
    19: {"length": const(lambda p: 0.5 + 1.5 * p), "width": const(lambda p: 0.85 - 0.5 * p),
         "height": const(lambda p: 0.0)},
    20: {"y_jitter": unif(lambda p: -1.0, lambda p: 1.0)},
}  # fmt: skip

COUNTS = {11: 12, 12: 12, 13: 5, 16: 14, 20: 8}  # obstacles per terrain where not 6
CHAINED = {0: "gap", 1: "gap", 2: "spacing", 3: "gap", 4: "gap", 5: "spacing", 6: "gap", 7: "gap", 8: "spacing",
           9: "spacing", 10: "gap", 11: "gap", 12: "gap", 17: "gap"}  # fmt: skip
"""Terrains laid out along x: obstacle k starts `gap + dx` after the previous one's far end (spawn zone: 2 m)."""
OBSTACLE_LENGTH = {
    **{t: (lambda p: p["length"]) for t in (0, 1, 3, 4, 6, 7, 10, 12, 17)},
    2: lambda p: 2 * np.asarray(p["radius_cells"]) * 0.05, 5: lambda p: 2 * np.asarray(p["radius_cells"]) * 0.05,
    8: lambda p: 2 * (np.asarray(p["R_cells"]) - p["lip_cells"]) * 0.05,
    9: lambda p: 2 * (np.asarray(p["R_cells"]) - p["lip_cells"]) * 0.05, 11: lambda p: 2 * np.asarray(p["radius"]),
}  # fmt: skip
ALL = list(range(21))


def raw_tile(tid: int, d: float, seed: int) -> T.Tile:
    """The terrain function alone: no roughness, no walls."""
    return T.TERRAIN_FUNCTIONS[tid](d, np.random.default_rng(seed))


def sample(height: np.ndarray, x: float, y: float) -> float:
    return float(height[int(round(x / T.H)), int(round(y / T.H))])


# ---------------------------------------------------------------------------------------------------------
# names, difficulty


def test_names_and_difficulty_ranges():
    assert len(T.TERRAIN_NAMES) == 21 and T.TERRAIN_NAMES[0] == "jump_on_and_off_box"
    assert T.TERRAIN_NAMES[16] == "staircase_spiral" and T.TERRAIN_NAMES[20] == "flat"
    for tid, (lo, hi) in UNSHIFTED_RANGE.items():
        assert T.DIFFICULTY_RANGE[tid] == pytest.approx((lo - 0.2, hi - 0.2)), tid
        assert T.scaled_difficulty(tid, 0.0) == pytest.approx(lo - 0.2)
        assert T.scaled_difficulty(tid, 1.0) == pytest.approx(hi - 0.2)
        assert T.scaled_difficulty(tid, 0.5) == pytest.approx((lo + hi) / 2 - 0.2)
    assert T.scaled_difficulty(16, 0.3) == pytest.approx(0.3)  # spiral: unscaled
    assert T.scaled_difficulty(20, 0.7) == pytest.approx(0.7)


# ---------------------------------------------------------------------------------------------------------
# parameters


@pytest.mark.parametrize("d", [0.0, 1.0])
@pytest.mark.parametrize("tid", ALL)
def test_parameters_in_documented_ranges(tid: int, d: float):
    p_ = dprime(tid, d)
    for seed in SEEDS:
        params = raw_tile(tid, d, seed).params
        assert params["d_scaled"] == pytest.approx(p_)
        for name, rng in RANGES[tid].items():
            vals = np.atleast_1d(np.asarray(params[name], dtype=float))
            if name not in ("width0",):
                assert len(vals) == COUNTS.get(tid, 6), (name, len(vals))
            for i, v in enumerate(vals):
                a, b = rng(p_, i)
                assert min(a, b) - EPS <= v <= max(a, b) + EPS, f"{T.TERRAIN_NAMES[tid]} {name}[{i}]={v} not in {a, b}"
        if tid in CHAINED:  # obstacle k starts max(0, gap_k + dx_k) after the previous one ends
            prev = np.concatenate([[T.SPAWN_END], params["x_end"][:-1]])
            realised = np.asarray(params["x_start"]) - prev
            gaps = np.asarray(params[CHAINED[tid]]) + np.asarray(params.get("dx", 0.0))
            assert np.allclose(realised, np.maximum(gaps, 0.0)), (realised, gaps)
            lengths = np.asarray(params["x_end"]) - np.asarray(params["x_start"])
            assert np.allclose(lengths, OBSTACLE_LENGTH[tid](params)), T.TERRAIN_NAMES[tid]
            assert params["x_end"][-1] <= T.X_LAST_END + EPS


def test_box_jump_uneven_heights():
    """|height change| from the formula's range, up or down, never at or below 0; exit at the last height."""
    for d in (0.0, 0.5, 1.0):
        p_ = dprime(7, d)
        a, b = 0.01 + 0.2 * p_, 0.02 + 0.25 * p_
        lo, hi = (0.0 if a * b < 0 else min(abs(a), abs(b))), max(abs(a), abs(b))
        for seed in range(10):
            tile = raw_tile(7, d, seed)
            ch, hts = np.array(tile.params["height_change"]), np.array(tile.params["height"])
            assert np.all((np.abs(ch) >= lo - EPS) & (np.abs(ch) <= hi + EPS)), ch
            assert np.allclose(np.cumsum(ch), hts) and np.all(hts > 0)
            assert sample(tile.height, T.TILE_LENGTH - 0.5, 2.0) == pytest.approx(hts[-1], abs=TILE_TOL)


def test_squeeze_narrows_and_spiral_geometry():
    for seed in SEEDS:
        sq = raw_tile(17, 1.0, seed).params
        assert np.allclose(np.diff(sq["width"]), -T.SQUEEZE_NARROWING)
        sp = raw_tile(16, 0.5, seed)
        assert sp.params["outer_radius"] == pytest.approx(T.SPIRAL_RADIUS * (1 - 0.35 * 0.5))
        # goals climb: heights at the sector goals increase along the spiral
        hts = [sample(sp.height, x, y) for x, y in sp.goals[1:]]
        assert np.all(np.diff(hts) > 0), hts


# obstacle top heights (before roughness) that the heightfield must show at the goals
GOAL_HEIGHT = {
    0: lambda p: p["height"], 2: lambda p: p["height"], 5: lambda p: p["height"], 6: lambda p: p["height"],
    7: lambda p: p["height"], 8: lambda p: p["height"], 9: lambda p: p["height"],
    4: lambda p: p["height"], 10: lambda p: np.asarray(p["height"]) / 2,
    14: lambda p: p["height"], 15: lambda p: p["height"], 19: lambda p: p["height"],
    1: lambda p: np.asarray(p["lip"]) + np.asarray(p["rise"]) / 2, 3: lambda p: np.asarray(p["height"]) / 2,
}  # fmt: skip


@pytest.mark.parametrize("tid", sorted(GOAL_HEIGHT))
def test_heightfield_shows_the_parameters(tid: int):
    """The obstacle under each obstacle goal has the documented height (ramps: their mid height)."""
    # sloped or curved tops: the goal is up to half a sample off the grid
    tol = {1: 0.02, 2: 0.004, 3: 0.02, 4: 0.02, 5: 0.005, 9: 0.004, 10: 0.03}.get(tid, TILE_TOL)
    for d in (0.0, 0.5, 1.0):
        for seed in SEEDS:
            tile = raw_tile(tid, d, seed)
            expect = np.asarray(GOAL_HEIGHT[tid](tile.params), dtype=float)
            got = np.array([sample(tile.height, x, y) for x, y in tile.goals[1:7]])
            assert np.allclose(got, expect, atol=tol), (T.TERRAIN_NAMES[tid], d, seed, got, expect)


# ---------------------------------------------------------------------------------------------------------
# tiles


@pytest.mark.parametrize("tid", ALL)
def test_tile_shape_spawn_walls_determinism(tid: int):
    for d in (0.0, 1.0):
        raw = raw_tile(tid, d, 0)
        spawn = slice(0, int(round(T.SPAWN_END / T.H)))
        assert raw.height.shape == (360, 80) and raw.height.dtype == np.float32
        assert np.all(raw.height[spawn] == 0.0), "the spawn zone must be flat before roughness"
        tile = T.make_tile(tid, d, 7)
        h = tile.height
        assert h.shape == (360, 80) and h.dtype == np.float32 and tile.goals.shape == (8, 2)
        assert np.allclose(np.round(h / T.V) * T.V, h, atol=1e-6), "heights on the 5 mm grid"
        w = T.WALL_CELLS
        for rim in (h[:w], h[-w:], h[:, :w], h[:, -w:]):
            assert np.all(rim == np.float32(T.WALL_HEIGHT))
        assert np.abs(h[w : spawn.stop, w:-w]).max() <= T.ROUGHNESS[1] + 1e-6, "spawn zone: roughness only"
        assert np.abs(h[w : spawn.stop, w:-w]).max() >= 0.005, "roughness present"
        pit = h[w:-w, w:-w] < -0.5
        assert pit.any() == (tid in T.PIT_TERRAINS and tid != 13)
        # deterministic per seed
        again = T.make_tile(tid, d, 7)
        assert np.array_equal(again.height, h) and np.array_equal(again.goals, tile.goals)
        assert again.params == tile.params
        other = T.make_tile(tid, d, 8)
        assert not np.array_equal(other.height, h)


@pytest.mark.parametrize("tid", ALL)
def test_goals_on_walkable_ground(tid: int):
    """Not over a pit, not on the rim walls, not on top of squeeze walls or poles; advancing along +x except the
    spiral's (which go round its centre; agility poles and zig-zag stones weave sideways but advance)."""
    for d in (0.0, 0.5, 1.0):
        for seed in SEEDS:
            tile = T.make_tile(tid, d, seed)
            g = tile.goals
            assert np.all((g[:, 0] > 0.3) & (g[:, 0] < T.TILE_LENGTH - 0.3)), g
            assert np.all((g[:, 1] > 0.3) & (g[:, 1] < T.TILE_WIDTH - 0.3)), g
            hts = np.array([sample(tile.height, x, y) for x, y in g])
            assert np.all(hts > -0.5), (T.TERRAIN_NAMES[tid], d, seed, hts)
            if tid in (17, 18):
                assert np.all(hts < 0.1), hts
            # a 3 x 3 block of samples round each goal is walkable too (goals are not on the rim of a pit)
            for x, y in g:
                i, j = int(round(x / T.H)), int(round(y / T.H))
                assert tile.height[i - 1 : i + 2, j - 1 : j + 2].min() > -0.5
            if tid not in T.GOALS_ALONG_X_EXCEPT:
                assert np.all(np.diff(g[:, 0]) > 0), g[:, 0]


# ---------------------------------------------------------------------------------------------------------
# columns and queries


def test_column_assembly():
    diffs = [0.0, 0.5, 1.0]
    col = T.make_column(6, diffs, seed=3)
    b, nx = T.BORDER_CELLS, T.NX
    assert col.height.shape == (3 * nx + 2 * b, T.NY + 2 * b) and col.height.dtype == np.float32
    border = np.ones(col.height.shape, bool)
    border[b:-b, b:-b] = False
    assert np.all(col.height[border] == 0.0), "flat border"
    for i, d in enumerate(diffs):
        tile = T.make_tile(6, d, T.row_seed(3, 6, i))
        assert np.array_equal(col.height[b + i * nx : b + (i + 1) * nx, b:-b], tile.height)
        assert np.allclose(col.origins[i], (18.0 * i + 1.0, 2.0))
        assert np.allclose(col.goals[i], tile.goals + (18.0 * i, 0.0))
        assert np.all((col.goals[i, :, 0] > 18.0 * i) & (col.goals[i, :, 0] < 18.0 * (i + 1)))
        assert col.params[i]["d"] == d
    # world -> sample mapping: the origin and the goals read their tile's heights
    assert np.abs(T.height_at(col, col.origins)).max() <= T.ROUGHNESS[1] + 1e-6
    for i in range(3):
        tile = T.make_tile(6, diffs[i], T.row_seed(3, 6, i))
        expect = [sample(tile.height, x, y) for x, y in tile.goals]
        assert np.allclose(T.height_at(col, col.goals[i], mode="nearest"), expect)
    # rows differ even at equal difficulty (parkour-easy)
    easy = T.make_column(6, [0.0] * 3, seed=3)
    assert not np.array_equal(easy.height[b : b + nx], easy.height[b + nx : b + 2 * nx])


def test_height_queries_numpy_and_torch():
    col = T.make_column(9, [0.3, 0.8], seed=1)
    rng = np.random.default_rng(0)
    ij = np.stack([rng.integers(0, col.height.shape[0] - 1, 500), rng.integers(0, col.height.shape[1] - 1, 500)], 1)
    grid_xy = np.stack([col.x0 + ij[:, 0] * col.scale, col.y0 + ij[:, 1] * col.scale], 1)
    h = col.height.astype(np.float64)
    assert np.allclose(T.height_at(col, grid_xy), h[ij[:, 0], ij[:, 1]], atol=1e-6)
    mid = grid_xy + col.scale / 2
    a, b = ij[:, 0], ij[:, 1]
    quad = (h[a, b] + h[a + 1, b] + h[a, b + 1] + h[a + 1, b + 1]) / 4
    assert np.allclose(T.height_at(col, mid), quad, atol=1e-6)
    # scandots: min of (i, j), (i + 1, j), (i, j + 1) with (i, j) the floor of the sample coordinates
    xy = np.stack([rng.uniform(-4.9, 40.0, 500), rng.uniform(-4.9, 8.9, 500)], 1)
    i = np.floor((xy[:, 0] - col.x0) / col.scale).astype(int)
    j = np.floor((xy[:, 1] - col.y0) / col.scale).astype(int)
    expect = np.minimum(np.minimum(h[i, j], h[i + 1, j]), h[i, j + 1])
    assert np.allclose(T.scan_height(col, xy), expect)
    # torch in, torch out, same numbers
    txy = torch.tensor(xy, dtype=torch.float32)
    for fn in (T.height_at, T.scan_height):
        out = fn(col, txy)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (500,)
        assert np.allclose(out.numpy(), fn(col, xy.astype(np.float32).astype(np.float64)), atol=1e-4)
    # outside the grid reads the edge (border, flat)
    assert np.all(T.height_at(col, np.array([[-100.0, -100.0], [1e4, 50.0]])) == 0.0)


def test_overview_png(tmp_path):
    path = T.overview_png(str(tmp_path / "overview.png"), difficulties=(0.5,))
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.shape[0] > 1000 and img.shape[1] > 300


# ---------------------------------------------------------------------------------------------------------
# MuJoCo height field


@pytest.mark.parametrize("tid", [2, 6, 15, 20])
def test_hfield_surface_equals_the_array(tid: int):
    """Rays cast straight down onto the compiled model hit the column's heights at the grid points."""
    col = T.make_column(tid, [0.0, 1.0], seed=0)
    model = S.terrain_spec(col).compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "terrain")
    assert model.geom_type[g] == mujoco.mjtGeom.mjGEOM_HFIELD
    assert model.geom_contype[g] == 1 and model.geom_conaffinity[g] == 1 and model.geom_friction[g, 0] == 1.0
    rng = np.random.default_rng(tid)
    n = 400
    ij = np.stack([rng.integers(0, col.height.shape[0], n), rng.integers(0, col.height.shape[1], n)], 1)
    # include pit floors, walls and the highest samples
    ij[:20] = np.argwhere(col.height == col.height.min())[:20]
    ij[20:40] = np.argwhere(col.height == col.height.max())[:20]
    geomid = np.zeros(1, np.int32)
    top = float(col.height.max()) + 1.0
    got = []
    for a, b in ij:
        x, y = col.x0 + a * col.scale, col.y0 + b * col.scale
        dist = mujoco.mj_ray(model, data, np.array([x, y, top]), np.array([0.0, 0.0, -1.0]), None, 1, -1, geomid)
        assert geomid[0] == g
        got.append(top - dist)
    err = np.abs(np.array(got) - col.height[ij[:, 0], ij[:, 1]])
    assert err.max() < 1e-4, err.max()


# ---------------------------------------------------------------------------------------------------------
# drop test: MuJoCo C vs MuJoCo Warp

DROP = 0.3  # m, from the highest sample under the body to its lowest point
DROP_STEPS = 160  # 0.8 s at 5 ms: 0.25 s of fall, then settling
SPHERE = {"type": mujoco.mjtGeom.mjGEOM_SPHERE, "size": [0.05, 0, 0]}
CAPSULE = {"type": mujoco.mjtGeom.mjGEOM_CAPSULE, "size": [0.03, 0.1, 0], "quat": [0.7071068, 0, 0.7071068, 0]}
BOX = {"type": mujoco.mjtGeom.mjGEOM_BOX, "size": [0.1, 0.05, 0.025]}
HALF_HEIGHT = {"sphere": 0.05, "capsule": 0.03, "box": 0.025}
ROLLING = 0.05
"""Rolling friction (m) of the dropped bodies (condim 6): a 5 cm sphere on the ±4 cm roughness otherwise keeps
rolling for seconds and the comparison would be of chaotic trajectories, not of the terrain."""
REST_TOL = 0.01
"""Metres. Both engines must agree on rest heights, and each rest pose must lie on the surface MuJoCo C sees."""
SAME_PLACE = 0.015
"""Metres. Bodies the engines bring to rest this close in xy are compared by height (on the steepest drop
points, 27° ramps, 1.5 cm of xy make 0.8 cm of height). Measured over all 21 types, 2 bodies × 8 points: median
xy difference 1.6 mm, 95th percentile 1.2 cm, worst 4.9 cm (a sphere that rolled further down an A-frame in one
engine); worst height difference among bodies within 1.5 cm: 0.6 cm."""


def drop_model(tid: int, bodies: dict) -> tuple[T.Column, mujoco.MjModel]:
    col = T.make_column(tid, [0.5], seed=0)
    spec = S.terrain_spec(col, timestep=0.005)  # upstream's sim dt
    for name, geom in bodies.items():
        body = spec.worldbody.add_body(name=name)
        body.add_freejoint()
        # contype 0 / conaffinity 1: touches the terrain (contype 1), never the other dropped bodies
        body.add_geom(name=name, contype=0, conaffinity=1, condim=6, friction=[1.0, 0.005, ROLLING], **geom)
    return col, spec.compile()


def drop_points(col: T.Column) -> np.ndarray:
    """The row's 8 goals (obstacle tops, exit floor, treads, beside poles), each moved by up to 0.3 m along x to
    the nearest spot whose 0.3 m square is flat before roughness: goals on a step edge (the evenly spaced
    staircase goals, the A-frame apex) would otherwise test which way a body tips, not the terrain."""
    raw = T.TERRAIN_FUNCTIONS[col.tid](float(col.difficulties[0]), np.random.default_rng(T.row_seed(0, col.tid, 0)))
    pts = col.goals[0].copy()
    for k, (x, y) in enumerate(col.goals[0]):
        for dx in sorted(np.arange(-0.3, 0.31, 0.05), key=abs):
            a, b = int(round((x + dx) / T.H)), int(round(y / T.H))
            win = raw.height[a - 3 : a + 4, b - 3 : b + 4]
            if win.max() - win.min() < 0.01:
                pts[k, 0] = x + dx
                break
    return pts


def start_qpos(col: T.Column, model: mujoco.MjModel, names: list[str]) -> np.ndarray:
    pts = drop_points(col)
    q = np.tile(model.qpos0, (len(pts), 1))
    for k, (x, y) in enumerate(pts):
        a, b = int(round((x - col.x0) / col.scale)), int(round((y - col.y0) / col.scale))
        top = float(col.height[a - 3 : a + 4, b - 3 : b + 4].max())
        for n, name in enumerate(names):
            q[k, 7 * n : 7 * n + 3] = (x, y, top + DROP + HALF_HEIGHT[name])
    return q


def settle(backend: str, model: mujoco.MjModel, q0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from mtbench.sim import make_block

    block = make_block(backend, model, q0.shape[0], torch.device("cpu") if backend == "cpu" else DEVICE)
    block.qpos[:] = torch.as_tensor(q0, dtype=block.dtype)
    block.qvel[:] = 0
    block.forward()
    for _ in range(DROP_STEPS // 10):
        assert not block.step(10).any()
    return block.qpos.double().cpu().numpy().copy(), block.qvel.double().cpu().numpy().copy()


def penetration(model: mujoco.MjModel, qpos: np.ndarray, body: int, nbody: int) -> float:
    """How deep the body sits in the terrain surface that MuJoCo C sees, at this pose: minus the distance of its
    deepest C contact, or, with no contact, minus how far it must be lowered to touch (hovering)."""
    data = mujoco.MjData(model)
    geom = int(model.body_geomadr[body + 1])  # body 0 is the world

    def deepest(dz: float) -> float:
        data.qpos[:] = qpos
        for other in range(nbody):
            if other != body:
                data.qpos[7 * other + 2] += 100.0
        data.qpos[7 * body + 2] += dz
        mujoco.mj_forward(model, data)
        dist = [data.contact[c].dist for c in range(data.ncon) if geom in data.contact[c].geom]
        return min(dist) if dist else np.inf

    depth = deepest(0.0)
    if np.isfinite(depth):
        return -depth
    lo, hi = -0.05, 0.0  # lowered by lo it touches, at hi it does not
    if not np.isfinite(deepest(lo)):
        return lo  # 5 cm or more above the surface (or in flight)
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.isfinite(deepest(mid)) else (lo, mid)
    return hi


def check_drop(tid: int, bodies: dict) -> dict:
    """Drop every body at every point on both backends; return the worst numbers."""
    pytest.importorskip("mujoco_warp")
    names = list(bodies)
    col, model = drop_model(tid, bodies)
    q0 = start_qpos(col, model, names)
    (qc, vc), (qw, vw) = settle("cpu", model, q0), settle("warp", model, q0)
    out = {"dz": 0.0, "pen": [], "speed": 0.0, "same_place": 0, "n": 0}
    for n in range(len(names)):
        sl = slice(7 * n, 7 * n + 3)
        for k in range(q0.shape[0]):
            out["n"] += 1
            if np.linalg.norm(qc[k, sl][:2] - qw[k, sl][:2]) < SAME_PLACE:  # same resting place: same height
                out["same_place"] += 1
                out["dz"] = max(out["dz"], abs(qc[k, sl][2] - qw[k, sl][2]))
            for q in (qc, qw):
                out["pen"].append(penetration(model, q[k], n, len(names)))
        out["speed"] = max(out["speed"], np.abs(vc[:, 6 * n : 6 * n + 3]).max(), np.abs(vw[:, 6 * n : 6 * n + 3]).max())
    out["pen"] = (min(out["pen"]), max(out["pen"]))
    return out


def assert_same_rest(tid: int, bodies: dict) -> None:
    r = check_drop(tid, bodies)
    name = T.TERRAIN_NAMES[tid]
    assert r["speed"] < 0.3, f"{name}: not at rest, {r}"
    assert r["dz"] < REST_TOL, f"{name}: rest heights differ between engines, {r}"
    assert -0.002 < r["pen"][0] and r["pen"][1] < REST_TOL, f"{name}: a rest pose is off the surface, {r}"
    assert r["same_place"] >= 0.75 * r["n"], f"{name}: engines diverge too often, {r}"


DEFAULT_DROP_TYPES = [3, 6, 15]  # ramps, a pit course, tall stairs


@pytest.mark.parametrize("tid", DEFAULT_DROP_TYPES)
def test_drop_rests_alike_on_both_engines(tid: int):
    assert_same_rest(tid, {"sphere": SPHERE, "capsule": CAPSULE})


@pytest.mark.slow
@pytest.mark.parametrize("tid", [t for t in ALL if t not in DEFAULT_DROP_TYPES])
def test_drop_rests_alike_on_both_engines_all_types(tid: int):
    assert_same_rest(tid, {"sphere": SPHERE, "capsule": CAPSULE})


@pytest.mark.xfail(
    strict=True,
    reason="MuJoCo Warp 4.0's hfield-box collision returns spurious deep contacts (normal -z, 2-10 cm) that "
    "throw a resting box around; MuJoCo C does not (see terrain_scene docstring). Remove when it passes.",
)
def test_drop_box_rests_alike_on_both_engines():
    assert_same_rest(20, {"box": BOX})
