"""Learners behind one interface (`base.Algorithm`), chosen by `train.algo`; each reads its settings from
`train.<algo>` and builds its own networks from the `network` section."""

from __future__ import annotations

import torch

from mtbench.algos.base import Algorithm
from mtbench.algos.brc import BRC
from mtbench.algos.grpo import GRPO
from mtbench.algos.ppo import PPO
from mtbench.algos.pqn import PQN
from mtbench.algos.sac import SAC
from mtbench.mtrl import make_scheme

ALGORITHMS: dict[str, type[Algorithm]] = {"ppo": PPO, "sac": SAC, "grpo": GRPO, "pqn": PQN, "brc": BRC}


def make_algorithm(
    algo: str,
    settings: dict,
    network: dict,
    scheme: dict,
    obs_dim: int,
    action_dim: int,
    task_names: list[str],
    device: str | torch.device,
    seed: int,
) -> Algorithm:
    """Algorithm `algo` for an env of `obs_dim`/`action_dim` over `task_names`, seeded: the global torch seed
    (network initialisation) and the learner's own generator (sampling, shuffling) both come from `seed`."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; available: {', '.join(sorted(ALGORITHMS))}")
    dev = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    scheme = dict(scheme)
    if scheme.get("apply_to", "") is None:  # null: the part this learner's schemes act on by default
        scheme["apply_to"] = ALGORITHMS[algo].scheme_part
    mtrl = make_scheme(scheme.pop("name"), len(task_names), dev, generator=gen, **scheme)
    return ALGORITHMS[algo].build(dict(settings), dict(network), obs_dim, action_dim, list(task_names), dev, gen, mtrl)


__all__ = ["ALGORITHMS", "Algorithm", "make_algorithm"]
