"""`mtbench bench gpu dry_run=True`, some of its steps, for the two test files that run it in halves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtbench.gpucheck import run
from mtbench.gpucheck.plan import make_plan
from mtbench.gpucheck.report import Step


def dry_run(tmp_path: Path, steps: list[str]) -> dict[str, Step]:
    """The dry run of `steps`, every one finished without a failure; the steps by name."""
    pytest.importorskip("mujoco_warp")
    plan = make_plan(dry_run=True, device=None, sizes=None, suites=None, learn_minutes=None, test_workers=None)
    report = run(plan, tmp_path, steps, echo=False)
    assert not report.failed, "\n\n".join("\n".join([s.title, *s.lines]) for s in report.failed)
    text = (tmp_path / "report.md").read_text()
    assert text.count("\n## ") == len(steps) + 1 and "## Summary" in text  # every step, then the summary
    statuses = [s["status"] for s in json.loads((tmp_path / "report.json").read_text())]
    assert statuses == [s.status for s in report.steps]
    return dict(zip(steps, report.steps))
