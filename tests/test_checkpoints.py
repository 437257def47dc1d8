"""Checkpoints that cannot be lost or misread (issue #18, items 2 and 3): resume from the saved config with only
the documented keys changeable, `weights_only` loading with one-line errors naming the file, and writes that
leave the previous checkpoint's bytes untouched when they fail half-way."""

import errno
import os
import pickle

import pytest
import torch
import yaml

import mtbench
from mtbench.checkpoint import load_checkpoint_file, save_checkpoint
from mtbench.config import ConfigError, load_config
from mtbench.errors import RunStopped, UserError
from mtbench.train import main, run

SMALL = ["task_id=[reach-v3,push-v3]", "num_envs=12", "train.ppo.horizon=8", "train.ppo.minibatch_size=16",
         "train.ppo.mini_epochs=2", "eval.episodes_per_task=1", "progress=false", "sim_device=cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short PPO run with non-default num_envs, horizon and seed: its directory and latest checkpoint."""
    root = tmp_path_factory.mktemp("runs")
    run(SMALL + [f"runs_dir={root}", "experiment=r", "max_iterations=2", "seed=5"])
    return root / "r", root / "r" / "checkpoints" / "latest.pt"


def _copy_run(ckpt, to) -> tuple:
    """A copy of a run's latest checkpoint in its own checkpoints directory: (that directory, its bytes)."""
    copy = to / "checkpoints"
    copy.mkdir(parents=True)
    (copy / "latest.pt").write_bytes(ckpt.read_bytes())
    return copy, (copy / "latest.pt").read_bytes()


def _no_env(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("an env was built before the error")

    monkeypatch.setattr(mtbench, "make", refuse)


def test_checkpoint_alone_resumes_the_run_as_configured(trained, tmp_path):
    run_dir, ckpt = trained
    cfg = load_config([f"checkpoint={ckpt}", "max_iterations=3"])
    assert cfg.num_envs == 12 and cfg.seed == 5 and cfg.train.ppo.horizon == 8 and cfg.max_iterations == 3
    assert cfg.experiment == "r" and cfg.runs_dir == str(run_dir.parent)
    # a copy of the run resumed with the checkpoint alone continues it (the num_envs=100 case died here)
    copy, _ = _copy_run(ckpt, tmp_path / "copy")
    run([f"checkpoint={copy}/latest.pt", "max_iterations=3"])
    assert torch.load(copy / "latest.pt", weights_only=True)["iteration"] == 3


def test_resume_may_change_the_listed_settings(trained):
    _, ckpt = trained
    cfg = load_config([f"checkpoint={ckpt}", "train.ppo.mini_epochs=3", "eval.episodes_per_task=4", "save_frequency=7"])
    assert cfg.train.ppo.mini_epochs == 3 and cfg.eval.episodes_per_task == 4 and cfg.save_frequency == 7
    assert cfg.train.ppo.horizon == 8  # the rest is the run's


@pytest.mark.parametrize(
    "given,match",
    [
        (["scheme=famo"], r"scheme \(run: none, given: famo\)"),  # was: KeyError 'w' after building everything
        (["train=sac"], r"train \(run: ppo, given: sac\)"),
        (["train.ppo.lr=0.01"], r"train.ppo.lr \(run: 0.0005, given: 0.01\)"),
        (["num_envs=8", "seed=6"], r"num_envs \(run: 12, given: 8\); seed \(run: 5, given: 6\)"),
        (["network=moore"], r"network \(run: mlp, given: moore\)"),
        (["task_id=[reach-v3]"], r"task_id \(run: \['reach-v3', 'push-v3'\], given: \['reach-v3'\]\)"),
    ],
)
def test_resume_with_other_settings_is_refused_naming_each_key(trained, monkeypatch, given, match):
    _, ckpt = trained
    _no_env(monkeypatch)
    with pytest.raises(ConfigError, match=match) as e:
        load_config([f"checkpoint={ckpt}", *given])
    assert "pretrained=" in str(e.value) and "\n" not in str(e.value)


def test_the_same_values_given_again_are_accepted(trained):
    _, ckpt = trained
    assert load_config([*SMALL, "seed=5", f"checkpoint={ckpt}"]).num_envs == 12


def test_test_mode_may_change_devices_and_evaluation(trained):
    _, ckpt = trained
    cfg = load_config([f"checkpoint={ckpt}", "test=True", "num_envs=2", "backend=cpu", "env.episode_length=20"])
    assert cfg.test and cfg.env.episode_length == 20 and cfg.train.ppo.horizon == 8
    with pytest.raises(ConfigError, match="num_envs"):
        load_config([f"checkpoint={ckpt}", "num_envs=2"])  # without test=True, a resume may not


def _bad_files(tmp_path, ckpt):
    good = ckpt.read_bytes()
    files = {
        "truncated": good[: len(good) // 2],
        "corrupted": bytes(b ^ 0x5A for b in good[:4096]) + good[4096:],
        "not a checkpoint": b"hello\n",
    }
    for name, data in files.items():
        (tmp_path / f"{name}.pt").write_bytes(data)
    torch.save({"net": torch.zeros(3)}, tmp_path / "foreign.pt")  # a torch file, not ours
    with open(tmp_path / "code.pt", "wb") as f:  # a pickle that would run code if unpickled unsafely
        pickle.dump({"agent": os.system}, f)
    return sorted(tmp_path.glob("*.pt"))


def test_bad_checkpoint_files_are_named_in_one_line(trained, tmp_path, monkeypatch):
    _, ckpt = trained
    for path in _bad_files(tmp_path, ckpt):
        with pytest.raises(UserError, match=f"checkpoint={path}") as e:
            load_checkpoint_file(path)
        assert "\n" not in str(e.value)
    assert "not loaded (unsafe)" in _message(lambda: load_checkpoint_file(tmp_path / "code.pt"))
    assert "not an mtbench training checkpoint" in _message(lambda: load_checkpoint_file(tmp_path / "foreign.pt"))


def _message(fn) -> str:
    with pytest.raises(UserError) as e:
        fn()
    return str(e.value)


def test_commands_end_with_exit_status_2_on_a_bad_file(trained, tmp_path, capsys, monkeypatch):
    _, ckpt = trained
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(ckpt.read_bytes()[:1000])
    _no_env(monkeypatch)
    for args in ([f"checkpoint={bad}"], [f"checkpoint={bad}", "test=True"], [*SMALL, f"pretrained={bad}"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2, args
        err = capsys.readouterr().err
        assert str(bad) in err and "Traceback" not in err and err.count("\n") == 1


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint({"iteration": 1, "w": torch.arange(1000)}, path)
    before = path.read_bytes()
    real_save = torch.save

    def half_then_full_disk(obj, f, *a, **k):
        f.write(b"x" * 500)  # half-way through the file, the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_full_disk)
    with pytest.raises(RunStopped, match=r"No space left on device.*previous latest.pt is intact"):
        save_checkpoint({"iteration": 2, "w": torch.arange(1000)}, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(path, weights_only=True)["iteration"] == 1


def test_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd)))  # fmt: skip
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", None)), real_replace(a, b)))
    save_checkpoint({"iteration": 1}, tmp_path / "x.pt")
    assert calls == [("fsync", False), ("replace", None), ("fsync", True)]  # file, rename, directory


def test_a_run_whose_checkpoint_cannot_be_written_stops_with_exit_status_1(trained, tmp_path, capsys, monkeypatch):
    copy, before = _copy_run(trained[1], tmp_path / "c")

    def full_disk(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(SystemExit) as e:
        main([f"checkpoint={copy}/latest.pt", "max_iterations=3", "save_frequency=1"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "No space left" in err and "Traceback" not in err
    assert (copy / "latest.pt").read_bytes() == before and not list(copy.glob(".*tmp"))


def test_saved_config_is_the_resumed_one(trained):
    run_dir, _ = trained
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["num_envs"] == 12 and saved["seed"] == 5


def test_wandb_without_the_package_is_refused_up_front(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    _no_env(monkeypatch)
    with pytest.raises(ConfigError, match="pip install wandb"):
        load_config([*SMALL, "wandb_activate=True"])


def test_play_names_a_bad_policy_file(tmp_path, capsys):
    from mtbench.cli import main as cli_main

    bad = tmp_path / "policy.pt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(SystemExit) as e:
        cli_main(["play", "task=parkour_flat", f"policy={bad}", "num_envs=1", "episode_length=2"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"policy={bad} cannot be read" in err and "Traceback" not in err


def test_a_diverged_run_stops_with_exit_status_1_and_keeps_its_checkpoints(trained, tmp_path, capsys, monkeypatch):
    from mtbench.algos.ppo import PPO

    copy, before = _copy_run(trained[1], tmp_path / "d")
    real_update = PPO.update
    monkeypatch.setattr(PPO, "update", lambda self: {**real_update(self), "loss/value": torch.tensor(float("nan"))})
    with pytest.raises(SystemExit) as e:
        main([f"checkpoint={copy}/latest.pt", "max_iterations=4"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "training diverged at iteration 3 (non-finite" in err and "train.ppo.lr" in err
    assert "Traceback" not in err and (copy / "latest.pt").read_bytes() == before
