"""`mtbench report RUN_DIR...`: aggregate finished runs (their eval.json) into the MTBench paper's Table 1
format (success rate mean ± std over seeds) plus the interquartile mean with a 95 % stratified bootstrap
confidence interval over (run, task) scores, the rliable convention. Writes report.md and report.png.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml
from omegaconf import OmegaConf

from mtbench.config import run_label
from mtbench.errors import UserError

BOOTSTRAP_REPS = 2000


def iqm(scores: np.ndarray) -> float:
    """Mean of the middle 50 % of all values (rliable's IQM: scipy.stats.trim_mean(x, 0.25) on the flat array)."""
    x = np.sort(scores.reshape(-1))
    n = len(x)
    cut = int(0.25 * n)
    return float(x[cut : n - cut].mean())


def iqm_ci(scores: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the IQM under a stratified bootstrap: runs resampled with replacement
    independently for every task (column) of the (runs, tasks) score matrix."""
    rng = np.random.default_rng(seed)
    runs, tasks = scores.shape
    stats = np.empty(reps)
    for b in range(reps):
        idx = rng.integers(0, runs, size=(runs, tasks))
        stats[b] = iqm(np.take_along_axis(scores, idx, axis=0))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def load_run(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    evals = run_dir / "eval.json"
    if not evals.is_file():
        raise UserError(f"{run_dir} has no eval.json (is the run finished?)")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    label = run_label(OmegaConf.create(cfg))  # network and scheme when not the vanilla ones
    method = cfg["train"]["name"] + (f"+{label}" if label else "")
    bench = cfg["task"] if cfg.get("task_id") is None else f"{len(cfg['task_ids'])} tasks"
    results = json.loads(evals.read_text())
    return {
        "dir": run_dir, "method": method, "benchmark": str(bench), "seed": cfg["seed"],
        "tasks": [r["name"] for r in results], "success": np.array([r["success"] for r in results]),
    }  # fmt: skip


def aggregate(runs: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["method"], r["benchmark"])].append(r)
    rows = []
    for (method, bench), members in sorted(groups.items()):
        tasks = members[0]["tasks"]
        if any(m["tasks"] != tasks for m in members):
            raise UserError(f"{method} on {bench}: runs were evaluated on different task lists")
        scores = np.stack([m["success"] for m in members])  # (runs, tasks)
        per_run = scores.mean(axis=1)
        lo, hi = iqm_ci(scores)
        rows.append(
            {
                "method": method, "benchmark": bench, "seeds": sorted(m["seed"] for m in members),
                "mean": per_run.mean(), "std": per_run.std(ddof=1) if len(per_run) > 1 else 0.0,
                "iqm": iqm(scores), "ci": (lo, hi), "tasks": tasks, "per_task": scores.mean(axis=0),
            }
        )  # fmt: skip
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| method | benchmark | seeds | success % (mean ± std) | IQM % [95 % CI] |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['benchmark']} | {len(r['seeds'])} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} "
            f"| {100 * r['iqm']:.2f} [{100 * r['ci'][0]:.2f}, {100 * r['ci'][1]:.2f}] |"
        )
    for r in rows:
        lines += ["", f"**{r['method']} on {r['benchmark']}** (seeds {r['seeds']}), per task success %:", ""]
        lines += ["| task | success % |", "|---|---:|"]
        lines += [f"| {t} | {100 * s:.1f} |" for t, s in zip(r["tasks"], r["per_task"])]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['method']}\n{r['benchmark']}" for r in rows]
    iqms = np.array([100 * r["iqm"] for r in rows])
    err = np.array([[100 * (r["iqm"] - r["ci"][0]) for r in rows], [100 * (r["ci"][1] - r["iqm"]) for r in rows]])
    fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(rows)), 4))
    ax.bar(range(len(rows)), iqms, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("IQM success % (95 % CI)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(".")
    if argv and argv[0].startswith("out="):
        out_dir = Path(argv.pop(0)[4:])
    if not argv:
        raise UserError("usage: mtbench report [out=DIR] RUN_DIR [RUN_DIR ...]  (runs/<experiment> directories)")
    rows = aggregate([load_run(Path(d)) for d in argv])
    md = to_markdown(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(md)
    plot(rows, out_dir / "report.png")
    print(md)
    print(f"wrote {out_dir / 'report.md'} and {out_dir / 'report.png'}")
