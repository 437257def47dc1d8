"""`mtbench train -m`: Hydra's multirun expands the sweep, every job is checked before any trains, one run
directory per job, and `mtbench report` aggregates them."""

import pytest

import mtbench.train
from mtbench.config import ConfigError
from mtbench.errors import UserError
from mtbench.report import main as report
from mtbench.sweep import expand, multirun

TINY = ["task_id=[reach-v3,push-v3]", "num_envs=8", "train.ppo.horizon=8", "train.ppo.minibatch_size=16",
        "max_iterations=1", "eval.episodes_per_task=1", "progress=false", "sim_device=cpu"]  # fmt: skip


def test_hydra_expands_the_sweep():
    jobs = expand(["seed=1,2", "network.critic_units=[64],[256]", "task_id=[reach-v3,push-v3]"])
    assert len(jobs) == 4 and jobs[0] == ["seed=1", "network.critic_units=[64]", "task_id=[reach-v3,push-v3]"]
    assert expand(["seed=range(0,3)"]) == [["seed=0"], ["seed=1"], ["seed=2"]]


def test_two_jobs_two_run_directories_and_a_report(tmp_path):
    dirs = multirun(["-m", *TINY, f"runs_dir={tmp_path}", "seed=1,2"])
    assert [d.name for d in dirs] == ["job0", "job1"] and dirs[0].parent.parent == tmp_path / "multirun"
    assert all((d / "eval.json").is_file() and (d / "checkpoints" / "latest.pt").is_file() for d in dirs)
    assert (dirs[0].parent / "multirun.yaml").is_file()  # Hydra's record of the sweep
    report([f"out={tmp_path / 'report'}", *map(str, dirs)])
    assert "| ppo | 2 tasks | 2 |" in (tmp_path / "report" / "report.md").read_text()


def test_a_bad_job_stops_the_sweep_before_anything_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(mtbench.train, "train", lambda cfg: pytest.fail("a job trained"))
    with pytest.raises(UserError, match=r"job 1 \(.*train.ppo.horizon=0\): train.ppo.horizon=0 must be an integer"):
        multirun(["-m", *TINY[:2], *TINY[3:], f"runs_dir={tmp_path}", "train.ppo.horizon=8,0"])
    with pytest.raises(ConfigError, match="cannot parse the sweep"):
        multirun(["-m", "seed=1,,2"])
    assert not (tmp_path / "multirun").exists()


def test_each_job_gets_the_groups_its_own_task_implies(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(mtbench.train, "train", lambda cfg: seen.append((cfg.task, cfg.train.name)))
    multirun(["-m", "task=mt10,mt50", "sim_device=cpu", f"runs_dir={tmp_path}"])
    assert seen == [("mt10", "ppo"), ("mt50", "ppo_mt50")]
