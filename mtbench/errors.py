"""How a command ends when it cannot go on: one line on stderr, no traceback, an exit status that says whose
move it is (2: the user's input; 1: the run stopped and can be resumed)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """A mistake in what the user asked for: the command line ends with this one-line message and exit status 2,
    no traceback (`run_command`)."""


class RunStopped(Exception):
    """A run that cannot go on (diverged, a checkpoint that could not be written): exit status 1, one line that
    says what was kept and how to go on."""


def run_command(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run subcommand `name`; a UserError ends the process with its message on stderr and exit status 2, a
    RunStopped with exit status 1."""
    try:
        return fn(*args)
    except UserError as e:
        print(f"mtbench {name}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except RunStopped as e:
        print(f"mtbench {name}: {e}", file=sys.stderr)
        raise SystemExit(1) from None
