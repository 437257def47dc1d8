"""What `mtbench bench gpu` runs, at what sizes, in how much time: the GPU plan (paper sizes, 8 minutes with a warm
kernel cache) and the dry run (toy sizes on Warp's CPU device and torch's CPU, for the default test suite).

Every number that sizes the run lives here, so that fitting the command into a lease is one file's business.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

SUITES = ("mt10", "mt50", "parkour")
STEPS = ("machine", "kernels", "tests", "graphs", "speed", "e2e", "learn", "algos", "syncs")
"""Step names, in the order they run (`steps=[...]` picks some)."""

GPU_BUDGETS = {
    "machine": 5.0,
    "kernels": None,  # the cold compile takes what it takes; the report gives it, and it is not in the 8 minutes
    "tests": 100.0,
    "graphs": 15.0,
    "speed": 90.0,
    "e2e": 30.0,
    "learn": 190.0,  # 3 minutes of training, then the evaluation
    "algos": 30.0,
    "syncs": 20.0,
}
"""Seconds per step on one GPU: 480 in all, the issue's 8 minutes, once Warp's CUDA kernels are compiled."""

DRY_BUDGETS = {
    "machine": 5.0,
    "kernels": None,
    "tests": 60.0,
    "graphs": 20.0,
    "speed": 20.0,
    "e2e": 20.0,
    "learn": 30.0,
    "algos": 40.0,
    "syncs": 30.0,
}
"""Caps for the dry run on 2 shared CPU cores."""

TEST_FILES_AGREE = (
    "tests/test_env_warp.py",  # the 50 Meta-World scenes, Warp vs C
    "tests/test_sim_engines.py",
    "tests/test_parkour_go1.py",
    "tests/test_parkour_env.py::test_warp_engine_short_run",
    "tests/test_parkour_env.py::test_robot_stands_alike_on_both_engines",
    "tests/test_parkour_env.py::test_robot_stands_alike_on_both_engines_all_types",  # the other 18 of the 21 types
    "tests/test_parkour_env.py::test_fallen_robot_rests_alike_on_both_engines",
    "tests/test_parkour_env.py::test_fallen_robot_rests_alike_on_both_engines_all_types",
    "tests/test_parkour_terrains.py::test_drop_rests_alike_on_both_engines",
    "tests/test_parkour_terrains.py::test_drop_rests_alike_on_both_engines_all_types",
    "tests/test_parkour_terrains.py::test_drop_box_rests_alike_on_both_engines",
)
"""The engine-agreement tests, run with their Warp side on the GPU (tests/devices.py); slow ones included."""
TEST_FILES_CONTRACT = ("tests/test_env.py", "tests/test_env_core.py", "tests/test_actions.py")
"""The env-contract tests, their envs on the GPU."""
DRY_TESTS = ("tests/test_env_core.py::test_suite_entries",)
"""One quick test: the dry run proves the pytest step works (the suite itself runs the real ones on the CPU)."""

TOY_ALGO_OVERRIDES = {
    "ppo": ["train.ppo.horizon=2", "train.ppo.minibatch_size=4", "train.ppo.mini_epochs=1"],
    "sac": [
        "train.sac.batch_size=4",
        "train.sac.replay_buffer_size=64",
        "train.sac.gradient_steps_per_itr=1",
        "train.sac.nstep=1",
        "train.sac.num_warmup_steps=1",
    ],
    "grpo": ["train.grpo.horizon=2", "train.grpo.minibatch_size=4", "train.grpo.mini_epochs=1"],
    "pqn": ["train.pqn.horizon=2", "train.pqn.num_minibatches=2", "train.pqn.mini_epochs=1"],
    "brc": [
        "train.brc.batch_size=4",
        "train.brc.buffer_per_task=64",
        "train.brc.gradient_steps_per_itr=1",
        "train.brc.warmup_per_task=2",
        "train.brc.critic_width=32",
    ],
}
"""Settings that shrink each learner to a few envs, and its warm-up to a few steps (a learner not listed runs with its
train config's profile at `num_envs`): the dry run, and the sync check, where sizes do not matter."""


@dataclass(frozen=True)
class Plan:
    """The sizes, tasks and budgets of one run of `mtbench bench gpu`."""

    dry_run: bool
    device: torch.device
    tasks: dict[str, object]
    """Suite name -> the task argument of `mtbench.make`."""
    sizes: tuple[int, ...]
    budgets: dict[str, float | None]
    measure_seconds: float
    """Minimum timed stretch of one speed measurement."""
    learn_minutes: float | None
    learn_overrides: tuple[str, ...]
    kernels_tasks: dict[str, object]
    """What the kernel warm-up builds: every scene once (all 50 Meta-World scenes, the 21 terrain types)."""
    test_nodes: tuple[str, ...]
    contract_nodes: tuple[str, ...]
    test_workers: int
    graph_tasks: dict[str, list] = field(
        default_factory=lambda: {
            "metaworld": ["reach-v3", "drawer-open-v3", "pick-place-v3", "door-lock-v3"],
            "parkour": [0, 6, 20],
        }
    )
    """What the graphs-vs-launches comparison steps: contact-rich scenes, a reset that re-settles the hand."""
    graph_steps: int = 12
    graph_per_task: int = 32
    min_steps: int = 3
    """Fewest timed env steps of one speed measurement."""
    e2e_suites: tuple[str, ...] = SUITES
    """Suites whose end-to-end training speed is measured (the dry run skips MT50's: the same code as MT10's)."""
    algo_overrides: dict[str, list[str]] = field(default_factory=dict)
    """Per learner, for the one-iteration step (empty: each learner's GPU profile, the paper's sizes). The sync check
    always runs the toy sizes of TOY_ALGO_OVERRIDES: syncs do not depend on sizes."""
    algo_num_envs: int | None = None
    sync_task: object = "mt10"
    sync_num_envs: int = 20
    max_warmup: int = 64
    """Iterations a learner may take to start learning (an off-policy warm-up) before it is timed or recorded."""


def make_plan(
    dry_run: bool,
    device: str | None,
    sizes: list[int] | None,
    suites: list[str] | None,
    learn_minutes: float | None,
    test_workers: int | None,
) -> Plan:
    """The GPU plan, or the dry run's toy one; explicit arguments replace the plan's own values."""
    chosen = tuple(suites or SUITES)
    if dry_run:  # one scene per suite, one or two worlds: Warp's CPU device takes ~0.1 s per scene and step
        tasks = {"mt10": ["reach-v3"], "mt50": ["door-lock-v3"], "parkour": [6]}
        return Plan(
            dry_run=True,
            device=torch.device(device or "cpu"),
            tasks={k: v for k, v in tasks.items() if k in chosen},
            sizes=tuple(sizes or (1, 2)),
            budgets=dict(DRY_BUDGETS),
            measure_seconds=0.0,
            learn_minutes=learn_minutes,
            learn_overrides=(
                "task_id=[reach-v3]",
                "num_envs=2",
                "max_iterations=1",
                "env.episode_length=4",
                "eval.episodes_per_task=1",
                *TOY_ALGO_OVERRIDES["ppo"],
            ),
            kernels_tasks={"metaworld": ["reach-v3", "door-lock-v3"], "parkour": [6]},
            test_nodes=DRY_TESTS,
            contract_nodes=(),
            test_workers=test_workers or 0,
            graph_tasks={"metaworld": ["reach-v3"], "parkour": [6]},
            graph_steps=4,
            min_steps=2,
            e2e_suites=("mt10", "parkour"),
            graph_per_task=1,
            algo_overrides=TOY_ALGO_OVERRIDES,
            algo_num_envs=2,
            sync_task=["push-v3"],  # its reward reads the gripper's caging terms (gripper_caging)
            sync_num_envs=2,
            max_warmup=8,
        )
    tasks = {"mt10": "mt10", "mt50": "mt50", "parkour": "parkour_hard"}
    return Plan(
        dry_run=False,
        device=torch.device(device or "cuda:0"),
        tasks={k: v for k, v in tasks.items() if k in chosen},
        sizes=tuple(sizes or (4096, 16384, 65536)),
        budgets=dict(GPU_BUDGETS),
        measure_seconds=1.0,
        learn_minutes=3.0 if learn_minutes is None else learn_minutes,
        learn_overrides=("task=mt10",),
        kernels_tasks={"metaworld": "mt50", "parkour": "parkour_hard"},
        test_nodes=TEST_FILES_AGREE,
        contract_nodes=TEST_FILES_CONTRACT,
        test_workers=test_workers if test_workers is not None else min(8, os.cpu_count() or 1),
        sync_task="mt10",
        sync_num_envs=20,
    )


def make_kwargs(suite: str, task: object) -> dict:
    """`mtbench.make` arguments that a suite's task list needs (terrain ids are Meta-World ids unless told)."""
    return {"suite": "parkour"} if suite == "parkour" and not isinstance(task, str) else {}


def task_overrides(suite: str, task: object) -> list[str]:
    """`mtbench train` keys selecting a suite's tasks (a list of terrain ids needs `suite=parkour`)."""
    if isinstance(task, str):
        return [f"task={task}"]
    keys = ["task_id=[" + ",".join(str(t) for t in task) + "]"]
    return keys + (["suite=parkour"] if suite == "parkour" else [])
