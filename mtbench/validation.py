"""User-given values checked against the types and ranges their consumer declares in its own signature.

A setting's rule lives once, as the type hint of the parameter or dataclass field that receives it, e.g.
`horizon: PosInt` or `goal_mode: Literal[GOAL_MODES]`; `check_values` reads those hints, so a config can be
validated before anything is built and the constructor that later receives the value states the same rule.
Ints are accepted where floats are expected (YAML's `1` for `1.0`), never the reverse, and bools are never
numbers (`True` is not 1).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class Range:
    """An interval of allowed numbers; open at an end where `*_open` is set."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, x: float) -> bool:
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return not (self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi))

    def __str__(self) -> str:
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


PosInt = Annotated[int, Range(lo=1)]
NonNegInt = Annotated[int, Range(lo=0)]
PosFloat = Annotated[float, Range(lo=0, lo_open=True)]
NonNegFloat = Annotated[float, Range(lo=0)]
UnitFloat = Annotated[float, Range(lo=0, hi=1)]
"""A discount, a λ, a probability: in [0, 1]."""
OpenUnitFloat = Annotated[float, Range(lo=0, hi=1, lo_open=True)]
"""A Polyak factor or a fraction of a run: in (0, 1]."""


def conforms(value: Any, hint: Any) -> bool:
    """Whether `value` (plain Python data, as a parsed config holds) satisfies the type hint `hint`."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if origin is Annotated:
        return conforms(value, args[0]) and all(value in r for r in args[1:] if isinstance(r, Range))
    if origin in (Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if hint is None or hint is type(None):
        return value is None
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(conforms(v, a) for v, a in zip(value, args))
        return not args or all(conforms(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this checker does not read (a forward reference, a protocol): the consumer checks


def describe(hint: Any) -> str:
    """What `hint` allows, in words for an error message."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        ranges = " ".join(str(r) for r in args[1:] if isinstance(r, Range))
        return f"{describe(args[0])} {ranges}".strip()
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if hint is None or hint is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)}: " + ", ".join(describe(a) for a in args)
        return f"a list of ({describe(args[0])})" if args else "a list"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def hints_of(consumer: Callable | type) -> dict[str, Any]:
    """The type hints of a function's parameters or of a class's constructor (a dataclass: its fields)."""
    is_class = isinstance(consumer, type) and not hasattr(consumer, "__dataclass_fields__")
    hints = get_type_hints(consumer.__init__ if is_class else consumer, include_extras=True)
    hints.pop("return", None)
    return hints


def check_values(values: Mapping[str, Any], hints: Mapping[str, Any] | Callable | type, prefix: str = "") -> None:
    """Raise ValueError naming the first of `values` that its hint (from `hints`, or from the signature of the
    consumer passed as `hints`) refuses: `<prefix><key>=<value> must be <what is allowed>`. Keys without a hint
    are left to the consumer (which refuses unknown keys itself)."""
    table = hints if isinstance(hints, Mapping) else hints_of(hints)
    for key, value in values.items():
        hint = table.get(key)
        if hint is not None and not conforms(value, hint):
            raise ValueError(f"{prefix}{key}={value!r} must be {describe(hint)}")
