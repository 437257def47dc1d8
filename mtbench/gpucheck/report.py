"""The report of `mtbench bench gpu`: one markdown file, each step appended (and printed) the moment it ends, so a
run cut short still leaves every finished step on disk; a JSON twin holds the numbers for tools.

A step runs inside `Report.step(...)`: its time is measured against its budget, an exception ends the step (status
fail, the traceback's tail recorded) and the next step still runs.
"""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("pass", "fail", "warn", "skip", "info")
"""pass: the check held; fail: it did not, or the step raised; warn: it ran but something needs a look; skip: not run
(the reason is recorded); info: a measurement with no verdict."""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; numbers right-aligned."""
    align = [
        "---:" if rows and all(isinstance(r[i], (int, float)) for r in rows) else "---" for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


@dataclass
class Step:
    """What one step found: its lines of markdown, its numbers and its verdict."""

    number: int
    title: str
    budget: float | None
    status: str = "pass"
    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def say(self, text: str) -> None:
        self.lines.append(text)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.lines.append(table(headers, rows))

    def set(self, status: str, reason: str | None = None) -> None:
        """Worsen the verdict (fail > warn > skip > pass/info); a reason is recorded as a line."""
        order = {"info": 0, "pass": 0, "skip": 1, "warn": 2, "fail": 3}
        if order[status] >= order[self.status]:
            self.status = status
        if reason:
            self.say(f"**{status}**: {reason}")

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Seconds of the budget not yet spent (infinite without a budget)."""
        return float("inf") if self.budget is None else self.budget - self.elapsed()


class Report:
    """`path` (markdown) and `path.with_suffix(".json")`, written after every step; `echo` prints each step too."""

    def __init__(self, path: Path, title: str, preamble: str, echo: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.steps: list[Step] = []
        self.started = time.perf_counter()
        self.header = f"# {title}\n\n{preamble}\n"
        self.path.write_text(self.header)
        if echo:
            print(self.header, flush=True)

    @contextlib.contextmanager
    def step(self, title: str, budget: float | None) -> Iterator[Step]:
        s = Step(len(self.steps) + 1, title, budget)
        try:
            yield s
        except Exception as e:  # a failing step is recorded and the next one still runs
            tail = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-6:])
            s.set("fail", f"raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            s.say(f"```\n{tail.rstrip()}\n```")
        finally:
            s.seconds = s.elapsed()
            self._append(s)

    def _append(self, s: Step) -> None:
        self.steps.append(s)
        budget = f" of {s.budget:.0f} s budget" if s.budget is not None else ""
        over = " (over budget)" if s.budget is not None and s.seconds > s.budget * 1.05 else ""
        text = f"\n## {s.number}. {s.title}: {s.status.upper()} ({s.seconds:.1f} s{budget}{over})\n\n"
        text += "\n\n".join(s.lines) + "\n"
        with open(self.path, "a") as f:
            f.write(text)
        if self.echo:
            print(text, flush=True)
        self._write_json()

    def summary(self) -> str:
        """The closing table: every step's verdict and time; appended to the report."""
        rows = [[s.number, s.title, s.status.upper(), round(s.seconds, 1), s.budget or "-"] for s in self.steps]
        total = time.perf_counter() - self.started
        text = f"\n## Summary\n\n{table(['#', 'step', 'result', 'seconds', 'budget'], rows)}\n\n"
        text += f"Total {total / 60:.1f} min.\n"
        with open(self.path, "a") as f:
            f.write(text)
        if self.echo:
            print(text, flush=True)
        self._write_json()
        return text

    def _write_json(self) -> None:
        out = [
            {
                "number": s.number,
                "title": s.title,
                "status": s.status,
                "seconds": s.seconds,
                "budget": s.budget,
                "data": s.data,
            }
            for s in self.steps
        ]
        self.path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str) + "\n")

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status == "fail"]
