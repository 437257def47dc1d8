"""The parameter-scaling study's figures (paper 002) from `mtbench report`'s aggregated rows: success against
parameter count per method (its Figure 1), IQM success over actor width x critic width (Figure 5), and the share of
dormant critic neurons against critic width per benchmark (Figures 6-7). Each is drawn only when the runs given
vary what it shows; `study_figures` returns the files it wrote."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

DORMANT_KEY = "dormant_0.025/critic"
"""The dormant share plotted: tau = 0.025, the critic (whose width matters most in paper 002)."""


def _width(units: tuple[int, ...]) -> int | None:
    return max(units) if units else None


def study_figures(rows: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    by_params = [r for r in rows if r["params"] is not None]
    if len({r["params"] for r in by_params}) > 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        for (family, bench), members in sorted(_groups(by_params).items()):
            members.sort(key=lambda r: r["params"])
            x = [r["params"] for r in members]
            y = [100 * r["iqm"] for r in members]
            err = [[100 * (r["iqm"] - r["ci"][0]) for r in members], [100 * (r["ci"][1] - r["iqm"]) for r in members]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{family} ({bench})")
        ax.set_xscale("log")
        out.append(
            _finish(
                fig, plt, ax, "actor + critic parameters", "IQM success % (95 % CI)", out_dir / "scaling_params.png"
            )
        )
    for (family, bench), members in _groups(rows).items():
        actors = sorted({_width(r["widths"][0]) for r in members} - {None})
        critics = sorted({_width(r["widths"][1]) for r in members} - {None})
        if len(actors) > 1 and len(critics) > 1:
            grid = np.full((len(actors), len(critics)), np.nan)
            for r in members:
                grid[actors.index(_width(r["widths"][0])), critics.index(_width(r["widths"][1]))] = 100 * r["iqm"]
            fig, ax = plt.subplots(figsize=(1.2 * len(critics) + 2, 1.0 * len(actors) + 1.5))
            im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=100)
            ax.set_xticks(range(len(critics)), critics)
            ax.set_yticks(range(len(actors)), actors)
            ax.set_xlabel("critic width")
            ax.set_ylabel("actor width")
            for i, j in np.ndindex(grid.shape):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", color="white", fontsize=8)
            fig.colorbar(im, label="IQM success %")
            ax.set_title(f"{family} on {bench}")
            fig.tight_layout()
            out.append(_save(fig, plt, out_dir / f"scaling_widths_{_slug(family, bench)}.png"))
    dormant = [r for r in rows if DORMANT_KEY in r["plasticity"] and r["widths"][1]]
    if len({_width(r["widths"][1]) for r in dormant}) > 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        for (family, bench), members in sorted(_groups(dormant).items()):
            by_width = defaultdict(list)  # runs at one critic width (other actor widths) share a point: their mean
            for r in members:
                by_width[_width(r["widths"][1])].append(100 * r["plasticity"][DORMANT_KEY])
            widths = sorted(by_width)
            ax.plot(widths, [np.mean(by_width[w]) for w in widths], marker="o", label=f"{family} ({bench})")
        ax.set_xscale("log", base=2)
        ylabel = "dormant critic neurons % (τ = 0.025, end of run)"
        out.append(_finish(fig, plt, ax, "critic width", ylabel, out_dir / "scaling_dormant.png"))
    return out


def _groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["family"], r["benchmark"])].append(r)
    return groups


def _slug(*parts: str) -> str:
    return "_".join("".join(c if c.isalnum() else "-" for c in p) for p in parts)


def _finish(fig, plt, ax, xlabel: str, ylabel: str, path: Path) -> Path:
    """Labels, grid and legend of a line figure, then saved."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
