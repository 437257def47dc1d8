"""Plasticity metrics (paper 002): dormant shares and srank against numpy computations written from their
definitions, and the runner logging them for PPO and SAC."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from mtbench.config import ConfigError
from mtbench.nets.plasticity import DORMANT_TAUS, dormant_shares, hidden_activations, plasticity_metrics, srank
from mtbench.train import run


def _net_with_dead_units() -> nn.Sequential:
    """Two ReLU layers; units 1 and 3 of the first and unit 0 of the second never fire (zero weights, bias < 0),
    unit 2 of the first fires weakly (small weights) beside unit 0's strong one."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 5), nn.ReLU())
    with torch.no_grad():
        for layer, dead in ((net[0], (1, 3)), (net[2], (0,))):
            layer.weight[list(dead)] = 0.0
            layer.bias[list(dead)] = -1.0
        net[0].weight[2] *= 0.01
        net[0].bias[2] = 0.0
        net[0].bias[0] = 3.0  # a unit that always fires strongly, so the weak one scores well under 0.1
    return net


def _numpy_dormant(acts: list[np.ndarray], tau: float) -> tuple[list[float], float]:
    per_layer, dead, total = [], 0, 0
    for a in acts:
        s = np.abs(a).mean(0)
        score = s / s.mean()
        d = score <= tau
        per_layer.append(d.mean())
        dead, total = dead + d.sum(), total + d.size
    return per_layer, dead / total


def test_dormant_shares_equal_numpy_on_known_dead_units():
    net = _net_with_dead_units()
    x = torch.randn(256, 3, generator=torch.Generator().manual_seed(1))
    acts = hidden_activations({"net": net}, lambda: net(x))["net"]
    assert [a.shape for a in acts] == [(256, 4), (256, 5)]
    np_acts = [a.numpy().astype(np.float64) for a in acts]
    for tau in (*DORMANT_TAUS, 0.5):
        per_layer, total = dormant_shares(acts, tau)
        ref_layer, ref_total = _numpy_dormant(np_acts, tau)
        assert per_layer == pytest.approx(ref_layer) and total == pytest.approx(ref_total)
    assert dormant_shares(acts, 0.0)[0][0] == 0.5  # the two dead units of 4; the weak one is not dead at tau 0
    assert dormant_shares(acts, 0.1)[0][0] == 0.75  # ... but is at tau 0.1


@pytest.mark.parametrize("rank", [1, 3, 8])
def test_srank_equals_numpy_svd(rank):
    rng = np.random.default_rng(rank)
    f = rng.standard_normal((200, rank)) @ rng.standard_normal((rank, 16)) + 1e-4 * rng.standard_normal((200, 16))
    s = np.linalg.svd(f, compute_uv=False)
    ref = int(np.argmax(np.cumsum(s) / s.sum() >= 0.99)) + 1
    assert srank(torch.tensor(f)) == ref and ref <= rank + 1


def test_metrics_name_parts_and_norms():
    net = _net_with_dead_units()
    net(torch.randn(8, 3)).sum().backward()
    out = plasticity_metrics({"critic": net}, lambda: net(torch.randn(64, 3)))
    assert out["param_norm/critic"] == pytest.approx(float(torch.sqrt(sum((p**2).sum() for p in net.parameters()))))
    assert out["grad_norm_last/critic"] > 0 and out["dormant_0/critic/layer0"] == 0.5 and "srank/critic" in out
    with pytest.raises(ValueError, match="no activation module"):
        plasticity_metrics({"actor": nn.Linear(3, 2)}, lambda: None)


BASE = ["task_id=[reach-v3,push-v3]", "num_envs=8", "eval.episodes_per_task=1", "progress=false", "sim_device=cpu"]


@pytest.mark.parametrize("algo", [
    ["train.ppo.horizon=8", "train.ppo.minibatch_size=16", "train.ppo.mini_epochs=1"],
    ["train=sac", "train.sac.num_warmup_steps=8", "train.sac.batch_size=16", "network.actor_units=[16]",
     "network.critic_units=[16,16]"],
])  # fmt: skip
def test_the_runner_logs_them_every_n_iterations(tmp_path, algo):
    run(BASE + algo + [f"runs_dir={tmp_path}", "experiment=p", "max_iterations=4", "metrics_every=2"])
    rows = [json.loads(line) for line in open(tmp_path / "p" / "metrics.jsonl")]
    assert ["srank/critic" in r for r in rows] == [False, True, False, True]
    r = rows[3]
    assert 0 <= r["dormant_0.025/actor"] <= 1 and r["srank/critic"] >= 1 and r["time/plasticity"] > 0
    assert r["param_norm/critic"] > 0 and (tmp_path / "p" / "plasticity.png").is_file()


def test_networks_without_separate_parts_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="metrics_every=1.*network=paco"):
        run(BASE + ["network=paco", f"runs_dir={tmp_path}", "max_iterations=1", "metrics_every=1"])
