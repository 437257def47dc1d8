"""Correctness on the device: the existing engine-agreement and env-contract tests with their Warp side on the
device (`MTBENCH_TEST_DEVICE`, tests/devices.py), and CUDA-graph replay against plain launches, bit for bit."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from mtbench.gpucheck.common import build_env, random_actions, set_capture
from mtbench.gpucheck.plan import Plan
from mtbench.gpucheck.report import Step


def repo_root() -> Path | None:
    """The checkout whose tests/ the step runs: beside the imported package, else the working directory."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "tests" / "devices.py").is_file():
            return root
    return None


def run_tests(step: Step, nodes: list[str], device: torch.device, workers: int, log_dir: Path) -> None:
    """Run the pytest `nodes` (slow ones included) with `MTBENCH_TEST_DEVICE=device`, stopped at the step's budget;
    one table of outcomes per test file, failures with their first assertion line."""
    root = repo_root()
    if root is None:
        step.set("skip", "no tests/ folder beside the package or here: run `mtbench bench gpu` from a checkout")
        return
    log = log_dir / "tests.jsonl"
    log.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "mtbench.gpucheck.pytest_log",
        "-m",
        "slow or not slow",
        "--tb=short",
    ]
    if workers > 1 and importlib.util.find_spec("xdist") is not None:
        cmd += ["-n", str(workers), "--dist", "load"]
    else:
        cmd += ["-p", "no:xdist"]
    env = {**os.environ, "MTBENCH_TEST_DEVICE": str(device), "MTBENCH_TEST_LOG": str(log)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    extra = " ".join(cmd[cmd.index("--tb=short") + 1 :])
    step.say(f"`MTBENCH_TEST_DEVICE={device} python -m pytest -m 'slow or not slow' {extra} {' '.join(nodes)}`")
    budget = max(10.0, step.left())
    proc = subprocess.Popen(
        cmd + list(nodes),
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=budget)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and its xdist workers: the process group this step started
        out, _ = proc.communicate()
        timed_out = True
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    summarize(step, rows, nodes)
    step.data["returncode"] = proc.returncode
    if timed_out:
        step.set("fail", f"stopped at the step's budget ({budget:.0f} s); the tests above had finished")
    elif proc.returncode not in (0, 5) or any(r["outcome"] == "failed" for r in rows):
        step.set("fail", f"pytest exit status {proc.returncode}")
    if step.status == "fail" or not rows:
        tail = "\n".join(out.strip().splitlines()[-25:])
        step.say(f"pytest's last lines:\n```\n{tail}\n```")


def summarize(step: Step, rows: list[dict], nodes: list[str]) -> None:
    by_file: dict[str, dict[str, int]] = {}
    for r in rows:
        counts = by_file.setdefault(r["nodeid"].split("::")[0], {"passed": 0, "failed": 0, "skipped": 0, "s": 0.0})
        counts[r["outcome"]] += 1
        counts["s"] += r["seconds"]
    step.table(
        ["test file", "passed", "failed", "skipped", "test seconds"],
        [[f, c["passed"], c["failed"], c["skipped"], round(c["s"], 1)] for f, c in sorted(by_file.items())],
    )
    failures = [r for r in rows if r["outcome"] == "failed"]
    if failures:
        step.table(
            ["failed test", "phase", "first error line"], [[r["nodeid"], r["when"], r["message"]] for r in failures]
        )
    skipped = [r for r in rows if r["outcome"] == "skipped"]
    if skipped:
        step.say("Skipped: " + "; ".join(f"`{r['nodeid']}` ({r['message']})" for r in skipped[:10]))
    step.data["tests"] = {
        "passed": sum(r["outcome"] == "passed" for r in rows),
        "failed": len(failures),
        "skipped": len(skipped),
        "failures": failures,
    }


# ---------------------------------------------------------------------------------------------------------
# CUDA graphs vs plain launches

GRAPH_EPISODE = 3
"""Episodes end every 3 steps: the compared steps cross auto-resets (the reset path's captured forward)."""


def _trajectory(
    suite: str, task: list, per_task: int, device: torch.device, capture: bool, steps: int
) -> list[torch.Tensor]:
    env = build_env(suite, task, per_task * len(task), device, episode_length=GRAPH_EPISODE, random_init_progress=False)
    set_capture(env, capture)
    acts = random_actions(env, steps, seed=1)
    out = [env.reset().clone()]
    for a in acts:
        obs, rew, term, trunc, info = env.step(a)
        out += [obs.clone(), rew.clone(), (term | trunc).clone(), info["final_obs"].clone()]
    for blk in env.blocks:
        out += [blk.sim.qpos.clone(), blk.sim.qvel.clone()]
    return out


def _gap(a: list[torch.Tensor], b: list[torch.Tensor]) -> tuple[bool, float]:
    equal = all(torch.equal(x, y) for x, y in zip(a, b))
    gap = max(float((x.double() - y.double()).abs().max()) if x.numel() else 0.0 for x, y in zip(a, b))
    return equal, gap


def graphs_match(step: Step, plan: Plan) -> None:
    """The same env, seed and actions stepped three times: with CUDA graphs, and twice with plain launches. Replay
    must equal launching bit for bit; the second launched run tells a capture bug from an engine that is not
    deterministic run to run (atomics ordering contacts), which would make the first gap meaningless."""
    device, per_task, steps = plan.device, plan.graph_per_task, plan.graph_steps
    if device.type != "cuda":
        step.say(
            "Warp's CPU device launches its kernels (no CUDA graphs): the three runs below are all launched, which "
            "checks the comparison itself."
        )
    rows = []
    for suite, task in plan.graph_tasks.items():
        if step.left() <= 0:
            step.set("skip", f"{suite}: the step's budget was spent")
            continue
        t0 = time.perf_counter()
        captured = _trajectory(suite, task, per_task, device, True, steps)
        launched = _trajectory(suite, task, per_task, device, False, steps)
        again = _trajectory(suite, task, per_task, device, False, steps)
        eq, gap = _gap(captured, launched)
        eq_rr, gap_rr = _gap(launched, again)
        rows.append([suite, per_task * len(task), steps, eq, gap, eq_rr, gap_rr, round(time.perf_counter() - t0, 1)])
        step.data[suite] = {"bitwise": eq, "gap": gap, "run_to_run_bitwise": eq_rr, "run_to_run_gap": gap_rr}
        if not eq and eq_rr:
            step.set(
                "fail",
                f"{suite}: graph replay differs from plain launches (max |Δ| {gap:.3g}) although plain "
                "launches repeat bit for bit",
            )
        elif not eq:
            step.set(
                "warn",
                f"{suite}: the engine is not deterministic run to run here (launched twice: max |Δ| "
                f"{gap_rr:.3g}), so replay vs launch (max |Δ| {gap:.3g}) cannot be bitwise",
            )
    step.table(
        [
            "suite",
            "envs",
            "steps",
            "graphs = launches (bitwise)",
            "max abs diff",
            "launches repeat (bitwise)",
            "max abs diff",
            "seconds",
        ],
        rows,
    )
    step.say(
        "Compared: observations, rewards, dones, final observations at every step, and every block's qpos and "
        f"qvel at the end; episodes of {GRAPH_EPISODE} steps, so auto-resets are inside the comparison."
    )
