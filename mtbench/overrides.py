"""`key=value` arguments of the small commands (play, bench, report, params), read with the grammar `mtbench train`
uses (Hydra's override parser), so that a key means the same thing and parses the same way everywhere:
`task=[reach-v3,push-v3]` is a list, `num_envs=null` is None, `render=True` a bool, `"8"` a string. A bare
`a,b` (a sweep in Hydra's grammar) is taken as the list `[a, b]`; its own module so that the command line and
the benchmarks share it without importing each other."""

from __future__ import annotations

from typing import Any, Literal

from mtbench.errors import UserError
from mtbench.validation import check_values

HINTS_BY_DEFAULT = {bool: bool, int: int, float: float, str: str}


def parse_value(arg: str) -> tuple[str, Any]:
    """One `key=value` argument -> (key, value); a malformed one is the user's to fix (UserError)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import HydraException

    if "=" not in arg:
        raise UserError(f"expected key=value, got {arg!r}; see mtbench --help")
    try:
        override = OverridesParser.create().parse_overrides([arg])[0]
    except HydraException as e:
        raise UserError(f"cannot parse {arg!r}: {str(e).splitlines()[0]}") from None
    if override.is_delete() or override.is_add() or override.package:
        raise UserError(f"{arg!r}: only plain key=value is accepted here")
    value = override.value()
    if isinstance(value, ChoiceSweep):
        value = list(value.list)
    elif override.is_sweep_override():
        raise UserError(f"{arg!r}: ranges and sweeps are for `mtbench train -m`; give a value or a [list]")
    return override.key_or_group, value


def parse_overrides(args: list[str], allowed: dict[str, Any], hints: dict[str, Any] | None = None) -> dict[str, Any]:
    """`key=value` pairs over the defaults `allowed` -> dict. Unknown keys are refused; each value must satisfy its
    hint: from `hints`, else `mtbench train`'s for a key of the same name (task, num_envs, seed, ...), else the type
    of its default (an int default takes ints, a bool default true/false; a null default takes anything and
    leaves the check to the consumer)."""
    from mtbench.config import TOP_LEVEL

    out = dict(allowed)
    table = {k: HINTS_BY_DEFAULT[type(v)] for k, v in allowed.items() if type(v) in HINTS_BY_DEFAULT}
    table.update({k: v for k, v in TOP_LEVEL.items() if k in allowed})  # a key of `mtbench train` means the same
    table.update(hints or {})
    for arg in args:
        key, value = parse_value(arg)
        if key not in allowed:
            raise UserError(f"unknown option {key!r}; valid: {', '.join(sorted(allowed))}")
        out[key] = value
    try:
        check_values({k: out[k] for k in out if k in table}, table)
    except ValueError as e:
        raise UserError(str(e)) from None
    return out


def one_or_list_of(choices: tuple | list) -> Any:
    """The hint of an option that takes one of `choices` or a list of them (`methods=[vanilla,pcgrad]`)."""
    one = Literal[tuple(choices)]
    return one | list[one]


def as_list(value: Any) -> list:
    """A list-valued option given as `[a,b]`, `a,b` or a single `a`."""
    return list(value) if isinstance(value, (list, tuple)) else [value]
