"""Parameter matching for the scaling study (paper 002): `network=mlp network.match=moore` widens the plain MLP to
the largest width whose actor + critic parameter count does not exceed MOORE's at the same task set and learner.

Every hidden layer of both MLPs gets the one width w (each keeps its depth), the form paper 002 scales; the count
is the learner's own (`Algorithm.parameter_counts()["total"]`: SAC counts both critics, PPO its log-std), taken from
networks built on the CPU, so whatever a method's constructor does is counted as it is.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from mtbench.algos import make_algorithm

UNIT_KEYS = ("actor_units", "critic_units")


def total_parameters(cfg: DictConfig, network: dict, obs_dim: int, action_dim: int) -> int:
    """Trainable parameters of `cfg`'s learner with `network` (no MTRL scheme: schemes add none)."""
    algo = cfg.train.algo
    agent = make_algorithm(
        algo, OmegaConf.to_container(cfg.train[algo]), network, {"name": "none"}, obs_dim, action_dim,
        list(cfg.task_names), "cpu", int(cfg.seed),
    )  # fmt: skip
    return int(agent.parameter_counts()["total"])


def method_network(cfg: DictConfig, method: str) -> dict:
    """Network `method`'s section with its defaults for this task set and learner, as `network=<method>` gives."""
    from mtbench.config import _resolve_network, compose

    net = OmegaConf.create(OmegaConf.to_container(compose([f"network={method}", f"train={cfg.train.name}"]).network))
    _resolve_network(net, len(cfg.task_ids), cfg.suite, cfg.train.algo, cfg.train.name)
    return OmegaConf.to_container(net)


def widened(network: dict, width: int) -> dict:
    """The MLP section with every hidden layer of each part `width` wide (parts keep their depth; `match` dropped)."""
    out = {k: v for k, v in network.items() if k != "match"}
    for key in UNIT_KEYS:
        if out.get(key):
            out[key] = [width] * len(out[key])
    return out


def match_width(cfg: DictConfig, obs_dim: int, action_dim: int) -> tuple[int, int, int]:
    """(width, the widened MLP's count, the method's count): the largest width whose count is <= the method's."""
    method = cfg.network.match
    mlp = OmegaConf.to_container(cfg.network)
    target = total_parameters(cfg, method_network(cfg, method), obs_dim, action_dim)
    count = lambda w: total_parameters(cfg, widened(mlp, w), obs_dim, action_dim)  # noqa: E731
    if count(1) > target:
        raise ValueError(f"network.match={method}: even a width-1 MLP has more parameters than {method} ({target:,})")
    lo, hi = 1, 2
    while count(hi) <= target:  # the count grows with the width: double until past the target, then bisect
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= target else (lo, mid)
    return lo, count(lo), target


def apply_match(cfg: DictConfig, obs_dim: int, action_dim: int) -> None:
    """Set the MLP's units to the matched width (in `cfg`, so the run's config.yaml records them) and say so."""
    width, own, target = match_width(cfg, obs_dim, action_dim)
    with open_dict(cfg):
        for key, value in widened(OmegaConf.to_container(cfg.network), width).items():
            if key in UNIT_KEYS:
                cfg.network[key] = value
    print(f"network.match={cfg.network.match}: MLP width {width}, {own:,} parameters (the method: {target:,})")
