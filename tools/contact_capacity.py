"""How many contacts and constraint rows each scene needs per world, on both engines: what sizes MuJoCo Warp's
fixed buffers (mtbench/sim/capacity.py).

Every Meta-World task (MT50) and every parkour terrain (the hard setting's ten rows, difficulty 0 to 1, which
include the easy and flat settings' terrain) is stepped with actions meant to make contacts: Meta-World's scripted
experts with noise (grasping, pushing, inserting), uniform random actions, and "pressing" (the hand driven down
into the table and objects, gripper random); the Go1 standing still, walking with small random joint offsets, and
flailing with large ones (it falls: trunk, thighs and calves on the ground). After every physics substep it reads

  MuJoCo C:     ncon and nefc of every world;
  MuJoCo Warp:  contacts per world, broadphase pairs (pooled; their count / worlds is what fills the pool),
                nefc per world, and the overflow mask (buffers sized far above need, so nothing is dropped).

Prints one line per scene and the peak (ncon, nefc) pairs as Python, for the suites' capacity tables:

    python tools/contact_capacity.py                   # everything, a few minutes on 2 cores
    python tools/contact_capacity.py --suite parkour --cpu-steps 100 --warp-steps 20
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

import mtbench
from mtbench.envs.metaworld.experts import ScriptedExperts
from mtbench.envs.metaworld.registry import METAWORLD_NAMES
from mtbench.envs.parkour.terrains import TERRAIN_NAMES
from mtbench.sim.base import SceneBlock

BIG = {"nconmax": 512, "njmax": 2048}
"""Warp buffers while measuring: far above any need, so that the counts are not clipped."""


@dataclass
class Peak:
    cpu_ncon: int = 0
    cpu_nefc: int = 0
    warp_ncon: int = 0  # contacts in one world
    warp_pairs: float = 0.0  # broadphase pairs / worlds (the pool's fill per world)
    warp_nefc: int = 0
    warp_bits: int = 0  # OR of the overflow masks (solver iteration limits set bits too)

    @property
    def ncon(self) -> int:
        return max(self.cpu_ncon, self.warp_ncon, int(np.ceil(self.warp_pairs)))

    @property
    def nefc(self) -> int:
        return max(self.cpu_nefc, self.warp_nefc)


def watch(sim: SceneBlock, peak: Peak, backend: str) -> None:
    """Replace `sim.step` by the same physics one substep at a time, recording the counts after each."""
    step = sim.step

    def counted(nsubstep: int, kinematics: bool = True) -> torch.Tensor:
        bad = torch.zeros(sim.n, dtype=torch.bool, device=sim.device)
        for _ in range(nsubstep):
            if backend == "cpu":
                bad |= step(1, kinematics=False)  # the position stage with contacts off would zero ncon
                peak.cpu_ncon = max(peak.cpu_ncon, int(sim.batch.bind("ncon").max()))
                peak.cpu_nefc = max(peak.cpu_nefc, int(sim.batch.bind("nefc").max()))
            else:
                bad |= step(1)
                d = sim._d
                nacon = min(int(d.nacon.numpy()[0]), d.naconmax)
                per_world = np.bincount(d.contact.worldid.numpy()[:nacon], minlength=sim.n)
                peak.warp_ncon = max(peak.warp_ncon, int(per_world.max()))
                peak.warp_pairs = max(peak.warp_pairs, int(d.ncollision.numpy()[0]) / sim.n)
                peak.warp_nefc = max(peak.warp_nefc, int(d.nefc.numpy().max()))
                peak.warp_bits |= int(np.bitwise_or.reduce(d.overflow.numpy()))
        if backend == "cpu" and kinematics:
            sim.forward()
        return bad

    sim.step = counted


def metaworld_actions(env, experts: ScriptedExperts, gen: torch.Generator) -> torch.Tensor:
    """Per env by index mod 3: expert with noise, uniform random, pressing down with random xy and gripper."""
    n = env.num_envs
    act = experts(env.metaworld_obs).to(env.action_dtype)
    rand = (torch.rand(n, 4, generator=gen) * 2 - 1).to(env.action_dtype)
    press = rand.clone()
    press[:, 2] = -1.0
    mode = torch.arange(n) % 3
    return torch.where((mode == 1)[:, None], rand, torch.where((mode == 2)[:, None], press, act))


def parkour_actions(env, gen: torch.Generator) -> torch.Tensor:
    """Per env by index mod 3: stand (0), walk-like small offsets N(0, 0.3), flail N(0, 2) (clipped by the env)."""
    scale = torch.tensor([0.0, 0.3, 2.0])[torch.arange(env.num_envs) % 3]
    return torch.randn(env.num_envs, env.action_dim, generator=gen) * scale[:, None]


def measure(suite: str, name: str, backend: str, envs: int, steps: int, peak: Peak) -> None:
    gen = torch.Generator().manual_seed(0)
    big = BIG if backend == "warp" else {}
    if suite == "metaworld":
        env = mtbench.make(name, num_envs=envs, device="cpu", backend=backend, seed=1, episode_length=150,
                           nthread=2, **big)  # fmt: skip
        experts = ScriptedExperts(env.task_names, env.task_counts, noise_std=0.1, seed=0)
    else:
        env = mtbench.make(name, num_envs=envs, device="cpu", backend=backend, seed=1, suite="parkour",
                           setting="hard", random_init_progress=False, nthread=2, **big)  # fmt: skip
    for blk in env.blocks:
        watch(blk.sim, peak, backend)
    env.reset()
    for _ in range(steps):
        act = metaworld_actions(env, experts, gen) if suite == "metaworld" else parkour_actions(env, gen)
        env.step(act)
    env.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=("metaworld", "parkour", "all"), default="all")
    p.add_argument("--tasks", nargs="*", help="scene names (default: every task / terrain of the suite)")
    p.add_argument("--cpu-envs", type=int, default=12)
    p.add_argument("--cpu-steps", type=int, default=150, help="policy steps on MuJoCo C (Meta-World: 5 substeps)")
    p.add_argument("--warp-envs", type=int, default=6)
    p.add_argument("--warp-steps", type=int, default=40, help="policy steps on MuJoCo Warp (its CPU device)")
    p.add_argument("--json", help="also write the peaks here")
    args = p.parse_args()
    suites = ("metaworld", "parkour") if args.suite == "all" else (args.suite,)
    out: dict[str, dict[str, dict]] = {}
    for suite in suites:
        names = args.tasks or (METAWORLD_NAMES if suite == "metaworld" else TERRAIN_NAMES)
        out[suite] = {}
        for name in names:
            t0, peak = time.perf_counter(), Peak()
            envs = args.cpu_envs if suite == "metaworld" else max(args.cpu_envs, 20)  # parkour: 2 per row
            measure(suite, name, "cpu", envs, args.cpu_steps, peak)
            if args.warp_steps:
                measure(suite, name, "warp", args.warp_envs, args.warp_steps, peak)
            out[suite][name] = {**asdict(peak), "ncon": peak.ncon, "nefc": peak.nefc}
            print(f"{suite:9s} {name:36s} C ncon {peak.cpu_ncon:3d} nefc {peak.cpu_nefc:3d} | Warp contacts "
                  f"{peak.warp_ncon:3d} pairs/world {peak.warp_pairs:5.1f} nefc {peak.warp_nefc:3d} bits "
                  f"{peak.warp_bits:#x} | {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    for suite, peaks in out.items():
        print(f"\n# {suite}: peak per world over both engines, (ncon, nefc)")
        print("{\n" + "".join(f'    "{n}": Capacity({v["ncon"]}, {v["nefc"]}),\n' for n, v in peaks.items()) + "}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "peaks": out}, f, indent=1)


if __name__ == "__main__":
    main()
