"""Speed on the device: env-steps/s of each suite at each size, with and without CUDA graphs, against the raw MuJoCo
Warp stepping of the same worlds (the ceiling); end-to-end MT-PPO frames/s at the paper's Table 3 sizes.

Sizes grow by 4x; before each one the step predicts its memory (from the last size's measured bytes per world) and
its time (from the last size's step rate), and records a skip with the reason when either will not fit."""

from __future__ import annotations

import time

import torch

from mtbench.envs.metaworld.scene import FRAME_SKIP
from mtbench.envs.parkour.robot import DECIMATION
from mtbench.gpucheck.common import build_env, free, free_memory, random_actions, set_capture, timed_steps, wait
from mtbench.gpucheck.plan import TOY_ALGO_OVERRIDES, Plan, task_overrides
from mtbench.gpucheck.report import Step

SUBSTEPS = {"mt10": FRAME_SKIP, "mt50": FRAME_SKIP, "parkour": DECIMATION}
"""Physics steps per env step: Meta-World's frame skip, the Go1's PD decimation (PD in the engine)."""
MEMORY_MARGIN = 1.3
"""Predicted bytes x this, plus 2 GiB, must be free before a larger size is built."""


def ceiling(env, substeps: int, min_seconds: float, min_steps: int = 3) -> float:
    """World-steps/s of MuJoCo Warp's own `step` (`substeps` of them per env step) on every block of `env`, captured,
    from the states and controls the env left: physics and nothing else (no observation, reward, reset or torch)."""
    blocks = [b.sim for b in env.blocks]
    for sim in blocks:  # the first call captures
        sim.step_physics_only(substeps)
    wait(env.device)
    start, n = time.perf_counter(), 0
    while n < min_steps or time.perf_counter() - start < min_seconds:
        for sim in blocks:
            sim.step_physics_only(substeps)
        n += 1
        if n >= min_steps:
            wait(env.device)
    wait(env.device)
    return env.num_envs * n / (time.perf_counter() - start)


def env_speed(step: Step, plan: Plan) -> None:
    """The table of env-steps/s; each suite gets an equal share of the step's budget."""
    dev = plan.device
    rows = []
    suites = list(plan.tasks.items())
    for k, (suite, task) in enumerate(suites):
        share_end = step.elapsed() + step.left() / (len(suites) - k)
        per_world, last = None, None
        for n in plan.sizes:
            left = share_end - step.elapsed()
            why = _cannot(dev, n, per_world, last, left, plan.measure_seconds)
            if why:
                rows.append([suite, n, "-", "-", "-", "-", f"skipped: {why}"])
                continue
            free(dev)
            mem0 = free_memory(dev)[0]
            t0 = time.perf_counter()
            env = build_env(suite, task, n, dev)
            env.reset()
            built = time.perf_counter() - t0
            acts = random_actions(env, 16)
            for a in acts[:2]:  # capture and warm
                env.step(a)
            wait(dev)
            if dev.type == "cuda":
                per_world = max(1.0, (mem0 - free_memory(dev)[0]) / n)
            steps, secs = timed_steps(env, acts, plan.measure_seconds, plan.min_steps)
            graphs = n * steps / secs
            set_capture(env, False)
            steps_l, secs_l = timed_steps(env, acts, plan.measure_seconds, min_steps=2)
            launched = n * steps_l / secs_l
            set_capture(env, True)
            raw = ceiling(env, SUBSTEPS[suite], plan.measure_seconds, plan.min_steps)
            mem = f"{per_world / 1024:.0f} KiB/world" if per_world else "-"
            rows.append(
                [
                    suite,
                    n,
                    round(graphs),
                    round(launched),
                    round(raw),
                    round(graphs / raw, 2),
                    f"built in {built:.1f} s; {mem}",
                ]
            )
            step.data.setdefault(suite, {})[n] = {
                "graphs": graphs,
                "launched": launched,
                "ceiling": raw,
                "build_s": built,
                "bytes_per_world": per_world,
            }
            last = (n, built, secs / steps, secs_l / steps_l)
            del env, acts
            free(dev)
    step.table(
        [
            "suite",
            "envs",
            "env-steps/s, CUDA graphs",
            "env-steps/s, launched",
            "raw MuJoCo Warp (ceiling)",
            "graphs / ceiling",
            "notes",
        ],
        rows,
    )
    step.say(
        f"Random actions; tasks: {', '.join(f'{s}={t}' for s, t in plan.tasks.items())}. Each rate is timed over at "
        f"least {plan.measure_seconds:g} s after 2 warm steps (the first captures). The ceiling steps MuJoCo Warp "
        "alone (captured, the same worlds and states) and nothing else."
    )


