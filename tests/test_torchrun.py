"""Data-parallel training with torchrun (issue #16), the runner's side: two CPU ranks (Gloo) train PPO and SAC end to
end into one run directory, resume with two ranks, refuse a resume by one process, and a rank killed mid-run ends the
job within seconds with one line on the survivor and the last checkpoint intact. Each job is a real `torchrun`
subprocess with toy sizes (about 10-20 s on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from mtbench.checkpoint import load_checkpoint_file
from mtbench.config import ConfigError, compose, resolve_config, shard_config
from mtbench.train import check_world_size, run

TINY = ["task=mt10", "num_envs=20", "network.actor_units=[16]", "network.critic_units=[16]", "progress=false",
        "sim_device=cpu", "eval.episodes_per_task=2"]  # fmt: skip
PPO = TINY + ["train.ppo.horizon=4", "train.ppo.minibatch_size=40", "train.ppo.mini_epochs=1", "env.episode_length=10"]
# 2 steps of 10 envs per rank and iteration, 2-step returns: each rank updates from the first iteration on
SAC = TINY + ["train=sac", "train.sac.horizon=2", "train.sac.nstep=2", "train.sac.batch_size=16",
              "train.sac.gradient_steps_per_itr=2", "train.sac.replay_buffer_size=128", "train.sac.num_warmup_steps=2",
              "env.episode_length=5", "save_buffer=True"]  # fmt: skip
STOP_WITHIN_S = 60  # a killed rank ends the whole job within this


def _torchrun_cmd(args: list[str], nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "mtbench.train", *args]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MTBENCH_DIST_TIMEOUT": "60"}


def torchrun(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(_torchrun_cmd(args), capture_output=True, text=True, timeout=timeout, env=_env())


def _ok(p: subprocess.CompletedProcess) -> str:
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    return out


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in open(run_dir / "metrics.jsonl")]


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """PPO on MT10, 2 ranks x 10 envs, 2 iterations: (the run directory, the job's output)."""
    runs = tmp_path_factory.mktemp("ppo")
    out = _ok(torchrun(PPO + [f"runs_dir={runs}", "max_iterations=2"]))
    (run_dir,) = list(runs.iterdir())  # exactly one run directory: rank 0's
    return run_dir, out


def test_shard_config_splits_the_totals_and_refuses_what_does_not_divide():
    cfg = resolve_config(compose(SAC))
    part = shard_config(cfg, 2)
    assert part.num_envs == 10 and list(part.task_counts) == [1] * 10
    assert part.train.sac.batch_size == 8 and part.train.sac.replay_buffer_size == 64
    assert cfg.num_envs == 20 and cfg.train.sac.batch_size == 16  # the user's totals stay as they were
    with pytest.raises(ConfigError, match=r"num_envs=20 .* multiple of 3; e\.g\. num_envs=30"):
        shard_config(resolve_config(compose(SAC + ["eval.episodes_per_task=3"])), 3)
    with pytest.raises(ConfigError, match=r"batch_size=16 is a total .* e\.g\. train\.sac\.batch_size=15 or 18"):
        shard_config(resolve_config(compose(SAC + ["num_envs=60", "eval.episodes_per_task=3"])), 3)
    with pytest.raises(ConfigError, match="eval.episodes_per_task=2 is split over the 4 ranks"):
        shard_config(resolve_config(compose(SAC + ["num_envs=40", "train.sac.batch_size=32"])), 4)
    cuda = OmegaConf.merge(cfg, {"sim_device": "cuda:0", "rl_device": "cuda"})
    part = shard_config(cuda, 2, local_rank=1)
    assert part.sim_device == part.rl_device == "cuda:1"
    with pytest.raises(ConfigError, match="x.pt was written by one process; resume it without torchrun"):
        check_world_size({}, "x.pt", 2)  # a one-process checkpoint (no world_size) under torchrun


def test_two_ranks_train_ppo_into_one_run_directory(ppo_run):
    run_dir, out = ppo_run
    assert out.count("run directory:") == 1 and out.count("final policy") == 1  # rank 0 alone talks
    for name in ("config.yaml", "metrics.csv", "params.json", "eval.md", "eval.json", "curve_success.png"):
        assert (run_dir / name).is_file(), name
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["latest.pt"]
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.num_envs == 20 and saved.train.ppo.minibatch_size == 40  # totals, not a rank's share
    rows = _rows(run_dir)
    assert [r["iteration"] for r in rows] == [1, 2] and [r["frames"] for r in rows] == [80, 160]  # 2 x 10 envs x 4
    assert all(r["loss/value"] is not None and "time/comm" in r for r in rows)
    table = json.loads((run_dir / "eval.json").read_text())
    assert len(table) == 10 and all(r["episodes"] == 2 for r in table)  # 1 episode per task on each rank, pooled
    ckpt = load_checkpoint_file(run_dir / "checkpoints" / "latest.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["ranks"]) == 2 and ckpt["config"]["num_envs"] == 20
    assert all(part["env"]["task_counts"] == [1] * 10 for part in ckpt["ranks"])
    assert not torch.equal(ckpt["ranks"][0]["rl_gen"], ckpt["ranks"][1]["rl_gen"])  # seeds differ by rank


def test_two_rank_checkpoint_resumes_with_two_ranks_only_and_tests_anywhere(ppo_run, tmp_path):
    run_dir, _ = ppo_run
    latest = run_dir / "checkpoints" / "latest.pt"
    one = subprocess.run([sys.executable, "-m", "mtbench.train", f"checkpoint={latest}", "max_iterations=3"],
                         capture_output=True, text=True, timeout=120, env=_env())  # fmt: skip
    assert one.returncode == 2, one.stderr[-2000:]
    line = one.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert f"{latest} was written by 2 ranks; resume it with torchrun --nproc_per_node 2" in line
    assert f"pretrained={latest}" in line
    # the weights are the same on every rank: one process evaluates a torchrun checkpoint
    results = run([f"checkpoint={latest}", "test=True", "eval.episodes_per_task=1", "progress=false"])
    assert len(results) == 10 and all(r.episodes == 1 for r in results)
    _ok(torchrun([f"checkpoint={latest}", "max_iterations=3"]))
    assert [r["iteration"] for r in _rows(run_dir)] == [1, 2, 3]
    assert load_checkpoint_file(latest)["iteration"] == 3


def test_two_ranks_train_sac_with_a_replay_buffer_per_rank_and_resume(tmp_path):
    _ok(torchrun(SAC + [f"runs_dir={tmp_path}", "experiment=sac", "max_iterations=4"]))
    latest = tmp_path / "sac" / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint_file(latest)
    assert ckpt["agent"]["updates"] == 8
    assert ckpt["agent"]["buffer"]["obs"] is ckpt["ranks"][0]["agent"]["buffer"]["obs"]  # rank 0's, stored once
    for part in ckpt["ranks"]:
        assert set(part["agent"]) == {"buffer", "window"}
        # 4 x 2 steps of 10 envs, 2-step returns: 70 transitions on each rank, in its half of replay_buffer_size=128
        assert part["agent"]["buffer"]["size"] == 64
    assert not torch.equal(ckpt["ranks"][0]["agent"]["buffer"]["obs"], ckpt["ranks"][1]["agent"]["buffer"]["obs"])
    assert (tmp_path / "sac" / "eval.json").is_file()
    _ok(torchrun([f"checkpoint={latest}", "max_iterations=5"]))
    assert load_checkpoint_file(latest)["agent"]["updates"] == 10


OTHERS = {  # the other learners at toy sizes, and a loss that is finite only once they have updated
    "grpo": (["train=grpo", "network.actor_units=[16]", "train.grpo.horizon=10", "train.grpo.minibatch_size=40",
              "env.episode_length=5", "max_iterations=2"], "loss/surrogate"),
    "pqn": (["train=pqn", "network.critic_units=[16]", "train.pqn.horizon=4", "env.episode_length=5",
             "max_iterations=2"], "loss/q"),
    "brc": (["train=brc", "train.brc.batch_size=16", "train.brc.buffer_per_task=24", "train.brc.critic_width=16",
             "train.brc.actor_width=16", "train.brc.warmup_per_task=2", "train.brc.gradient_steps_per_itr=1",
             "env.episode_length=5", "max_iterations=4"], "loss/critic"),
}  # fmt: skip


@pytest.mark.parametrize("algo", OTHERS)
def test_two_ranks_train_every_other_learner(algo, tmp_path):
    args, loss = OTHERS[algo]
    base = [a for a in TINY if not a.startswith("network.")]  # each learner's own networks
    _ok(torchrun(base + args + [f"runs_dir={tmp_path}", "max_minutes=null"]))
    (run_dir,) = list(tmp_path.iterdir())
    rows = _rows(run_dir)
    assert rows[-1][loss] is not None and "time/comm" in rows[-1]  # it learned, and the ranks talked
    assert len(load_checkpoint_file(run_dir / "checkpoints" / "latest.pt")["ranks"]) == 2


def test_a_config_that_does_not_split_over_the_ranks_is_refused_in_one_line(tmp_path):
    p = torchrun(PPO + ["num_envs=30", f"runs_dir={tmp_path}"], timeout=120)
    assert p.returncode != 0
    lines = [line for line in p.stderr.splitlines() if line.startswith("mtbench train")]
    assert lines == [
        "mtbench train (rank 0): num_envs=30 (task_counts [3, 3, 3, 3, 3, 3, 3, 3, 3, 3]) is a total over the 2 ranks "
        "of this torchrun job: each task's count must be a multiple of 2; e.g. num_envs=40 (or task_counts that are "
        "multiples of 2)"
    ], p.stderr[-3000:]
    assert not list(tmp_path.iterdir())


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((int(e[5:]) for e in env if e.startswith(b"RANK=")), None)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_killed_rank_ends_the_job_with_one_line_and_the_last_checkpoint_intact(tmp_path):
    latest = tmp_path / "kill" / "checkpoints" / "latest.pt"
    log = open(tmp_path / "out.txt", "w+")
    job = subprocess.Popen(_torchrun_cmd(PPO + [f"runs_dir={tmp_path}", "experiment=kill", "max_iterations=100000",
                                                "save_frequency=1"]),
                           stdout=log, stderr=subprocess.STDOUT, env=_env())  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not latest.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert latest.exists(), open(tmp_path / "out.txt").read()[-3000:]
        (victim,) = [p for p in _children(job.pid) if _rank_of(p) == 1]
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        code = job.wait(timeout=STOP_WITHIN_S)
        took = time.monotonic() - t0
    finally:
        if job.poll() is None:
            job.kill()
    out = open(tmp_path / "out.txt").read()
    assert code != 0 and took < STOP_WITHIN_S, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("mtbench train (rank 0): stopped: ")]
    assert len(lines) == 1 and f"checkpoint={latest}" in lines[0], out[-3000:]
    assert 'mtbench/train.py", line' not in out  # no traceback of ours (torchrun prints its own report)
    ckpt = load_checkpoint_file(latest)
    assert ckpt["world_size"] == 2 and ckpt["iteration"] >= 1
    assert not [p for p in latest.parent.iterdir() if p.name.endswith(".tmp")]
