"""Learners behind one interface (`base.Algorithm`), chosen by `train.algo`; each reads its settings from
`train.<algo>` and builds its own networks from the `network` section."""

from __future__ import annotations

import torch

from mtbench import distributed
from mtbench.algos.base import Algorithm
from mtbench.algos.brc import BRC
from mtbench.algos.grpo import GRPO
from mtbench.algos.ppo import PPO
from mtbench.algos.pqn import PQN
from mtbench.algos.sac import SAC
from mtbench.mtrl import make_scheme
from mtbench.nets import stabilizer

RANK_SEED_STRIDE = 7919
"""Rank r's sampling generator is seeded with seed + r * RANK_SEED_STRIDE (rank 0: the seed itself)."""

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
    torch.manual_seed(seed)  # the same on every torchrun rank: the same initial weights
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed + RANK_SEED_STRIDE * distributed.rank())  # each rank explores and samples its own way
    scheme = dict(scheme)
    if scheme.get("apply_to", "") is None:  # null: the part this learner's schemes act on by default
        scheme["apply_to"] = ALGORITHMS[algo].scheme_part
    mtrl = make_scheme(scheme.pop("name"), len(task_names), dev, generator=gen, **scheme)
    agent = ALGORITHMS[algo].build(dict(settings), dict(network), obs_dim, action_dim, list(task_names), dev, gen, mtrl)
    if distributed.world_size() > 1:
        if any(stabilizer(m) is not None for m in agent.net.modules()):
            raise ValueError(
                f"network={network.get('name')} resets a task's parameters when its loss explodes (PaCo's "
                "stabiliser), which torchrun's ranks cannot yet agree on; train it in one process"
            )
        distributed.broadcast_module_(agent.net)  # rank 0's weights everywhere, whatever the init did
    return agent


__all__ = ["ALGORITHMS", "Algorithm", "make_algorithm"]
