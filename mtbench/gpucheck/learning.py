"""Learning on the device: MT-PPO on MT10 for a few minutes at the paper's settings (success against wall-clock), and
one timed iteration of every other learner registered in `mtbench.algos` (SAC, GRPO, PQN, and whatever lands)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from mtbench.gpucheck.common import free
from mtbench.gpucheck.plan import Plan, task_overrides
from mtbench.gpucheck.report import Step

CONF = Path(__file__).resolve().parent.parent / "conf" / "train"


def learn_ppo(step: Step, plan: Plan, runs_dir: Path) -> None:
    """`mtbench train task=mt10` with the GPU profile (Table 3: 4096 envs, ...) for `learn_minutes`, then its
    evaluation (50 episodes per task, deterministic); success from the training episodes every 30 s."""
    from mtbench.train import run

    name = "gpu_check_mt10_ppo"
    keys = list(plan.learn_overrides) + [
        f"sim_device={plan.device}",
        "backend=warp",
        "seed=1",
        f"experiment={name}",
        f"runs_dir={runs_dir}",
        "progress=false",
    ]
    if plan.learn_minutes is not None:
        keys += [f"max_minutes={plan.learn_minutes}", "max_iterations=1000000"]
    step.say("`mtbench train " + " ".join(keys) + "`")
    results = run(keys)
    rows = [json.loads(line) for line in open(runs_dir / name / "metrics.jsonl")]
    marks, table = 30.0, []
    for i, r in enumerate(rows):
        last = i == len(rows) - 1
        if r["time"] >= marks or last:
            table.append(
                [
                    round(r["time"]),
                    r["iteration"],
                    f"{r['frames'] / 1e6:.1f}M",
                    round(r["fps"]),
                    _pct(r["success"]),
                    round(r["return"], 1) if r["return"] == r["return"] else "-",
                ]
            )
            while marks <= r["time"]:
                marks += 30.0
    step.table(["seconds", "iteration", "frames", "frames/s", "training success %", "return"], table)
    final = 100 * sum(t.success for t in results) / len(results)
    step.say(
        f"Final policy, deterministic, {len(results)} tasks: success {final:.1f} % "
        f"({', '.join(f'{t.name} {100 * t.success:.0f}' for t in results)})."
    )
    step.data.update(
        {
            "curve": [[r["time"], r["frames"], r["success"]] for r in rows],
            "final_success": final,
            "run_dir": str(runs_dir / name),
        }
    )
    bad = [k for k, v in rows[-1].items() if k.startswith("loss/") and not math.isfinite(v)]
    if bad:
        step.set("fail", f"non-finite {bad} at the last iteration")


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}"


def learners() -> list[str]:
    """Every registered learner with a train config of its own name (train/<name>.yaml)."""
    from mtbench.algos import ALGORITHMS

    return [a for a in ALGORITHMS if (CONF / f"{a}.yaml").is_file()]


def algo_runner(algo: str, plan: Plan, overrides: list[str], num_envs: int | None, task: object):
    """A `Runner` of learner `algo` on `task` (MT10 by default) with `overrides`."""
    from mtbench.config import compose, resolve_config
    from mtbench.train import Runner

    keys = [
        f"train={algo}",
        *task_overrides("mt10", task),
        f"sim_device={plan.device}",
        "backend=warp",
        "progress=false",
        *overrides,
    ]
    if num_envs is not None:
        keys.append(f"num_envs={num_envs}")
    return Runner(resolve_config(compose(keys)))


def one_iteration_each(step: Step, plan: Plan) -> None:
    """Each learner but PPO (timed in the previous steps): iterations until it learns (an off-policy warm-up), one
    more to warm up, then one timed."""
    rows = []
    names = [a for a in learners() if a != "ppo"]
    task = "mt10" if not plan.dry_run else plan.sync_task
    for k, algo in enumerate(names):
        share = step.left() / (len(names) - k)
        if share <= 0:
            rows.append([algo, "-", "-", "-", "-", "-", "skipped: the step's budget was spent"])
            continue
        t0 = time.perf_counter()
        try:
            runner = algo_runner(algo, plan, plan.algo_overrides.get(algo, []), plan.algo_num_envs, task)
        except Exception as e:  # a learner that landed without a GPU profile, say: recorded, the others still run
            rows.append([algo, "-", "-", "-", "-", "-", f"could not build: {type(e).__name__}: {e}"])
            step.set("fail", f"{algo}: {e}")
            continue
        warm = 0
        while warm < plan.max_warmup and (warm < 1 or not runner.algo.learning) and time.perf_counter() - t0 < share:
            runner.iteration()
            warm += 1
        metrics, _, t_act, t_update = runner.iteration()
        finite = all(math.isfinite(float(v)) for v in metrics.values())
        frames = runner.batch
        rows.append(
            [
                algo,
                runner.env.num_envs,
                frames,
                round(t_act, 3),
                round(t_update, 3),
                round(frames / (t_act + t_update)),
                f"{warm} iteration(s) before; learning {runner.algo.learning}; metrics finite {finite}",
            ]
        )
        step.data[algo] = {
            "envs": runner.env.num_envs,
            "frames": frames,
            "rollout_s": t_act,
            "update_s": t_update,
            "learning": runner.algo.learning,
            "finite": finite,
        }
        if not finite and runner.algo.learning:
            step.set("fail", f"{algo}: non-finite metrics")
        del runner
        free(plan.device)
    step.table(["learner", "envs", "frames per iteration", "rollout s", "update s", "frames/s", "notes"], rows)
    sizes = "each train config's GPU profile (the papers' sizes)" if not plan.algo_overrides else "toy sizes"
    step.say(f"MT10, {sizes}; one iteration as `mtbench train` runs it (rollout, update, one overflow check).")