def _cannot(
    dev: torch.device,
    n: int,
    per_world: float | None,
    last: tuple[int, float, float, float] | None,
    left: float,
    min_seconds: float,
) -> str | None:
    """Why size `n` cannot be run now, or None. `last`: (envs, build s, s per step with graphs, s per launched step)
    at the size before; graph steps and the build scale with the worlds, a launched step (launch-bound) at least
    keeps its time."""
    if dev.type == "cuda" and per_world is not None:
        free_b, _ = free_memory(dev)
        need = per_world * n * MEMORY_MARGIN + 2 * 2**30
        if need > free_b:
            return f"needs about {need / 2**30:.1f} GiB, {free_b / 2**30:.1f} GiB free"
    predicted = 3 * min_seconds
    if last is not None:
        n0, build, graph_step, launched_step = last
        grow = n / n0
        # the build, 2 warm + the timed graph steps, 2 launched steps, the ceiling (about a graph step each)
        predicted += build * grow + 8 * graph_step * grow + 2 * max(launched_step, graph_step * grow)
    if left <= 0 or predicted > left:
        return f"predicted {predicted:.0f} s, {max(left, 0):.0f} s of the budget left"
    return None


# ---------------------------------------------------------------------------------------------------------
# end-to-end training frames/s


def e2e_speed(step: Step, plan: Plan, env_rates: dict) -> None:
    """MT-PPO's own iterations (rollout + update) at the paper's sizes (each train config's GPU profile: Table 3, and
    Table 7 for parkour) vs env-only stepping of the same env."""
    from mtbench.config import compose, resolve_config
    from mtbench.train import Runner

    dev = plan.device
    rows = []
    for suite, task in plan.tasks.items():
        if suite not in plan.e2e_suites:
            continue
        left = step.left()
        overrides = task_overrides(suite, task)
        if plan.dry_run:
            overrides += ["num_envs=2", *TOY_ALGO_OVERRIDES["ppo"]]
        cfg = resolve_config(compose(overrides + [f"sim_device={dev}", "backend=warp", "progress=false"]))
        n, horizon = int(cfg.num_envs), int(cfg.train.ppo.horizon)
        rate = _known_rate(env_rates.get(suite, {}), n)
        if left <= 0 or (rate and 3 * horizon * n / rate > left):
            rows.append([suite, n, "-", "-", "-", "-", f"skipped: {max(left, 0):.0f} s of the budget left"])
            continue
        free(dev)
        runner = Runner(cfg)
        env, algo = runner.env, runner.algo
        env_fps = _env_only(env, horizon, plan)
        runner.obs = env.reset()
        runner.iteration()  # warm: graphs, cuBLAS, allocator
        times: list[tuple[float, float]] = []
        most = 1 if plan.dry_run else 3
        while not times or (len(times) < most and 1.5 * sum(a + u for a, u in times) / len(times) < step.left()):
            _, _, t_act, t_update = runner.iteration()
            times.append((t_act, t_update))
        act = sum(t for t, _ in times) / len(times)
        upd = sum(u for _, u in times) / len(times)
        frames = runner.batch
        rows.append(
            [
                suite,
                n,
                round(frames / (act + upd)),
                round(frames / act),
                round(env_fps),
                round(frames / (act + upd) / env_fps, 2),
                f"{len(times)} iteration(s) of {frames:,} frames; update {100 * upd / (act + upd):.0f} % of the time",
            ]
        )
        step.data[suite] = {
            "num_envs": n,
            "train_fps": frames / (act + upd),
            "rollout_fps": frames / act,
            "env_fps": env_fps,
            "update_s": upd,
            "rollout_s": act,
            "minibatch": int(cfg.train.ppo.minibatch_size),
        }
        del runner, env, algo
        free(dev)
    step.table(
        ["suite", "envs", "training frames/s", "rollout-phase frames/s", "env-only steps/s", "training / env", "notes"],
        rows,
    )
    sizes = ("each train config's GPU profile (MT10: Table 3, 4096 envs, horizon 32, minibatch 16384, 5 epochs; MT50: "
             "6400 envs, minibatch 25600; parkour: 4096 envs)") if not plan.dry_run else "toy sizes"  # fmt: skip
    step.say(f"MT-PPO at {sizes}; env-only: the same env, random actions, CUDA graphs.")


def _known_rate(rates: dict, n: int) -> float | None:
    """The env-steps/s measured at the nearest size, if any."""
    if not rates:
        return None
    near = min(rates, key=lambda k: abs(k - n))
    return rates[near]["graphs"]


def _env_only(env, horizon: int, plan: Plan) -> float:
    acts = random_actions(env, 16)
    env.reset()
    for a in acts[:2]:
        env.step(a)
    steps, secs = timed_steps(env, acts, plan.measure_seconds / 2, min_steps=min(horizon, 8))
    return env.num_envs * steps / secs
