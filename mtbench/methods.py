"""The eleven rows of the MTBench paper's Table 1 (MT-PPO with each MTRL scheme or network) as `mtbench train`
overrides, with the paper's MT10 and MT50 success rates (mean ± std over 10 seeds, 250M frames) beside them,
so benchmarks and reports name the same methods the same way."""

from __future__ import annotations

from typing import NamedTuple


class Method(NamedTuple):
    label: str  # as in the paper's Table 1
    overrides: tuple[str, ...]
    paper_mt10: tuple[float, float]
    paper_mt50: tuple[float, float]


TABLE1: dict[str, Method] = {
    "vanilla": Method("Vanilla", (), (82.05, 4.41), (48.12, 4.65)),
    "multihead": Method("Multihead", ("network=multihead",), (82.51, 5.27), (63.28, 3.18)),
    "pcgrad": Method("PCGrad", ("scheme=pcgrad",), (93.19, 1.79), (53.28, 3.94)),
    "cagrad": Method("CAGrad", ("scheme=cagrad",), (90.72, 3.75), (53.38, 3.90)),
    # upstream's FAMO configs use rl_games' KL-adaptive learning rate (mtbench-upstream.md §3.1)
    "famo": Method("FAMO", ("scheme=famo", "train.ppo.schedule=adaptive"), (90.33, 4.17), (65.07, 2.91)),
    "paco": Method("PaCo", ("network=paco",), (84.42, 1.96), (54.07, 5.17)),
    "moore_s": Method("MOORE-S", ("network=moore",), (80.19, 4.93), (43.73, 2.15)),
    "moore_m": Method("MOORE-M", ("network=moore_mh",), (87.09, 3.83), (62.61, 3.45)),
    "care_s": Method("CARE-S", ("network=care",), (78.05, 5.04), (45.63, 5.01)),
    "care_m": Method("CARE-M", ("network=care_mh",), (79.47, 6.03), (55.68, 2.97)),
    # upstream's soft-modularization config raises the entropy coefficient to 0.002 (§3.1 table)
    "soft_modularization": Method(
        "Soft-Modularization",
        ("network=soft_modularization", "train.ppo.entropy_coef=0.002"),
        (79.94, 4.51),
        (56.20, 3.40),
    ),
}
