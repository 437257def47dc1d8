"""MT-PQN through the runner: every network and scheme from the command line, a stopped and resumed run equal to
an uninterrupted one, evaluation of a checkpoint, parameter counts, and the proof that it learns (single-task reach
from a fresh seed)."""

import json
import os
import random

import pytest
import torch
from cli_networks import SCHEMES, TASK_AWARE

from mtbench.algos.pqn import PQN
from mtbench.train import run

# 2 steps of 8 envs per iteration, 2 passes of 2 minibatches of 8: every task in every minibatch (FAMO needs it)
SMALL = ["train=pqn", "task_id=[reach-v3,push-v3]", "num_envs=8", "train.pqn.horizon=2", "train.pqn.mini_epochs=2",
         "train.pqn.num_minibatches=2", "eval.episodes_per_task=1", "env.episode_length=5", "progress=false",
         "sim_device=cpu"]  # fmt: skip
NETS = {
    "mlp": ["network.critic_units=[16,16]"],
    "multihead": ["network.critic_units=[16]"],
    **TASK_AWARE,
}


def _latest(run_dir):
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("network", sorted(NETS))
def test_every_network_and_scheme_trains_pqn_from_the_command_line(tmp_path, network, scheme):
    run(SMALL + [f"network={network}", *NETS[network], f"scheme={scheme}", f"runs_dir={tmp_path}", "experiment=n",
                 "max_iterations=2"])  # fmt: skip
    ckpt = _latest(tmp_path / "n")
    assert ckpt["config"]["train"]["algo"] == "pqn" and ckpt["config"]["scheme"]["name"] == scheme
    steps = {int(s["step"]) for s in ckpt["agent"]["optimizer"]["state"].values()}
    assert steps == {2 * 2 * 2}  # 2 iterations x 2 passes x 2 minibatches: it learned
    assert all(torch.isfinite(v).all() for v in ckpt["agent"]["net"].values())
    rows = [json.loads(line) for line in open(tmp_path / "n" / "metrics.jsonl")]
    assert all(r["loss/q"] is not None and r["epsilon"] is not None for r in rows)


class Stop(Exception):
    pass


def test_stopped_and_resumed_pqn_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    """The run is stopped during its 4th iteration (its checkpoint is the 3rd's) and resumed with the same length,
    so ε and the learning rate follow the same schedule; input normalisation on, so its statistics are compared too."""
    common = SMALL + ["network.critic_units=[16,16]", "train.pqn.normalize_input=true", f"runs_dir={tmp_path}",
                      "seed=3", "save_frequency=1", "max_minutes=1000", "max_iterations=6"]  # fmt: skip
    run(common + ["experiment=straight"])
    real, calls = PQN.update, []

    def update_then_stop(self):
        if len(calls) == 3:
            raise Stop
        calls.append(1)
        return real(self)

    monkeypatch.setattr(PQN, "update", update_then_stop)
    with pytest.raises(Stop):
        run(common + ["experiment=split"])
    monkeypatch.undo()
    assert _latest(tmp_path / "split")["iteration"] == 3
    run(common + [f"checkpoint={tmp_path}/split/checkpoints/latest.pt"])
    a, b = _latest(tmp_path / "straight"), _latest(tmp_path / "split")
    assert a["iteration"] == b["iteration"] == 6 and a["agent"]["progress"] == b["agent"]["progress"] == 5 / 6
    for part in ("net", "obs_norm"):
        for k in a["agent"][part]:
            torch.testing.assert_close(a["agent"][part][k], b["agent"][part][k], rtol=0, atol=0)
    for i, state in a["agent"]["optimizer"]["state"].items():
        for k, v in state.items():
            torch.testing.assert_close(v, b["agent"]["optimizer"]["state"][i][k], rtol=0, atol=0)


def test_pqn_test_mode_evaluates_a_checkpoint_and_params_counts_the_q_network(tmp_path, capsys):
    base = SMALL + ["network.critic_units=[16,16]", f"runs_dir={tmp_path}"]
    run(base + ["experiment=t", "max_iterations=1"])
    results = run(base + [f"checkpoint={tmp_path}/t/checkpoints/latest.pt", "test=True", "eval.episodes_per_task=2"])
    assert [r.name for r in results] == ["reach-v3", "push-v3"] and all(r.episodes == 2 for r in results)
    from mtbench.cli import params

    capsys.readouterr()
    params(["train=pqn", "task_id=[reach-v3,push-v3]", "network.critic_units=[16,16]"])
    w, n_in, out = 16, 39 + 2, 4 * 3
    total = (n_in * w + w) + 2 * w + 2 * (w * w + w) + 4 * w + (w * out + out)
    assert f"pqn network mlp for 2 tasks: total {total:,}" in capsys.readouterr().out


@pytest.mark.slow  # about 1.5-2.5 min of a core under xdist: `make test-slow` (PPO's runs by default)
def test_pqn_reach_learns_from_a_fresh_seed(tmp_path):
    """>= 80 % deterministic success on 50 fresh goals after 205k frames (67-85 s on 2 cores; seeds 1-7: 0.98,
    1.0, 1.0, 1.0, 0.98, 1.0, 0.86). Table 5's settings learn far too slowly for that budget, so the test changes
    them, each for its reason: 128 envs x 100 iterations of 16 steps (the budget); 50-step episodes (reach needs
    about 30 bang-off-bang steps, and shorter episodes give more starts); γ 0.9 (with 0.99 the values, hundreds of
    rewards deep, were still climbing after 300 iterations and nothing succeeded); per-task input normalisation
    (without it 0 % here: the goal is centimetres in the raw positions); lr 1e-3 held constant and ε decaying
    over the whole run (annealing the lr to 0 over a run this short left 38-48 %)."""
    seed = int(os.environ.get("MTBENCH_TEST_SEED", 0)) or random.SystemRandom().randrange(1, 1 << 16)
    results = run(["train=pqn", "task=reach-v3", "num_envs=128", "max_iterations=100", "env.episode_length=50",
                   "train.pqn.gamma=0.9", "train.pqn.normalize_input=true", "train.pqn.lr=1e-3",
                   "train.pqn.anneal_lr=false", "train.pqn.exploration_fraction=1.0", f"seed={seed}",
                   f"runs_dir={tmp_path}", "experiment=reach", "progress=false", "sim_device=cpu"])  # fmt: skip
    assert results[0].episodes == 50
    assert results[0].success >= 0.8, f"seed {seed}: success {results[0].success:.2f}"
