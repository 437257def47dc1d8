"""`mtbench bench gpu`: one command that proves and measures the whole CUDA path in at most 8 minutes on one GPU
(with Warp's kernels compiled; a cold compile comes on top and is reported), for the day a GPU is lent for minutes.

In order, each step timed against its budget and appended to one markdown report (and printed) as it ends; a step
that fails is recorded and the next one still runs:

1. machine: the GPU, its memory, the versions, the Warp features CUDA-graph capture needs;
2. kernels: every Meta-World scene and terrain type built and stepped once: Warp's compile time, the cache used;
3. tests: the engine-agreement tests (50 scenes, 21 terrain types) and the env-contract tests, Warp on the GPU;
4. graphs: CUDA-graph replay equals plain kernel launches bit for bit;
5. speed: env-steps/s of MT10, MT50 and parkour at 4096, 16,384 and 65,536 envs, with and without graphs,
   against raw MuJoCo Warp stepping of the same worlds;
6. e2e: MT-PPO training frames/s at the paper's Table 3 sizes;
7. learn: MT-PPO on MT10 for 3 minutes at the paper's settings, success against wall-clock;
8. algos: one timed iteration of every other learner (SAC, GRPO, PQN, and any that lands later);
9. syncs: every host synchronisation in one rollout and one update of each learner, with its file and line.

`dry_run=True` runs the same steps at toy sizes on Warp's CPU device and torch's CPU (the default test suite does),
so the command is known to work before a GPU sees it. The plan (sizes, budgets, tests) is in `plan.py`.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import torch

from mtbench.errors import RunStopped, UserError
from mtbench.gpucheck.plan import STEPS, SUITES, TOY_ALGO_OVERRIDES, Plan, make_plan
from mtbench.gpucheck.report import Report, Step
from mtbench.overrides import as_list, one_or_list_of, parse_overrides
from mtbench.validation import PosFloat, PosInt

DEFAULTS = {
    "dry_run": False,
    "out": "gpu_check",
    "sim_device": None,
    "steps": list(STEPS),
    "suites": list(SUITES),
    "sizes": None,
    "learn_minutes": None,
    "test_workers": None,
    "kernel_cache": None,
    "save_kernel_cache": None,
    "kernel_cache_part_mb": None,
}
HINTS = {
    "steps": one_or_list_of(STEPS),
    "suites": one_or_list_of(SUITES),
    "sizes": PosInt | list[PosInt] | None,
    "learn_minutes": PosFloat | None,
    "test_workers": int | None,
    "kernel_cache_part_mb": PosFloat | None,
}
USAGE = (
    "mtbench bench gpu [dry_run=False] [out=gpu_check] [steps=[machine,kernels,...]] [suites=[mt10,mt50,parkour]] "
    "[sizes=[4096,16384,65536]] [learn_minutes=3] [kernel_cache=DIR|FILE.tar.gz|FILE.parts.json] "
    "[save_kernel_cache=FILE.tar.gz] [kernel_cache_part_mb=15]"
)


def main(args: list[str]) -> Report:
    """The command line: options, then `run`. Exit status 1 when a step failed (the report says which)."""
    opt = parse_overrides(args, DEFAULTS, HINTS)
    if not opt["dry_run"] and not torch.cuda.is_available():
        raise UserError(
            "torch sees no CUDA GPU: `mtbench bench gpu` measures one. `mtbench bench gpu dry_run=True` "
            "runs the same steps at toy sizes on the CPU."
        )
    if opt["kernel_cache"] is not None and not Path(str(opt["kernel_cache"])).exists():
        raise UserError(f"kernel_cache={opt['kernel_cache']}: no such folder or file (a .tar.gz or a .parts.json)")
    sizes = as_list(opt["sizes"]) if opt["sizes"] is not None else None
    plan = make_plan(
        bool(opt["dry_run"]),
        opt["sim_device"],
        sizes,
        as_list(opt["suites"]),
        opt["learn_minutes"],
        opt["test_workers"],
    )
    report = run(
        plan,
        Path(str(opt["out"])),
        as_list(opt["steps"]),
        opt["kernel_cache"],
        opt["save_kernel_cache"],
        opt["kernel_cache_part_mb"],
        command="mtbench bench gpu " + " ".join(shlex.quote(a) for a in args),
    )
    if report.failed:
        raise RunStopped(
            f"{len(report.failed)} step(s) failed: {', '.join(s.title for s in report.failed)}; see {report.path}"
        )
    return report


def run(
    plan: Plan,
    out: Path,
    steps: list[str],
    kernel_cache: str | None = None,
    save_cache: str | None = None,
    part_mb: float | None = None,
    command: str = "mtbench bench gpu",
    echo: bool = True,
) -> Report:
    """Every chosen step of `plan` into `out`/report.md; returns the report."""
    from mtbench.gpucheck import machine

    out.mkdir(parents=True, exist_ok=True)
    cache_line = machine.use_kernel_cache(kernel_cache, out)  # before Warp starts
    kind = "DRY RUN at toy sizes on the CPU" if plan.dry_run else f"on {plan.device}"
    preamble = (
        f"`{command}`, {time.strftime('%Y-%m-%d %H:%M:%S')}, {kind}. Budget {_budget(plan, steps) / 60:.1f} min "
        f"plus Warp's kernel compile. {cache_line}."
    )
    report = Report(out / "report.md", "mtbench bench gpu", preamble, echo=echo)
    measured: dict[str, dict] = {}
    for name in STEPS:
        if name not in steps:
            continue
        title, fn = STEP_FUNCTIONS[name]
        with report.step(title, plan.budgets[name]) as step:
            fn(step, plan, out, measured)
        measured[name] = step.data
        if save_cache and name == "kernels":  # saved warm at once too: a run cut short still leaves it
            machine.save_kernel_cache(Path(save_cache), part_mb)
    if save_cache:
        with report.step("kernel cache saved", None) as step:
            files = machine.save_kernel_cache(Path(save_cache), part_mb)
            step.status = "info"
            step.table(["file", "MiB"], [[str(f), round(f.stat().st_size / 2**20, 1)] for f in files])
            step.say(
                f"Reuse: `mtbench bench gpu kernel_cache={files[-1]}` (or unpack the archive and point "
                "WARP_CACHE_PATH at the folder). Saved after the kernels step as well, and again here."
            )
    report.summary()
    return report


def _budget(plan: Plan, steps: list[str]) -> float:
    return sum(b for name, b in plan.budgets.items() if name in steps and b is not None)


# ---------------------------------------------------------------------------------------------------------
# the steps: (step, plan, output folder, what earlier steps measured)


def _machine(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.machine import facts

    if plan.device.type == "cuda":
        import warp as wp

        torch.cuda.set_device(plan.device)
        # freed Warp memory goes back to the device at once, so the memory checks before large sizes see it free
        wp.set_mempool_release_threshold(f"cuda:{plan.device.index or 0}", 0)
    rows = facts(plan.device)
    step.status = "info"
    step.table(["", ""], rows)
    step.data.update(dict(rows))
    if plan.device.type == "cuda":
        if rows and dict(rows).get("Warp memory pool (needed to capture MuJoCo Warp's step)") == "False":
            step.set("warn", "Warp's memory pool is off on this device: capturing MuJoCo Warp's step will fail")


def _kernels(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.common import build_env, random_actions, wait
    from mtbench.gpucheck.machine import cache_modules, folder_bytes, kernel_cache_dir

    folder = kernel_cache_dir()
    before = cache_modules(folder)
    rows, first_total, later_total = [], 0.0, 0.0
    for suite, task in plan.kernels_tasks.items():
        t0 = time.perf_counter()
        env = build_env(suite, task, None, plan.device)
        env.reset()
        acts = random_actions(env, 2)
        env.step(acts[0])
        wait(plan.device)
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        env.step(acts[1])
        wait(plan.device)
        later = time.perf_counter() - t1
        rows.append([suite, len(env.task_ids), round(first, 1), round(later, 3)])
        first_total += first
        later_total += later
        del env
    after = cache_modules(folder)
    step.status = "info"
    step.table(["scenes of", "scenes", "build + reset + first step, s", "second step, s"], rows)
    step.say(
        f"{after - before} kernel modules compiled into {folder} ({before} were cached before, "
        f"{folder_bytes(folder) / 2**20:.0f} MiB now). Compile time is about the first-step column."
    )
    step.data.update(
        {
            "compiled_modules": after - before,
            "cached_before": before,
            "first_s": first_total,
            "later_s": later_total,
            "cache_dir": str(folder),
        }
    )


def _tests(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.correctness import run_tests

    run_tests(step, [*plan.test_nodes, *plan.contract_nodes], plan.device, plan.test_workers, out)


def _graphs(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.correctness import graphs_match

    graphs_match(step, plan)


def _speed(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.speed import env_speed

    step.status = "info"
    env_speed(step, plan)


def _e2e(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.speed import e2e_speed

    step.status = "info"
    e2e_speed(step, plan, measured.get("speed", {}))


def _learn(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.learning import learn_ppo

    step.status = "info"
    learn_ppo(step, plan, out / "runs")


def _algos(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.learning import one_iteration_each

    step.status = "info"
    one_iteration_each(step, plan)


def _syncs(step: Step, plan: Plan, out: Path, measured: dict) -> None:
    from mtbench.gpucheck.syncs import hot_path_syncs

    hot_path_syncs(step, plan, TOY_ALGO_OVERRIDES)


STEP_FUNCTIONS = {
    "machine": ("machine", _machine),
    "kernels": ("Warp kernels: compile and load", _kernels),
    "tests": ("correctness: engine agreement and env contract tests on the device", _tests),
    "graphs": ("correctness: CUDA-graph replay equals plain launches", _graphs),
    "speed": ("speed: env-steps/s with and without CUDA graphs, and the MuJoCo Warp ceiling", _speed),
    "e2e": ("speed: end-to-end MT-PPO training frames/s, Table 3 sizes", _e2e),
    "learn": ("learning: MT-PPO on MT10, success against wall-clock", _learn),
    "algos": ("learners: one timed iteration each", _algos),
    "syncs": ("host syncs in the hot path", _syncs),
}

__all__ = ["USAGE", "main", "run"]
