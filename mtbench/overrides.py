"""`key=value` arguments of the small commands (play, bench, report), parsed as Python literals; its own module so
that the command line and the benchmarks share it without importing each other."""

from __future__ import annotations

import ast


def parse_overrides(args: list[str], allowed: dict[str, object]) -> dict[str, object]:
    """`key=value` pairs -> dict, values parsed as Python literals where they are one. Unknown keys raise."""
    out = dict(allowed)
    for arg in args:
        if "=" not in arg:
            raise SystemExit(f"expected key=value, got {arg!r}; see mtbench --help")
        key, raw = arg.split("=", 1)
        if key not in allowed:
            raise SystemExit(f"unknown option {key!r}; valid: {', '.join(sorted(allowed))}")
        try:
            val = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            val = raw
        out[key] = val
    return out
