"""Fixed-size contact and constraint buffers: their per-scene sizes and the overflow check.

MuJoCo C grows its arena as a step needs; MuJoCo Warp allocates once, at `put_data`: `nconmax` contact slots per
world, pooled over a block's worlds (broadphase candidate pairs and contacts both draw on the pool), and `njmax`
constraint rows per world (a hard per-world cap). On overflow it drops what does not fit and keeps stepping, so
objects sink into or pass through each other, and it ORs a bit into a sticky per-world mask (`Data.overflow`,
`mujoco_warp.OverflowType`; only `mjw.reset_data`, never called here, clears it). Reading that mask is a host sync
on CUDA, so stepping never reads it: `check_overflow` reads every block's mask in one copy, once per training
iteration or evaluation, and raises naming the scene and the setting to raise.

Sizes come from measurement, per scene (`tools/contact_capacity.py`, figures in the suites' capacity tables and
BENCHMARKS.md): `MARGIN` times the largest per-world count either engine reached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mtbench.errors import RunStopped
from mtbench.sim.base import SceneBlock

MARGIN = 2.0
"""Buffer size over the measured peak: measurement runs are short and cover random, pressing and scripted-expert
actions, while a learning policy may find rarer contact-rich states (a whole MT50 block overflowing together)."""
QUANTUM = 8
"""Sizes are rounded up to a multiple of this (MJWarp pads its constraint arrays to whole tiles in any case)."""

# mujoco_warp.OverflowType bits (asserted equal in tests/test_sim_overflow.py; kept here so that the check needs
# no Warp import on machines that run the C engine only)
NEFC, NJMAX_NNZ, BROADPHASE, NARROWPHASE, CCD = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
BUFFERS: dict[str, tuple[int, str]] = {
    "nconmax": (BROADPHASE | NARROWPHASE | CCD, "contact slots"),
    "njmax": (NEFC | NJMAX_NNZ, "constraint rows"),
}
"""Setting -> (overflow bits its buffer sets, what it holds). Other bits (solver iteration limits, the height-field
prism cap per pair, EPA's horizon) name no buffer size and are not checked."""


def sized(peak: int, margin: float = MARGIN) -> int:
    """A buffer size for a measured per-world `peak`: `margin` times it, rounded up to a multiple of QUANTUM."""
    return max(QUANTUM, QUANTUM * math.ceil(peak * margin / QUANTUM))


@dataclass(frozen=True)
class Capacity:
    """What one scene was measured to need per world, on either engine, and the buffer sizes that follow."""

    ncon: int
    """Peak contact-pool use: max of MuJoCo C's ncon, MJWarp's contacts and MJWarp's broadphase pairs per world."""
    nefc: int
    """Peak constraint rows (MuJoCo C and MJWarp)."""

    @property
    def nconmax(self) -> int:
        return sized(self.ncon)

    @property
    def njmax(self) -> int:
        return sized(self.nefc)


def buffer_sizes(need: Capacity, nconmax: int | None = None, njmax: int | None = None) -> dict[str, int]:
    """`make_block`'s `nconmax`/`njmax` for a scene measured to need `need`: the given values where the user set
    them (they replace the measured sizes), the measured sizes otherwise."""
    return {"nconmax": nconmax or need.nconmax, "njmax": njmax or need.njmax}


class SimOverflowError(RunStopped, RuntimeError):
    """A fixed-size physics buffer overflowed: the physics since then is wrong in the worlds named. The message
    names the scene, the buffer, its size and the `key=value` to pass instead."""


def check_overflow(scenes: Sequence[tuple[str, SceneBlock]], options_key: str = "env") -> None:
    """Raise SimOverflowError if any block of `scenes` ((scene name, block) pairs) overflowed a buffer since it was
    built. One host sync (one copy of every block's mask); nothing for engines without fixed buffers. The suggested
    value is twice the largest size in use, as one setting sizes every scene of an env; `options_key` is the
    training config's section of the env's options (`env.nconmax=...`)."""
    live = [(name, s) for name, s in scenes if s.overflow is not None]
    if not live:
        return
    flags = torch.cat([s.overflow.reshape(-1) for _, s in live]).cpu().numpy()  # the one host sync
    start, problems, raise_to = 0, [], {}
    for name, sim in live:
        mask = flags[start : start + sim.n]
        start += sim.n
        for key, (bits, what) in BUFFERS.items():
            worlds = int(((mask & bits) != 0).sum())
            if worlds:
                size = sim.capacity[key]
                pooled = ", pooled over the scene's worlds" if key == "nconmax" else ""
                problems.append(
                    f"MuJoCo Warp ran out of {what} in scene {name!r} ({worlds} of {sim.n} worlds; {key}={size} per "
                    f"world{pooled})"
                )
                raise_to[key] = 2 * max(s.capacity[key] for _, s in live)
    if problems:
        settings = " ".join(f"{k}={v}" for k, v in raise_to.items())
        on_cli = " ".join(f"{options_key}.{k}={v}" for k, v in raise_to.items())
        raise SimOverflowError(
            "; ".join(problems) + ". It dropped what did not fit, so objects there may have sunk into or passed "
            f"through each other since. Raise the size: {settings} (training config: {on_cli}; one value sets every "
            "scene of the env). Measured needs per scene: mtbench/envs/*/capacity.py"
        )
