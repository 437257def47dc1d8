"""The second half of `mtbench bench gpu dry_run=True` (the first: test_gpu_check.py): MT-PPO learning, one
iteration of every learner, and the host-sync check with its CPU proxy, at toy sizes on Warp's CPU device."""

from __future__ import annotations

from pathlib import Path

from gpu_dry_run import dry_run


def test_dry_run_learning_learners_and_syncs(tmp_path: Path):
    steps = dry_run(tmp_path, ["machine", "learn", "algos", "syncs"])
    assert (tmp_path / "runs" / "gpu_check_mt10_ppo" / "metrics.jsonl").is_file()
    assert steps["learn"].data["curve"] and steps["learn"].data["final_success"] >= 0
    learners = steps["algos"].data
    assert all(learners[a]["learning"] and learners[a]["finite"] for a in ("sac", "grpo", "pqn"))
    syncs = steps["syncs"].data["syncs"]
    assert any(s["where"].startswith("mtbench/algos/") for s in syncs)  # the CPU proxy sees the learners' own calls
    assert {s["phase"].split()[0] for s in syncs} >= {"ppo", "sac", "grpo", "pqn"}
