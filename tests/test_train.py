"""The training entry point: configuration errors before any physics, checkpoints, exact resume, test
mode, and the proof that it learns (single-task reach from a fresh seed)."""

import json
import os
import random

import pytest
import torch

from mtbench.config import ConfigError, compose, resolve_config
from mtbench.errors import UserError
from mtbench.train import run

SMALL = ["task_id=[reach-v3,push-v3]", "num_envs=8", "train.ppo.horizon=8", "train.ppo.minibatch_size=16",
         "train.ppo.mini_epochs=2", "eval.episodes_per_task=2", "progress=false", "sim_device=cpu"]  # fmt: skip


def _cfg(*overrides):
    return resolve_config(compose(list(overrides)))


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["num_envs_typo=3"], "unknown key 'num_envs_typo'"),
        (["train.ppo.horizn=3"], "unknown key 'train.ppo.horizn'; valid keys here: bound"),
        (["+foo=3"], "would be ignored"),
        (["task=mt10", "num_envs=100", "task_counts=[10,10]"], "task_counts"),
        (["task=reach-v4"], "unknown task"),
        (["task=reach", "num_envs=64", "train.ppo.minibatch_size=1000"], "must divide"),
        (["test=True"], "needs checkpoint"),
        (["record_videos=True"], "test=True"),
        (["sim_device=cuda:0"] if not torch.cuda.is_available() else ["task=mt10", "num_envs=5"], "CUDA|fewer"),
        (["network=resnet"], "unknown network 'resnet'; available: care"),
        (["network=moore", "network.n_expert=3"], "'network.n_expert'; valid keys here: agg_activation, by_suite"),
    ],
)
def test_bad_configs_fail_with_a_clear_message(overrides, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(*overrides)


def test_cpu_defaults_and_mt50_column():
    cfg = _cfg("sim_device=cpu")
    assert cfg.num_envs == 500 and cfg.train.ppo.minibatch_size == 4000 and cfg.max_minutes == 60
    assert cfg.task_counts == [50] * 10
    assert _cfg("task=mt50", "sim_device=cpu").train.name == "ppo_mt50"


def _params(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)
    return ckpt["agent"]["net"], ckpt


def test_stopped_and_resumed_run_equals_uninterrupted_run(tmp_path):
    common = SMALL + [f"runs_dir={tmp_path}", "seed=3"]
    run(common + ["experiment=straight", "max_iterations=4"])
    run(common + ["experiment=split", "max_iterations=2"])
    run(common + [f"checkpoint={tmp_path}/split/checkpoints/latest.pt", "max_iterations=4"])
    a, ckpt_a = _params(tmp_path / "straight")
    b, ckpt_b = _params(tmp_path / "split")
    assert ckpt_a["iteration"] == ckpt_b["iteration"] == 4 and ckpt_a["frames"] == ckpt_b["frames"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    rows = [json.loads(line) for line in open(tmp_path / "split" / "metrics.jsonl")]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    # run directory contents
    d = tmp_path / "straight"
    for name in ("config.yaml", "metrics.csv", "eval.md", "eval.json", "curve_success.png", "curve_return.png"):
        assert (d / name).is_file(), name
    assert any((d / "tb").iterdir())
    assert not [p for p in (d / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_checkpoint_for_other_tasks_is_rejected_before_training(tmp_path):
    run(SMALL + [f"runs_dir={tmp_path}", "experiment=a", "max_iterations=1"])
    ckpt = f"{tmp_path}/a/checkpoints/latest.pt"
    with pytest.raises(ConfigError, match=r"task_id \(run: \['reach-v3', 'push-v3'\], given: \['reach-v3', 'pick"):
        run(SMALL[1:] + ["task_id=[reach-v3,pick-place-v3]", f"runs_dir={tmp_path}", f"checkpoint={ckpt}", "test=True"])
    with pytest.raises(UserError, match="does not exist"):
        run(SMALL + [f"checkpoint={tmp_path}/nope.pt", "test=True"])


def test_test_mode_writes_per_task_results(tmp_path):
    run(SMALL + [f"runs_dir={tmp_path}", "experiment=a", "max_iterations=1"])
    results = run(SMALL + [f"checkpoint={tmp_path}/a/checkpoints/latest.pt", "test=True", "eval.episodes_per_task=3"])
    assert [r.name for r in results] == ["reach-v3", "push-v3"] and all(r.episodes == 3 for r in results)
    saved = json.loads((tmp_path / "a" / "test_latest.json").read_text())
    assert [r["name"] for r in saved] == ["reach-v3", "push-v3"]


def test_reach_learns_from_a_fresh_seed(tmp_path):
    """>= 80 % deterministic success on 50 fresh goals after about 300k frames (~2 min on 2 cores)."""
    seed = int(os.environ.get("MTBENCH_TEST_SEED", 0)) or random.SystemRandom().randrange(1, 1 << 16)
    results = run(
        ["task=reach-v3", "num_envs=256", "train.ppo.minibatch_size=2048", "max_iterations=40", f"seed={seed}",
         f"runs_dir={tmp_path}", "experiment=reach", "progress=false", "sim_device=cpu"]
    )  # fmt: skip
    assert results[0].episodes == 50
    assert results[0].success >= 0.8, f"seed {seed}: success {results[0].success:.2f}"


def test_report_over_two_seeds(tmp_path):
    from mtbench.report import main as report

    for seed in (1, 2):
        run(SMALL + [f"runs_dir={tmp_path}", f"experiment=s{seed}", f"seed={seed}", "max_iterations=1"])
    report([f"out={tmp_path}", str(tmp_path / "s1"), str(tmp_path / "s2")])
    md = (tmp_path / "report.md").read_text()
    assert "| ppo | 2 tasks | 2 |" in md and (tmp_path / "report.png").is_file()


@pytest.mark.parametrize(
    "scheme", ["scheme=pcgrad", "scheme=famo", "scheme=cagrad", "scheme=pcgrad scheme.apply_to=both"]
)
def test_schemes_train_from_the_command_line(tmp_path, scheme):
    run(SMALL + scheme.split() + [f"runs_dir={tmp_path}", "experiment=s", "max_iterations=2"])
    ckpt = torch.load(tmp_path / "s" / "checkpoints" / "latest.pt", weights_only=False)
    assert ckpt["config"]["scheme"]["name"] == scheme.split()[0].split("=")[1]
    assert all(torch.isfinite(v).all() for v in ckpt["agent"]["net"].values())


def test_network_sizes_follow_the_task_set():
    """Table 3's two columns: MOORE 4/6 experts and PaCo 5/20 parameter sets for MT10/MT50; MT25 takes MT50's."""
    assert _cfg("network=moore").network.n_experts == 4
    assert _cfg("network=moore", "task=mt50").network.n_experts == 6
    assert _cfg("network=moore_mh", "task=mt25").network.n_experts == 6
    assert _cfg("network=moore", "network.n_experts=2").network.n_experts == 2
    assert _cfg("network=paco").network.K == 5 and _cfg("network=paco", "task=mt50").network.K == 20
    assert "by_task_set" not in _cfg("network=paco").network and "by_suite" not in _cfg("network=paco").network
    assert _cfg("network=care_mh").network.multihead is True
    mt = _cfg("network=moore", "task=mt50").network
    assert (mt.num_layers, mt.hidden_dim, list(mt.task_encoder_units), mt.agg_activation) == (3, 400, [256], "tanh")


def test_network_sizes_for_parkour_follow_table_7():
    """Table 7 (parkour) replaces Table 3's sizes, whatever the number of terrain types; the command line wins."""
    moore = _cfg("task=parkour_hard", "network=moore").network
    assert (moore.n_experts, moore.num_layers, moore.hidden_dim) == (2, 2, 256)
    assert list(moore.task_encoder_units) == [128] and moore.agg_activation == "linear" and moore.init_log_std == 1.0
    assert _cfg("task=parkour_hard", "network=moore", "network.num_layers=3").network.num_layers == 3
    assert _cfg("task=parkour_hard", "network=moore_mh").network.n_experts == 2
    assert _cfg("task=parkour_hard", "network=paco").network.K == 5  # 21 types would take MT50's 20
    soft = _cfg("task=parkour_easy", "network=soft_modularization").network
    assert (soft.num_layers, list(soft.task_units), list(soft.state_units)) == (2, [128], [256, 256])
    assert _cfg("network=soft_modularization").network.num_layers == 4  # Meta-World keeps Table 3


@pytest.mark.parametrize("network", ["multihead", "care_mh", "moore", "paco", "soft_modularization"])
def test_networks_train_from_the_command_line(tmp_path, network):
    run(SMALL + [f"network={network}", f"runs_dir={tmp_path}", "experiment=n", "max_iterations=2"])
    ckpt = torch.load(tmp_path / "n" / "checkpoints" / "latest.pt", weights_only=False)
    assert ckpt["network"]["name"] == network.removesuffix("_mh")
    assert all(torch.isfinite(v).all() for v in ckpt["agent"]["net"].values())
    with pytest.raises(ConfigError, match=r"network \(run: \w+, given: mlp\).*pretrained="):  # another network
        run(SMALL + [f"checkpoint={tmp_path}/n/checkpoints/latest.pt", "network=mlp"])


def test_gradient_conflict_logging_and_plot(tmp_path):
    run(SMALL + ["train.ppo.log_grad_conflict=true", f"runs_dir={tmp_path}", "experiment=g", "max_iterations=2"])
    rows = [json.loads(line) for line in open(tmp_path / "g" / "metrics.jsonl")]
    assert -1.0 <= rows[-1]["grad_cos_min/critic"] <= rows[-1]["grad_cos_mean/critic"] <= 1.0
    assert (tmp_path / "g" / "grad_conflict.png").is_file()


def test_test_mode_records_videos(tmp_path):
    run(SMALL + [f"runs_dir={tmp_path}", "experiment=v", "max_iterations=1", "env.episode_length=20"])
    ckpt = f"{tmp_path}/v/checkpoints/latest.pt"
    run(SMALL + [f"checkpoint={ckpt}", "test=True", "record_videos=True", "env.episode_length=20"])
    videos = tmp_path / "v" / "videos"
    assert sorted(p.name for p in videos.iterdir()) == ["contact_sheet.png", "push-v3.mp4", "reach-v3.mp4"]
    assert all(p.stat().st_size > 1000 for p in videos.iterdir())


def test_parkour_flat_pretraining_then_multi_terrain_from_its_weights(tmp_path):
    """The Go1 recipe: parkour_* picks Table 7's settings; a flat-ground checkpoint seeds a multi-terrain run
    (weights matched by name and shape, as upstream's strict=False loading)."""
    cfg = _cfg("task=parkour_flat", "sim_device=cpu")
    assert cfg.suite == "parkour" and cfg.train.name == "ppo_go1" and cfg.network.actor_units == [512, 256, 128]
    assert cfg.train.ppo.normalize_input is False and cfg.network.init_log_std == 1.0
    tiny = ["train.ppo.horizon=4", "train.ppo.mini_epochs=1", "eval.episodes_per_task=1", "parkour.episode_length=20",
            "progress=false", "sim_device=cpu", f"runs_dir={tmp_path}", "max_iterations=1"]  # fmt: skip
    run(["task=parkour_flat", "num_envs=2", "train.ppo.minibatch_size=8", "experiment=flat", *tiny])
    flat = torch.load(tmp_path / "flat" / "checkpoints" / "latest.pt", weights_only=False)["agent"]["net"]
    run(["task_id=[0,20]", "suite=parkour", "num_envs=2", "train.ppo.minibatch_size=8", "experiment=multi",
         f"pretrained={tmp_path}/flat/checkpoints/latest.pt", "max_iterations=0", *tiny[:-1]])  # fmt: skip
    multi = torch.load(tmp_path / "multi" / "checkpoints" / "latest.pt", weights_only=False)
    assert multi["task_names"] == ["jump_on_and_off_box", "flat"]
    for k, v in flat.items():
        torch.testing.assert_close(multi["agent"]["net"][k], v)  # 0 iterations: exactly the pre-trained weights
    with pytest.raises(ConfigError, match="parkour.onehot=tasks"):
        _cfg("task_id=[0,20]", "suite=parkour", "network=moore", "sim_device=cpu")
