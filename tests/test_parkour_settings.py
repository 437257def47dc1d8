"""The Go1 parkour recipe against the MTBench paper's Table 7 (MTPPO in the Parkour benchmark) and upstream's Go1
configs (shared/reference/mtbench-upstream.md §2.9, §3.1, §3.4): FAMO's gamma, w_lr, eps; iterations per setting;
MOORE's KL threshold; a value on the command line always wins; and the README's parkour observation size is what
`mtbench.make` returns."""

import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

import mtbench
import mtbench.config
from mtbench.config import ConfigError, compose, resolve_config

README = Path(__file__).resolve().parent.parent / "README.md"


def _cfg(*overrides: str) -> DictConfig:
    return resolve_config(compose(["sim_device=cpu", *overrides]))


@pytest.fixture
def on_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """resolve_config as on a CUDA machine (the `gpu` profile), with no GPU needed: only the config is resolved."""
    monkeypatch.setattr(mtbench.config, "_device", lambda name: torch.device("cuda:0"))


def test_famo_takes_table_7_values_on_parkour():
    for task in ("parkour_hard", "parkour_easy", "parkour_flat"):
        s = _cfg(f"task={task}", "scheme=famo").scheme
        assert (s.gamma, s.w_lr, s.eps) == (1e-4, 5e-3, 1e-3), task
    s = _cfg("task_id=[0,20]", "suite=parkour", "scheme=famo", "parkour.setting=easy").scheme
    assert (s.gamma, s.w_lr, s.eps) == (1e-4, 5e-3, 1e-3)
    s = _cfg("task=mt10", "scheme=famo").scheme  # Meta-World keeps Table 3's
    assert (s.gamma, s.w_lr, s.eps) == (1e-3, 1e-3, 1e-2)


def test_moore_on_go1_uses_kl_threshold_0_01():
    for network in ("moore", "moore_mh"):
        assert _cfg("task=parkour_hard", f"network={network}").train.ppo.kl_threshold == 0.01
    assert _cfg("task=parkour_hard").train.ppo.kl_threshold == 0.008  # every other Go1 config
    assert _cfg("task=parkour_hard", "network=care").train.ppo.kl_threshold == 0.008
    assert _cfg("task=mt10", "network=moore").train.ppo.kl_threshold == 0.008  # Meta-World MOORE


def test_the_command_line_wins_over_the_go1_values():
    s = _cfg("task=parkour_hard", "scheme=famo", "scheme.gamma=0.5", "scheme.eps=0.25").scheme
    assert (s.gamma, s.w_lr, s.eps) == (0.5, 5e-3, 0.25)
    s = _cfg("scheme.w_lr=0.125", "task=parkour_hard", "scheme=famo").scheme  # whatever the order
    assert s.w_lr == 0.125
    ppo = _cfg("task=parkour_hard", "network=moore", "train.ppo.kl_threshold=0.02").train.ppo
    assert ppo.kl_threshold == 0.02


def test_iterations_per_setting_on_the_gpu_profile(on_gpu):
    """Table 7: 2000 easy / 4000 hard; upstream's exec scripts: 1000 flat, hard_cl as hard."""
    expected = {"parkour_flat": 1000, "parkour_easy": 2000, "parkour_hard": 4000, "parkour_hard_cl": 4000}
    for task, iterations in expected.items():
        cfg = resolve_config(compose([f"task={task}"]))
        assert (cfg.max_iterations, cfg.num_envs, cfg.train.ppo.minibatch_size) == (iterations, 4096, 16384), task
    # terrain-id lists: the setting they run in
    assert resolve_config(compose(["task_id=[0,5]", "suite=parkour"])).max_iterations == 4000  # default: hard
    cfg = resolve_config(compose(["task_id=[0,5]", "suite=parkour", "parkour.setting=easy"]))
    assert cfg.max_iterations == 2000
    # the command line wins; Meta-World's profiles are numbers
    assert resolve_config(compose(["task=parkour_hard", "max_iterations=7"])).max_iterations == 7
    assert resolve_config(compose(["task=mt10"])).max_iterations == 1908


def test_a_per_setting_table_needs_a_setting(on_gpu):
    with pytest.raises(ConfigError, match=r"max_iterations per setting .*give max_iterations="):
        resolve_config(compose(["task=mt10", "train=ppo_go1"]))


def test_the_cpu_profile_is_time_boxed():
    cfg = _cfg("task=parkour_flat")
    assert (cfg.max_iterations, cfg.max_minutes, cfg.num_envs) == (100000, 60, 210)


def test_readme_parkour_observation_size_is_what_make_returns():
    text = " ".join(README.read_text().split())
    found = re.search(r"Observation (\d+) = ([^;]+?) one-hot", text)
    assert found, "README: the parkour observation size ('Observation N = ... one-hot') is missing"
    total, terms = int(found.group(1)), [int(n) for n in re.findall(r"(?:^|\+ )(\d+)", found.group(2))]
    assert sum(terms) == total and len(terms) == 5  # proprio, scandots, base velocity, privileged, one-hot
    assert mtbench.make("parkour_hard", device="cpu").obs_dim == total
    flat = re.search(r'`mtbench\.make\("parkour_flat"\)` returns (\d+)', text)
    assert flat and mtbench.make("parkour_flat", device="cpu").obs_dim == int(flat.group(1))
