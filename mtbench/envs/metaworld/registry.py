"""Task names, MTBench ids, benchmark sets (from `names`), and the table of implemented task classes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from mtbench.envs.metaworld import tasks as _tasks_pkg
from mtbench.envs.metaworld.names import (  # noqa: F401 - re-exported: the registry is where callers look
    BENCHMARKS,
    ID_OF,
    METAWORLD_NAMES,
    MT10_IDS,
    MT25_NAMES,
    MTBENCH_NAMES,
)
from mtbench.envs.metaworld.task import MetaWorldTask


def _discover() -> dict[int, type[MetaWorldTask]]:
    """Every concrete task class in the `tasks` package (one with its own `mtbench_id`), by id. Family
    modules add tasks without touching this file; a clash of ids or names is a bug and raises."""
    found: dict[int, type[MetaWorldTask]] = {}
    for mod in pkgutil.iter_modules(_tasks_pkg.__path__):
        module = importlib.import_module(f"{_tasks_pkg.__name__}.{mod.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, MetaWorldTask) or cls.__module__ != module.__name__:
                continue
            if "mtbench_id" not in vars(cls):
                continue  # a family base class
            i = cls.mtbench_id
            if i in found and found[i] is not cls:
                raise RuntimeError(f"task id {i} defined twice: {found[i].__qualname__} and {cls.__qualname__}")
            if cls.name != METAWORLD_NAMES[i]:
                raise RuntimeError(f"{cls.__qualname__}: name {cls.name!r} is not id {i} ({METAWORLD_NAMES[i]})")
            found[i] = cls
    return dict(sorted(found.items()))


TASKS: dict[int, type[MetaWorldTask]] = _discover()


def resolve(task: str | int | list | tuple) -> list[int]:
    """Benchmark name, task name (Meta-World `reach-v3` or MTBench `reach`), id, or a list of them ->
    MTBench ids in the order given (a benchmark expands to its ids in ascending order). Unknown names
    and ids raise with what is valid."""
    items = list(task) if isinstance(task, (list, tuple)) else [task]
    ids: list[int] = []
    for item in items:
        if isinstance(item, str) and item.lower() in BENCHMARKS:
            ids.extend(BENCHMARKS[item.lower()])
        elif isinstance(item, str) and item.isdigit():
            ids.append(_check_id(int(item)))
        elif isinstance(item, str):
            if item not in ID_OF:
                import difflib

                close = difflib.get_close_matches(item, list(ID_OF), n=3)
                hint = f" Did you mean {close}?" if close else ""
                raise ValueError(
                    f"unknown task {item!r}.{hint} Use a benchmark ({', '.join(BENCHMARKS)}), a Meta-World name "
                    f"like 'reach-v3', an MTBench name like 'reach', or an id 0..49."
                )
            ids.append(ID_OF[item])
        elif isinstance(item, int) and not isinstance(item, bool):
            ids.append(_check_id(item))
        else:
            raise TypeError(f"task must be a name, an id or a list of them, got {item!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"task list has duplicates: {sorted(ids)}; give each task once and use task_counts")
    return ids


def _check_id(i: int) -> int:
    if not 0 <= i < 50:
        raise ValueError(f"task id {i} is out of range; MTBench ids are 0..49 (see README task table)")
    return i


def task_class(task_id: int) -> type[MetaWorldTask]:
    if task_id not in TASKS:
        raise NotImplementedError(
            f"task {METAWORLD_NAMES[task_id]} (id {task_id}) is not ported yet; implemented: "
            f"{', '.join(METAWORLD_NAMES[i] for i in sorted(TASKS))}"
        )
    return TASKS[task_id]
