"""Task names, MTBench ids, benchmark sets, and the table of implemented task classes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from mtbench.envs.metaworld import tasks as _tasks_pkg
from mtbench.envs.metaworld.task import MetaWorldTask

# MTBench's TASK_IDX_TO_NAME order (upstream franka_base.py); id i <-> MTBENCH_NAMES[i]
MTBENCH_NAMES = (
    "assembly", "basketball", "bin_picking", "box_close", "button_press_topdown",
    "button_press_topdown_wall", "button_press", "button_press_wall", "coffee_button", "coffee_pull",
    "coffee_push", "dial_turn", "disassemble", "door_close", "door_lock",
    "door_unlock", "door_open", "drawer_close", "drawer_open", "faucet_close",
    "faucet_open", "hammer", "hand_insert", "handle_press_side", "handle_press",
    "handle_pull_side", "handle_pull", "lever_pull", "peg_insert_side", "peg_unplug_side",
    "pick_out_of_hole", "pick_place", "pick_place_wall", "plate_slide_back_side", "plate_slide_back",
    "plate_slide_side", "plate_slide", "push_back", "push", "push_wall",
    "reach", "reach_wall", "shelf_place", "soccer", "stick_pull",
    "stick_push", "sweep_into_goal", "sweep", "window_close", "window_open",
)  # fmt: skip


def _metaworld_name(mtbench_name: str) -> str:
    return {"sweep_into_goal": "sweep-into-v3"}.get(mtbench_name, mtbench_name.replace("_", "-") + "-v3")


METAWORLD_NAMES = tuple(_metaworld_name(n) for n in MTBENCH_NAMES)
ID_OF = {**{n: i for i, n in enumerate(METAWORLD_NAMES)}, **{n: i for i, n in enumerate(MTBENCH_NAMES)}}

MT10_IDS = (4, 16, 17, 18, 28, 31, 38, 40, 48, 49)
MT25_NAMES = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3", "coffee-pull-v3",
    "pick-out-of-hole-v3", "disassemble-v3", "pick-place-wall-v3", "basketball-v3", "stick-pull-v3",
    "button-press-wall-v3", "faucet-open-v3", "door-lock-v3", "lever-pull-v3", "sweep-into-v3",
    "faucet-close-v3", "coffee-button-v3", "button-press-topdown-wall-v3", "dial-turn-v3",
)  # fmt: skip
BENCHMARKS = {
    "mt10": MT10_IDS,
    "mt25": tuple(sorted(ID_OF[n] for n in MT25_NAMES)),
    "mt50": tuple(range(50)),
}


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
