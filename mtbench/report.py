"""`mtbench report RUN_DIR...`: aggregate finished runs (their eval.json) into the MTBench paper's Table 1
format (success rate mean ± std over seeds) plus, from `rliable` (the field's library for it), the interquartile
mean with a 95 % stratified bootstrap confidence interval over (run, task) scores and the probability of
improvement between methods on the same benchmark. Writes report.md and report.png.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml
from omegaconf import OmegaConf

from mtbench.config import run_label
from mtbench.errors import UserError
from mtbench.report_scaling import study_figures

BOOTSTRAP_REPS = 5000
"""Bootstrap resamples per interval (rliable's default is 50,000; 5,000 moves a 95 % bound by well under a point of
success on our score matrices and keeps a report of many methods to seconds)."""
POI_REPS = 1000
"""Resamples for the probability of improvement, whose every resample runs a rank test per task (about 7 ms each
on MT10-sized matrices here)."""
SEED = 0


@contextmanager
def seeded(seed: int = SEED):
    """numpy's global generator seeded for the duration, then restored: rliable's StratifiedBootstrap draws its
    resamples from it (its `random_state` reaches only arch's own generator), so a report's intervals are
    reproducible only this way."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def interval_estimates(scores: dict[str, np.ndarray], reps: int | None = None) -> tuple[dict, dict]:
    """rliable's IQM and mean of each (runs, tasks) score matrix with 95 % stratified-bootstrap percentile intervals
    (runs resampled independently per task): ({key: [iqm, mean]}, {key: [[iqm_lo, mean_lo], [iqm_hi, mean_hi]]})."""
    from rliable import library as rly
    from rliable import metrics

    both = lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])
    with seeded():
        return rly.get_interval_estimates(scores, both, reps=reps or BOOTSTRAP_REPS)


def improvement(x: np.ndarray, y: np.ndarray, reps: int | None = None) -> tuple[float, float, float]:
    """rliable's probability that method X beats method Y on a random task (scores (runs, tasks) each), with its
    95 % stratified-bootstrap interval: (P, lo, hi)."""
    from rliable import library as rly
    from rliable import metrics

    with seeded():
        point, ci = rly.get_interval_estimates(
            {"xy": [x, y]}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps=reps or POI_REPS
        )
    return float(point["xy"][0]), float(ci["xy"][0, 0]), float(ci["xy"][1, 0])


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
    params = run_dir / "params.json"
    net = cfg.get("network", {})
    return {
        "dir": run_dir, "method": method, "benchmark": str(bench), "seed": cfg["seed"],
        "tasks": [r["name"] for r in results], "success": np.array([r["success"] for r in results]),
        "widths": (tuple(net.get("actor_units") or ()), tuple(net.get("critic_units") or ())),
        "params": json.loads(params.read_text()).get("total") if params.is_file() else None,
        "plasticity": _last_plasticity(run_dir),
    }  # fmt: skip


def _last_plasticity(run_dir: Path) -> dict[str, float]:
    """The last logged plasticity metrics of a run (`metrics_every`), {} when it logged none."""
    path = run_dir / "metrics.jsonl"
    last: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if any(k.startswith("dormant_") for k in row):
                last = {k: v for k, v in row.items() if k.startswith(("dormant_", "srank/"))}
    return last


def _width_label(widths: tuple[tuple[int, ...], tuple[int, ...]]) -> str:
    """`actor 256x3, critic 1024x3` (or the unit lists when a part is not uniform)."""
    show = lambda u: f"{u[0]}x{len(u)}" if u and len(set(u)) == 1 else "-".join(map(str, u))  # noqa: E731
    return ", ".join(f"{part} {show(u)}" for part, u in zip(("actor", "critic"), widths) if u)


def aggregate(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["method"], r["benchmark"], r["widths"])].append(r)
    sized = defaultdict(set)  # methods run at several widths are told apart by them (the scaling study)
    for method, _, widths in groups:
        sized[method].add(widths)
    rows = []
    for (family, bench, widths), members in sorted(groups.items()):
        method = f"{family} ({_width_label(widths)})" if len(sized[family]) > 1 else family
        tasks = members[0]["tasks"]
        if any(m["tasks"] != tasks for m in members):
            raise UserError(f"{method} on {bench}: runs were evaluated on different task lists")
        scores = np.stack([m["success"] for m in members])  # (runs, tasks)
        per_run = scores.mean(axis=1)
        rows.append(
            {
                "method": method, "benchmark": bench, "seeds": sorted(m["seed"] for m in members),
                "mean": per_run.mean(), "std": per_run.std(ddof=1) if len(per_run) > 1 else 0.0,
                "tasks": tasks, "per_task": scores.mean(axis=0), "scores": scores, "family": family,
                "widths": widths, "params": members[0]["params"],
                "plasticity": {k: float(np.mean([m["plasticity"].get(k, np.nan) for m in members]))
                               for k in members[0]["plasticity"]},
            }
        )  # fmt: skip
    for r in rows:  # one call per row: each row's interval is reproducible alone, whatever else is reported
        point, ci = interval_estimates({"m": r["scores"]})
        r["iqm"], r["ci"] = float(point["m"][0]), (float(ci["m"][0, 0]), float(ci["m"][1, 0]))
        r["mean_ci"] = (float(ci["m"][0, 1]), float(ci["m"][1, 1]))
    return rows


def improvements(rows: list[dict]) -> list[dict]:
    """P(X > Y) of every method X against the plain learner Y of its own train config (no network or scheme label:
    `ppo` for `ppo+moore_pcgrad`) evaluated on the same benchmark and tasks; P(Y > X) is 1 - P(X > Y)."""
    out = []
    for x in rows:
        base = x["method"].split("+")[0]
        for y in rows:
            if y["method"] == base != x["method"] and x["benchmark"] == y["benchmark"] and x["tasks"] == y["tasks"]:
                p, lo, hi = improvement(x["scores"], y["scores"])
                out.append({"x": x["method"], "y": y["method"], "benchmark": x["benchmark"], "p": p, "ci": (lo, hi)})
    return out


def to_markdown(rows: list[dict], pairs: list[dict] | None = None) -> str:
    lines = [
        "| method | benchmark | seeds | success % (mean ± std) | IQM % [95 % CI] |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['benchmark']} | {len(r['seeds'])} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} "
            f"| {100 * r['iqm']:.2f} [{100 * r['ci'][0]:.2f}, {100 * r['ci'][1]:.2f}] |"
        )
    lines += [
        "",
        f"IQM and intervals: rliable, {BOOTSTRAP_REPS} stratified bootstrap resamples over (run, task) scores.",
    ]
    if pairs:
        lines += ["", f"| P(X > Y) [95 % CI, {POI_REPS} resamples] | X | Y | benchmark |", "|---:|---|---|---|"]
        lines += [f"| {p['p']:.2f} [{p['ci'][0]:.2f}, {p['ci'][1]:.2f}] | {p['x']} | {p['y']} | {p['benchmark']} |"
                  for p in pairs]  # fmt: skip
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
    md = to_markdown(rows, improvements(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(md)
    plot(rows, out_dir / "report.png")
    print(md)
    print(f"wrote {out_dir / 'report.md'} and {out_dir / 'report.png'}")
    for path in study_figures(rows, out_dir):
        print(f"wrote {path}")
