"""MT-GRPO through the runner: every network and scheme from the command line, exact resume, evaluation of a
checkpoint, and the proof that it learns (single-task reach from a fresh seed)."""

import json
import os
import random

import pytest
import torch
from cli_networks import SCHEMES, TASK_AWARE

from mtbench.train import run

# 8 envs x 5-step episodes x horizon 10: two whole episodes per env and rollout, 4 minibatches
SMALL = ["train=grpo", "task_id=[reach-v3,push-v3]", "num_envs=8", "train.grpo.horizon=10",
         "train.grpo.minibatch_size=20", "train.grpo.mini_epochs=2", "eval.episodes_per_task=1",
         "env.episode_length=5", "progress=false", "sim_device=cpu"]  # fmt: skip
NETS = {
    "mlp": ["network.actor_units=[16]"],
    "multihead": ["network.actor_units=[16]"],
    **TASK_AWARE,
}
# the default suite: every network with the plain mean, every scheme with the MLP and with PaCo (whose task vectors
# the schemes must leave to its own hooks); the full product is `slow`
CASES = [(n, "none") for n in sorted(NETS)] + [(n, s) for n in ("mlp", "paco") for s in SCHEMES[1:]]
FULL = [(n, s) for n in sorted(NETS) for s in SCHEMES]
PRODUCT = [pytest.param(*c, marks=pytest.mark.slow) if c not in CASES else c for c in FULL]


def _latest(run_dir):
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)


@pytest.mark.parametrize("network,scheme", PRODUCT)
def test_every_network_and_scheme_trains_grpo_from_the_command_line(tmp_path, network, scheme):
    run(SMALL + [f"network={network}", *NETS[network], f"scheme={scheme}", f"runs_dir={tmp_path}", "experiment=n",
                 "max_iterations=2"])  # fmt: skip
    ckpt = _latest(tmp_path / "n")
    cfg = ckpt["config"]
    assert cfg["train"]["algo"] == "grpo" and cfg["scheme"]["name"] == scheme
    assert cfg["scheme"].get("apply_to", "actor") == "actor"  # the only part GRPO has
    assert not any("critic" in k for k in ckpt["agent"]["net"])
    assert all(torch.isfinite(v).all() for v in ckpt["agent"]["net"].values())
    rows = [json.loads(line) for line in open(tmp_path / "n" / "metrics.jsonl")]
    assert len(rows) == 2 and all(r["loss/surrogate"] is not None for r in rows)


def test_stopped_and_resumed_grpo_run_equals_uninterrupted_run(tmp_path):
    common = SMALL + ["network.actor_units=[16]", f"runs_dir={tmp_path}", "seed=3", "train.grpo.advantage=episode",
                      "env.random_init_progress=false"]  # fmt: skip
    run(common + ["experiment=straight", "max_iterations=4"])
    run(common + ["experiment=split", "max_iterations=2"])
    run(common + [f"checkpoint={tmp_path}/split/checkpoints/latest.pt", "max_iterations=4"])
    a, b = _latest(tmp_path / "straight"), _latest(tmp_path / "split")
    assert a["iteration"] == b["iteration"] == 4
    for k in a["agent"]["net"]:
        torch.testing.assert_close(a["agent"]["net"][k], b["agent"]["net"][k], rtol=0, atol=0)
    assert a["agent"]["fresh"].all()  # aligned 5-step episodes: every rollout ends at an episode's end
    rows = [json.loads(line) for line in open(tmp_path / "straight" / "metrics.jsonl")]
    # the first rollout's first episode began before anything was observed: only its second one is scored
    assert rows[0]["adv/scored"] == 0.5 and rows[1]["adv/scored"] == 1.0


def test_grpo_test_mode_evaluates_a_checkpoint(tmp_path):
    base = SMALL + ["network.actor_units=[16]", f"runs_dir={tmp_path}"]
    run(base + ["experiment=t", "max_iterations=1"])
    results = run(base + [f"checkpoint={tmp_path}/t/checkpoints/latest.pt", "test=True", "eval.episodes_per_task=2"])
    assert [r.name for r in results] == ["reach-v3", "push-v3"] and all(r.episodes == 2 for r in results)


@pytest.mark.slow  # about 1.5-2.5 min of a core under xdist: `make test-slow` (PPO's runs by default)
def test_grpo_reach_learns_from_a_fresh_seed(tmp_path):
    """>= 80 % deterministic success on 50 fresh goals after 384k frames (10 rollouts of 256 envs x 150 steps,
    about 1.2 min on 2 cores), with upstream's reward-to-go advantages and MT10 network."""
    seed = int(os.environ.get("MTBENCH_TEST_SEED", 0)) or random.SystemRandom().randrange(1, 1 << 16)
    results = run(["train=grpo", "task=reach-v3", "num_envs=256", "train.grpo.minibatch_size=9600",
                   "max_iterations=10", f"seed={seed}", f"runs_dir={tmp_path}", "experiment=reach", "progress=false",
                   "sim_device=cpu"])  # fmt: skip
    assert results[0].episodes == 50
    assert results[0].success >= 0.8, f"seed {seed}: success {results[0].success:.2f}"
