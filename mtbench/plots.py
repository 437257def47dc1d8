"""PNG learning curves of a run (overall and per task, success and return, against frames and wall-clock)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mtbench.runlog import read_metrics  # noqa: E402

SMOOTH = 10  # iterations in the moving average of the per-iteration episode statistics


def _series(rows: list[dict], key: str, x: str, smooth: int = 1) -> tuple[list[float], list[float]]:
    """(x, y) of the rows that have `key`; y averaged over the last `smooth` such rows (each iteration
    sees only the episodes that ended in it, so raw per-task curves are noisy)."""
    pts = [(r[x], r[key]) for r in rows if r.get(key) is not None and r.get(x) is not None]
    ys = [p[1] for p in pts]
    avg = [sum(ys[max(0, i - smooth + 1) : i + 1]) / len(ys[max(0, i - smooth + 1) : i + 1]) for i in range(len(ys))]
    return [p[0] for p in pts], avg


def plot_run(run_dir: Path) -> list[Path]:
    rows = read_metrics(run_dir)
    if not rows:
        return []
    tasks = sorted(k.split("/", 1)[1] for k in rows[0] if k.startswith("success/"))
    out = []
    for metric, label in (("success", "success rate"), ("return", "episode return")):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, (x, xlabel, scale) in zip(axes, (("frames", "frames (M)", 1e-6), ("time", "wall-clock (min)", 1 / 60))):
            for task in tasks:
                xs, ys = _series(rows, f"{metric}/{task}", x, SMOOTH)
                ax.plot([v * scale for v in xs], ys, lw=0.8, alpha=0.6, label=task)
            xs, ys = _series(rows, metric, x, SMOOTH)
            ax.plot([v * scale for v in xs], ys, color="black", lw=2.0, label="mean")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.suptitle(f"{Path(run_dir).name}: {label} of training episodes ({SMOOTH}-iteration moving average)")
        fig.tight_layout()
        path = Path(run_dir) / f"curve_{metric}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    if any(k.startswith("grad_cos") for k in rows[0]):
        out.append(_plot_conflicts(rows, Path(run_dir)))
    if any(k.startswith("srank/") for r in rows for k in r):
        out.append(_plot_plasticity(rows, Path(run_dir)))
    return out


def _plot_plasticity(rows: list[dict], run_dir: Path) -> Path:
    """Dormant-neuron shares (each tau), feature rank and parameter norm of each measured part (`metrics_every`)."""
    keys = {k for r in rows for k in r}
    parts = sorted(k.split("/", 1)[1] for k in keys if k.startswith("srank/"))
    taus = sorted({k.split("/")[0] for k in keys if k.startswith("dormant_")}, key=lambda t: float(t.split("_")[1]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    colors = dict(zip(parts, ("tab:blue", "tab:red", "tab:green", "tab:purple")))
    for part in parts:
        for tau, style in zip(taus, ("-", "--", ":")):
            xs, ys = _series(rows, f"{tau}/{part}", "frames")
            axes[0].plot([x * 1e-6 for x in xs], ys, style, color=colors[part], label=f"{part} τ={tau.split('_')[1]}")
        for ax, key in ((axes[1], "srank"), (axes[2], "param_norm")):
            xs, ys = _series(rows, f"{key}/{part}", "frames")
            ax.plot([x * 1e-6 for x in xs], ys, color=colors[part], label=part)
    labels = ("share of dormant neurons", "srank of the last hidden layer (δ = 0.01)", "parameter norm")
    for ax, label in zip(axes, labels):
        ax.set_xlabel("frames (M)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{run_dir.name}: plasticity on a probe batch")
    fig.tight_layout()
    path = run_dir / "plasticity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_conflicts(rows: list[dict], run_dir: Path) -> Path:
    """Per-task gradient cosine similarity (mean and min over task pairs) for actor and critic."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for part, color in (("actor", "tab:blue"), ("critic", "tab:red")):
        for stat, style in (("mean", "-"), ("min", ":")):
            xs, ys = _series(rows, f"grad_cos_{stat}/{part}", "frames")
            ax.plot([x * 1e-6 for x in xs], ys, style, color=color, label=f"{part} {stat}")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlabel("frames (M)")
    ax.set_ylabel("cosine similarity of task gradients")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = run_dir / "grad_conflict.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_compare(curves: dict[str, list[dict]], path: Path, title: str) -> Path:
    """Mean training-episode success of several runs on one figure, against frames and against wall-clock.
    Each curve is a list of rows with 'frames', 'time' and 'success' (a run's metrics, or recorded points)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (x, xlabel, scale) in zip(axes, (("frames", "frames (M)", 1e-6), ("time", "wall-clock (min)", 1 / 60))):
        for label, rows in curves.items():
            # about 1 % of the run per point (an off-policy run has thousands of short iterations); raw points if few
            smooth = max(SMOOTH, len(rows) // 100) if len(rows) > 3 * SMOOTH else 1
            xs, ys = _series(rows, "success", x, smooth)
            ax.plot([v * scale for v in xs], ys, marker="o" if smooth == 1 else None, lw=1.5, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate of training episodes")
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
    axes[0].set_xscale("log")  # runs of very different frame rates on one axis
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
