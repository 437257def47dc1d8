"""Plot several runs' mean training-episode success against frames and wall-clock on one figure:
`python tools/compare_runs.py out=FILE.png title="..." LABEL=RUN_DIR_OR_POINTS_JSON ...`. A run directory gives its
metrics.jsonl; a JSON file gives recorded points, a list of {"frames", "time" (s), "success"} (e.g. a run whose
metrics were not kept, rebuilt from the numbers written down at the time)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mtbench.plots import plot_compare
from mtbench.runlog import read_metrics


def main(args: list[str]) -> None:
    opts = dict(a.split("=", 1) for a in args)
    out, title = Path(opts.pop("out")), opts.pop("title", "")
    curves = {}
    for label, src in opts.items():
        p = Path(src)
        curves[label] = read_metrics(p) if p.is_dir() else json.loads(p.read_text())
    print(f"wrote {plot_compare(curves, out, title)}")


if __name__ == "__main__":
    main(sys.argv[1:])
