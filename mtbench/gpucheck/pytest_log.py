"""A pytest plugin for `mtbench bench gpu`: one JSON line per test outcome, appended to the file MTBENCH_TEST_LOG
names the moment the test ends, so a test run stopped at its time budget still tells what passed and what failed.
Loaded with `-p mtbench.gpucheck.pytest_log`; with pytest-xdist only the controller writes (every worker's reports
reach it)."""

from __future__ import annotations

import json
import os

import pytest

_WRITE = {"on": True}


def pytest_configure(config: pytest.Config) -> None:
    _WRITE["on"] = not hasattr(config, "workerinput")  # an xdist worker: its controller writes


def _message(report: pytest.TestReport) -> str:
    text = getattr(report, "longreprtext", "") or ""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])[:300]
    return (" / ".join(errors[:2]) if errors else (text.strip().splitlines() or [""])[-1])[:300]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get("MTBENCH_TEST_LOG")
    if not path or not _WRITE["on"]:
        return
    if report.when == "call" or report.outcome != "passed":  # setup/teardown only when they did not pass
        row = {
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "seconds": round(report.duration, 2),
            "message": "" if report.passed else _message(report),
        }
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
