"""Parameter matching (paper 002): `network=mlp network.match=<method>` gives the largest uniform MLP width whose
actor + critic count does not exceed the method's, counted by building both (the next width up must exceed it)."""

import pytest

from mtbench.config import ConfigError, load_config
from mtbench.nets import MATCHABLE
from mtbench.scaling import match_width, total_parameters, widened
from mtbench.train import build_algorithm, build_env


def _matched(task: str, train: str, method: str):
    cfg = load_config([f"task={task}", f"train={train}", "sim_device=cpu", f"network.match={method}"])
    probe = build_env(cfg, task_counts=[1] * len(cfg.task_ids))
    return cfg, probe.obs_dim, probe.action_dim


def _check(task: str, train: str, method: str) -> None:
    cfg, obs_dim, action_dim = _matched(task, train, method)
    width, own, target = match_width(cfg, obs_dim, action_dim)
    mlp = dict(cfg.network)
    assert own == total_parameters(cfg, widened(mlp, width), obs_dim, action_dim) <= target
    assert total_parameters(cfg, widened(mlp, width + 1), obs_dim, action_dim) > target
    agent = build_algorithm(cfg, obs_dim, action_dim)  # what a run builds: the matched widths, recorded in cfg
    assert agent.parameter_counts()["total"] == own and list(cfg.network.critic_units) == [width] * 3


@pytest.mark.parametrize("method", MATCHABLE)
def test_sac_mlp_matches_each_method_on_mt10(method):
    _check("mt10", "sac", method)


@pytest.mark.slow  # about 1 min on 2 cores: MT50's networks are larger
@pytest.mark.parametrize("train", ["sac_mt50", "ppo_mt50"])
@pytest.mark.parametrize("method", MATCHABLE)
def test_mlp_matches_each_method_on_mt50(method, train):
    _check("mt50", train, method)


def test_match_is_checked_up_front():
    with pytest.raises(ConfigError, match="network.match='resnet' must be one of"):
        load_config(["network.match=resnet"])
