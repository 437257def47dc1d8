"""`mtbench report`: its IQM, intervals and probability of improvement are rliable's on the same score matrices (the
test fails if the report drifts from the library), and the IQM is the trimmed mean scipy computes."""

import json

import numpy as np
import pytest
import yaml
from rliable import library as rly
from rliable import metrics
from scipy.stats import trim_mean

import mtbench.report as report_module
from mtbench.report import BOOTSTRAP_REPS, SEED, aggregate, improvement, improvements, load_run
from mtbench.report import main as report

TASKS = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3"]


def _fake_run(root, name, seed, success, scheme="none"):
    d = root / name
    d.mkdir()
    cfg = {"train": {"name": "ppo"}, "network": {"name": "mlp"}, "scheme": {"name": scheme}, "task": "custom",
           "task_id": TASKS, "task_ids": [40, 38, 31, 16], "seed": seed}  # fmt: skip
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    rows = [
        {"name": t, "episodes": 50, "success": float(s), "return": 0.0, "length": 150.0} for t, s in zip(TASKS, success)
    ]
    (d / "eval.json").write_text(json.dumps(rows))
    return d


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(3)
    plain = rng.random((5, len(TASKS))) * 0.6
    pcgrad = np.clip(plain + 0.3 + 0.1 * rng.standard_normal(plain.shape), 0, 1)
    dirs = [_fake_run(tmp_path, f"v{i}", i, s) for i, s in enumerate(plain)]
    dirs += [_fake_run(tmp_path, f"p{i}", i, s, "pcgrad") for i, s in enumerate(pcgrad)]
    return dirs, plain, pcgrad


def test_iqm_and_intervals_are_rliables(runs):
    dirs, plain, pcgrad = runs
    rows = {r["method"]: r for r in aggregate([load_run(d) for d in dirs])}
    for method, scores in (("ppo", plain), ("ppo+pcgrad", pcgrad)):
        r = rows[method]
        assert r["iqm"] == pytest.approx(trim_mean(scores.reshape(-1), 0.25))  # independent of rliable
        np.random.seed(SEED)  # rliable's stratified bootstrap draws from numpy's global generator
        point, ci = rly.get_interval_estimates(
            {"m": scores},
            lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]),
            reps=BOOTSTRAP_REPS,
        )
        assert r["iqm"] == pytest.approx(point["m"][0])
        assert r["ci"] == pytest.approx((ci["m"][0, 0], ci["m"][1, 0]))
        assert r["mean_ci"] == pytest.approx((ci["m"][0, 1], ci["m"][1, 1]))
        assert r["ci"][0] < r["iqm"] < r["ci"][1]


def test_probability_of_improvement_is_rliables(runs):
    dirs, plain, pcgrad = runs
    pairs = improvements(aggregate([load_run(d) for d in dirs]))
    assert [(p["x"], p["y"]) for p in pairs] == [("ppo+pcgrad", "ppo")]  # each method against its plain learner
    assert pairs[0]["p"] == pytest.approx(metrics.probability_of_improvement(pcgrad, plain)) and pairs[0]["p"] > 0.5
    np.random.seed(SEED)
    _, ci = rly.get_interval_estimates(
        {"xy": [pcgrad, plain]}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps=100
    )
    assert improvement(pcgrad, plain, reps=100)[1:] == pytest.approx((ci["xy"][0, 0], ci["xy"][1, 0]))


def test_report_writes_the_table_and_the_figure(runs, tmp_path, monkeypatch):
    dirs, _, _ = runs
    monkeypatch.setattr(report_module, "POI_REPS", 50)
    monkeypatch.setattr(report_module, "BOOTSTRAP_REPS", 200)
    report([f"out={tmp_path / 'out'}", *map(str, dirs)])
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| ppo+pcgrad | 4 tasks | 5 |" in md and "P(X > Y)" in md and (tmp_path / "out" / "report.png").is_file()


def test_the_scaling_study_figures(tmp_path, monkeypatch):
    """Runs of one learner at several actor and critic widths: told apart by width in the table, and the three
    figures of paper 002 drawn from their params.json, config widths and last dormant shares."""
    monkeypatch.setattr(report_module, "BOOTSTRAP_REPS", 200)
    dirs = []
    for i, (a, c) in enumerate([(64, 64), (64, 256), (256, 64), (256, 256)]):
        d = _fake_run(tmp_path, f"w{i}", 1, [0.1 * i, 0.2, 0.3, 0.4])
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        cfg["network"].update(actor_units=[a] * 3, critic_units=[c] * 3)
        (d / "config.yaml").write_text(yaml.safe_dump(cfg))
        (d / "params.json").write_text(json.dumps({"total": 1000 * a + 3000 * c}))
        (d / "metrics.jsonl").write_text(json.dumps({"frames": 1, "dormant_0.025/critic": 0.01 * c / 64}) + "\n")
        dirs.append(d)
    report([f"out={tmp_path / 'out'}", *map(str, dirs)])
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| ppo (actor 64x3, critic 256x3) | 4 tasks | 1 |" in md
    for name in ("scaling_params.png", "scaling_widths_ppo_4-tasks.png", "scaling_dormant.png"):
        assert (tmp_path / "out" / name).is_file(), name
