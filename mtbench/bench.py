"""`mtbench bench env`: env-steps/s of our CPU engine, of the reference vector env, and of raw MuJoCo C
on the same scenes and threads (the ceiling), measured in one run so that the ratios are comparable.
`mtbench bench train`: end-to-end MT-PPO frames/s against env-only frames/s of the same env.
`mtbench bench update`: time of one PPO gradient step for each Table 1 method, relative to vanilla MT-PPO; with
`table=schemes`, of each gradient scheme on each network, relative to that network without a scheme.
`mtbench bench sac`: one SAC gradient step against one PPO minibatch step, for each network."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch

import mtbench
from mtbench.envs.metaworld.env import ACTION_SCALE
from mtbench.envs.metaworld.scene import FRAME_SKIP
from mtbench.errors import UserError
from mtbench.overrides import as_list, one_or_list_of, parse_overrides
from mtbench.validation import PosInt

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def ours(env, steps: int, seed: int = 0) -> float:
    gen = torch.Generator(device=env.device).manual_seed(seed)
    env.reset()
    acts = [torch.rand(env.num_envs, 4, generator=gen, device=env.device) * 2 - 1 for _ in range(16)]
    for i in range(10):
        env.step(acts[i % 16])
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        env.step(acts[i % 16])
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    return env.num_envs * steps / (time.perf_counter() - start)


def ceiling(env, steps: int, seed: int = 0) -> dict[str, float]:
    """Raw `mujoco.batch` stepping of the env's worlds (same models, same states, same threads), with random
    mocap/gripper actions written straight into the state rows: physics and nothing else (not even the
    kinematics after the last substep, which the env computes for its observation). Two layouts of the
    threads, each measured: one MuJoCo thread pool per scene stepping the scenes in turn, and the env's own
    layout (worker threads each stepping whole scenes); the ceiling is the faster one."""
    from concurrent.futures import ThreadPoolExecutor

    from mujoco import batch as mjbatch

    from mtbench.sim.queue import thread_layout

    threads = env.nthread
    workers, per_block = thread_layout(threads, len(env.blocks))
    pools = []
    for blk in env.blocks:
        own = blk.state.sim.batch
        b = mjbatch.Batch(blk.state.sim.model, nsim=own.nsim, nthread=threads)
        for name in ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart"):
            b.bind(name)[:] = own.bind(name)
        b.forward()
        pools.append(b)
    own = [blk.state.sim.batch for blk in env.blocks]
    rates = {f"one pool of {threads} threads per scene": _raw_rate(env, pools, steps, None, seed)}
    with ThreadPoolExecutor(max_workers=workers) as ex:
        rates[f"{workers} workers x {per_block} thread(s)"] = _raw_rate(env, own, steps, ex, seed)
    return rates


def _raw_rate(env, batches: list, steps: int, executor, seed: int) -> float:
    rng = np.random.default_rng(seed)
    rows = [(b, b.bind("mocap_pos"), b.bind("ctrl"), *blk.task.mocap_box) for b, blk in zip(batches, env.blocks)]
    acts = rng.uniform(-1, 1, (16, env.num_envs, 4))
    start = time.perf_counter()
    for i in range(steps):
        a_all = acts[i % 16]
        k, pending = 0, []
        for b, mocap, ctrl, low, high in rows:
            a = a_all[k : k + b.nsim]
            k += b.nsim
            mocap[:, 0] = np.clip(mocap[:, 0] + ACTION_SCALE * a[:, :3], low, high)
            ctrl[:, 0], ctrl[:, 1] = a[:, 3], -a[:, 3]
            if executor is None:
                b.step(nstep=FRAME_SKIP)
            else:
                pending.append(executor.submit(b.step, nstep=FRAME_SKIP))
        for p in pending:
            p.result()
    return env.num_envs * steps / (time.perf_counter() - start)


def reference(benchmark: str, steps: int) -> dict:
    spec = importlib.util.spec_from_file_location("record_reference", TOOLS / "record_reference.py")
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)
    python = rec.ensure_reference_venv(rec.VENV_DIR)
    out = subprocess.run(
        [str(python), str(TOOLS / "reference_speed.py"), benchmark, str(steps)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "MUJOCO_GL": "disable"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_speed(args: list[str]) -> None:
    """The runner's own training iterations (acting + update, any `train=`) vs the same env stepped with random
    actions, one process."""
    from mtbench.config import compose, resolve_config
    from mtbench.train import Runner

    mine = [a for a in args if a.startswith("iterations=")]
    rest = [a for a in args if not a.startswith("iterations=")]
    iterations = int(parse_overrides(mine, {"iterations": 10}, {"iterations": PosInt})["iterations"])
    cfg = resolve_config(compose(rest + ["progress=false"]))
    runner = Runner(cfg)
    env, algo = runner.env, runner.algo
    print(f"{env}\n{algo.describe()}, {iterations} iterations per measurement")
    env_fps = ours(env, iterations * algo.steps_per_iteration)
    runner.obs = env.reset()
    times = {"collect": 0.0, "update": 0.0}
    for i in range(iterations + 1):
        _, _, t_act, t_update = runner.iteration()
        if i:  # the first iteration warms up
            times["collect"] += t_act
            times["update"] += t_update
    total = times["collect"] + times["update"]
    frames = iterations * runner.batch
    train_fps = frames / total
    print("| measurement | frames/s |\n|---|---:|")
    print(f"| env only (random actions) | {env_fps:,.0f} |")
    print(f"| training, rollout phase | {frames / times['collect']:,.0f} |")
    print(f"| training end to end (rollout + update) | {train_fps:,.0f} |")
    print(
        f"end-to-end / env-only = {train_fps / env_fps:.2f}  (update is {100 * times['update'] / total:.0f} % of time)"
    )


def update_step(overrides: list[str], n_tasks: int, minibatch: int) -> Callable[[], float]:
    """A function timing one minibatch gradient step (forward, per-task losses, scheme, clip, Adam) of the method
    given by `overrides`, on a synthetic rollout of exactly one minibatch, in seconds."""
    from mtbench.config import compose, resolve_config
    from mtbench.train import build_algorithm

    task = "mt10" if n_tasks == 10 else "mt50"
    horizon = 32
    n_envs = minibatch // horizon
    cfg = resolve_config(compose([f"task={task}", f"num_envs={n_envs}", f"train.ppo.minibatch_size={minibatch}",
                                  "train.ppo.mini_epochs=1", "progress=false", *overrides]))  # fmt: skip
    obs_dim = 39 + n_tasks
    agent = build_algorithm(cfg, obs_dim, 4)
    gen = torch.Generator().manual_seed(0)
    task_of_env = torch.arange(n_envs) * n_tasks // n_envs
    agent.start(task_of_env)
    buf = agent.buf
    buf.obs[..., :39] = torch.randn(horizon, n_envs, 39, generator=gen)
    buf.obs[..., 39:] = torch.nn.functional.one_hot(task_of_env, n_tasks).float()
    buf.actions.normal_(generator=gen)
    buf.rewards.uniform_(generator=gen)
    buf.mu.normal_(generator=gen)
    buf.sigma.fill_(1.0)
    last_value = torch.zeros(n_envs, device=agent.device)

    def step() -> float:
        t0 = time.perf_counter()
        agent.learn(buf, last_value)
        if agent.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return step


def interleaved(steps: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median seconds per step of each of `steps`, timed in rounds of one step of each (after a warm-up round), so
    that a drift of the machine's speed hits them all alike and their ratios stay comparable."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for k, step in steps.items():
            times[k].append(step())
    return {k: float(np.median(v)) for k, v in times.items()}


def update_step_time(overrides: list[str], n_tasks: int, minibatch: int, repeats: int) -> float:
    """Median seconds of one minibatch gradient step of the method given by `overrides` (see `update_step`)."""
    return interleaved({"step": update_step(overrides, n_tasks, minibatch)}, repeats)["step"]


UPDATE_SIZES = {"mt10": (10, 16384), "mt50": (50, 25600)}  # Table 3's minibatch sizes


def update_overhead(args: list[str]) -> None:
    """Per-step update time at the MT10 and MT50 minibatch sizes of Table 3, the methods of one table timed in
    interleaved rounds: `table=methods` every Table 1 method against vanilla MT-PPO; `table=schemes` each gradient
    scheme on each network against that network's own update without a scheme."""
    from mtbench.methods import TABLE1

    opt = parse_overrides(args, {"repeats": 3, "methods": list(TABLE1), "sets": list(UPDATE_SIZES), "table": "methods",
                                 "networks": list(NETWORKS), "schemes": ["pcgrad", "cagrad"]}, {
        "repeats": PosInt, "methods": one_or_list_of(TABLE1), "sets": one_or_list_of(UPDATE_SIZES),
        "table": Literal["methods", "schemes"], "networks": one_or_list_of(NETWORKS),
        "schemes": one_or_list_of(("pcgrad", "cagrad", "famo"))})  # fmt: skip
    sets = as_list(opt["sets"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {opt['repeats']} rounds")
    if opt["table"] == "schemes":
        return _scheme_table(as_list(opt["networks"]), as_list(opt["schemes"]), sets, int(opt["repeats"]))
    keys = ["vanilla", *[m for m in as_list(opt["methods"]) if m != "vanilla"]]
    cells: dict[str, list[str]] = {k: [] for k in keys}
    for s in sets:
        n_tasks, mb = UPDATE_SIZES[s]
        t = interleaved({k: update_step(list(TABLE1[k].overrides), n_tasks, mb) for k in keys}, int(opt["repeats"]))
        cells = {k: [*cells[k], f"{t[k]:.3f} | {t[k] / t['vanilla']:.2f}x"] for k in keys}
    print("| method | overrides | " + " | ".join(f"{s.upper()} mb {UPDATE_SIZES[s][1]} (s) | vs vanilla" for s in
                                                  sets) + " |")  # fmt: skip
    print("|---|---|" + "---:|---:|" * len(sets))
    for k in keys:
        method = TABLE1[k]
        print(f"| {method.label} | `{' '.join(method.overrides) or '(defaults)'}` | " + " | ".join(cells[k]) + " |")


def _scheme_table(networks: list[str], schemes: list[str], sets: list[str], repeats: int) -> None:
    """One row per network and task set: its update without a scheme, then each scheme's and its ratio to it."""
    print("| network | set | no scheme (s) | " + " | ".join(f"{s} (s) | vs none" for s in schemes) + " |")
    print("|---|---|---:|" + "---:|---:|" * len(schemes))
    for s in sets:
        n_tasks, mb = UPDATE_SIZES[s]
        for net in networks:
            steps = {k: update_step([f"network={net}", f"scheme={k}"], n_tasks, mb) for k in ["none", *schemes]}
            t = interleaved(steps, repeats)
            cells = " | ".join(f"{t[k]:.3f} | {t[k] / t['none']:.2f}x" for k in schemes)
            print(f"| {net} | {s.upper()} | {t['none']:.3f} | {cells} |", flush=True)


NETWORKS = ("mlp", "multihead", "care", "care_mh", "moore", "moore_mh", "paco", "soft_modularization")


def sac_step_time(overrides: list[str], n_tasks: int, batch: int, repeats: int) -> float:
    """Median seconds of one SAC gradient step (critic, actor, temperatures, targets) of the method given by
    `overrides` on a synthetic replay batch of `batch` transitions."""
    from mtbench.config import compose, resolve_config
    from mtbench.train import build_algorithm

    task = "mt10" if n_tasks == 10 else "mt50"
    cfg = resolve_config(compose(["train=sac", f"task={task}", f"num_envs={n_tasks}", f"train.sac.batch_size={batch}",
                                  "train.sac.replay_buffer_size=1000", "progress=false", *overrides]))  # fmt: skip
    agent = build_algorithm(cfg, 39 + n_tasks, 4)
    gen = torch.Generator().manual_seed(0)
    task_of = torch.arange(batch) % n_tasks
    onehot = torch.nn.functional.one_hot(task_of, n_tasks).float()
    b = {"obs": torch.cat([torch.randn(batch, 39, generator=gen), onehot], 1),
         "next_obs": torch.cat([torch.randn(batch, 39, generator=gen), onehot], 1),
         "action": torch.rand(batch, 4, generator=gen) * 2 - 1, "reward": torch.rand(batch, generator=gen),
         "discount": torch.full((batch,), 0.99**16), "task": task_of}  # fmt: skip
    return _median_step(agent, {k: v.to(agent.device) for k, v in b.items()}, repeats)


def _median_step(agent, batch: dict[str, torch.Tensor], repeats: int) -> float:
    """Median seconds of `agent.gradient_step(batch)` over `repeats` steps after a warm-up step."""
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        agent.gradient_step(batch)
        if agent.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))  # the first step warms up


def sac_vs_ppo(args: list[str]) -> None:
    """One SAC gradient step (batch 8192, Table 6) against one PPO minibatch step (16384, Table 3), MT10, for each
    network: what an update costs in each algorithm's own geometry."""
    opt = parse_overrides(args, {"repeats": 3, "networks": list(NETWORKS), "sac_batch": 8192,
                                 "ppo_minibatch": 16384}, {"repeats": PosInt, "networks": one_or_list_of(NETWORKS),
                                 "sac_batch": PosInt, "ppo_minibatch": PosInt})  # fmt: skip
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {opt['repeats']} steps, MT10")
    print(f"| network | SAC step, batch {opt['sac_batch']} (s) | PPO minibatch step, {opt['ppo_minibatch']} (s) "
          "| SAC / PPO |\n|---|---:|---:|---:|")  # fmt: skip
    for net in as_list(opt["networks"]):
        sac = sac_step_time([f"network={net}"], 10, int(opt["sac_batch"]), int(opt["repeats"]))
        ppo = update_step_time([f"network={net}"], 10, int(opt["ppo_minibatch"]), int(opt["repeats"]))
        print(f"| {net} | {sac:.3f} | {ppo:.3f} | {sac / ppo:.2f} |", flush=True)


def brc_step_time(width: int, n_tasks: int, batch: int, repeats: int) -> tuple[float, int]:
    """Median seconds of one BRC gradient step (critic ensemble, targets, actor, temperature) with a critic of
    `width`, on a synthetic replay batch; and the critic's parameter count."""
    from mtbench.config import compose, resolve_config
    from mtbench.train import build_algorithm

    task = "mt10" if n_tasks == 10 else "mt50"
    cfg = resolve_config(compose(["train=brc", f"task={task}", f"num_envs={n_tasks}", f"train.brc.batch_size={batch}",
                                  "train.brc.buffer_per_task=10", f"train.brc.critic_width={width}",
                                  "progress=false"]))  # fmt: skip
    agent = build_algorithm(cfg, 39 + n_tasks, 4)
    agent.start(torch.arange(n_tasks))
    gen = torch.Generator().manual_seed(0)
    b = {"obs": torch.randn(batch, 39, generator=gen), "next_obs": torch.randn(batch, 39, generator=gen),
         "action": torch.rand(batch, 4, generator=gen) * 2 - 1, "reward": torch.rand(batch, generator=gen),
         "discount": torch.full((batch,), 0.99), "task": torch.arange(batch) % n_tasks}  # fmt: skip
    step = _median_step(agent, {k: v.to(agent.device) for k, v in b.items()}, repeats)
    return step, agent.parameter_counts()["critic"]


def brc_widths(args: list[str]) -> None:
    """One BRC gradient step at each critic width (the paper's presets), MT10, the paper's batch of 1024."""
    opt = parse_overrides(args, {"repeats": 3, "widths": [256, 512, 1024, 2048], "batch": 1024},
                          {"repeats": PosInt, "widths": list[PosInt], "batch": PosInt})  # fmt: skip
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {opt['repeats']} steps, MT10, "
          f"batch {opt['batch']}")  # fmt: skip
    print("| critic width | critic parameters | BRC gradient step (s) | vs width 256 |\n|---:|---:|---:|---:|")
    first = None
    for w in opt["widths"]:
        t, params = brc_step_time(int(w), 10, int(opt["batch"]), int(opt["repeats"]))
        first = first or t
        print(f"| {w} | {params:,} | {t:.3f} | {t / first:.1f}x |", flush=True)


def table1(args: list[str]) -> None:
    """Train every Table 1 method for the same number of iterations, one after the other, and tabulate the
    final deterministic success and return beside the paper's (which is at 250M frames: a short run is a
    smoke test of stability, not a reproduction). `reuse=True` takes a method's finished run (its eval.json)
    instead of training it again, so an interrupted table can be completed."""
    from mtbench.eval import TaskResult
    from mtbench.methods import TABLE1
    from mtbench.train import run

    opt = parse_overrides(args, {"task": "mt10", "iterations": 60, "seed": 1, "methods": list(TABLE1),
                                 "out": "benchmarks/table1_mt10_cpu", "num_envs": 500, "runs_dir": "runs",
                                 "reuse": False},
                          {"iterations": PosInt, "methods": one_or_list_of(TABLE1)})  # fmt: skip
    out = Path(str(opt["out"]))
    out.mkdir(parents=True, exist_ok=True)
    frames = int(opt["iterations"]) * 32 * int(opt["num_envs"])
    header = [
        f"| method | overrides | success % ({str(opt['task']).upper()}) | return | frames | training min "
        f"| non-finite | paper success %, 250M frames |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for key in as_list(opt["methods"]):
        method = TABLE1[key]
        name = f"table1_{opt['task']}_{key}_s{opt['seed']}_it{opt['iterations']}"
        run_dir = Path(str(opt["runs_dir"])) / name
        if opt["reuse"] and (run_dir / "eval.json").is_file():
            results = [TaskResult(**r) for r in json.loads((run_dir / "eval.json").read_text())]
        else:
            results = run([f"task={opt['task']}", f"seed={opt['seed']}", f"max_iterations={opt['iterations']}",
                           f"num_envs={opt['num_envs']}", "max_minutes=null", f"experiment={name}",
                           f"runs_dir={opt['runs_dir']}", "progress=false", *method.overrides])  # fmt: skip
        metrics = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
        minutes = metrics[-1]["time"] / 60
        bad = sum(not all(np.isfinite(v) for k, v in m.items() if k.startswith("loss/")) for m in metrics)
        success = 100 * sum(r.success for r in results) / len(results)
        ret = sum(r.mean_return for r in results) / len(results)
        paper = method.paper_mt10 if opt["task"] == "mt10" else method.paper_mt50
        rows.append(f"| {method.label} | `{' '.join(method.overrides) or '(defaults)'}` | {success:.1f} | {ret:.1f} | "
                    f"{frames / 1e6:.2f}M | {minutes:.1f} | {bad} | {paper[0]:.2f} ± {paper[1]:.2f} |")  # fmt: skip
        table = "\n".join(header + rows)
        (out / "table1.md").write_text(table + "\n")
        print(table, flush=True)


def main(args: list[str]) -> None:
    if args and args[0] == "train":
        return train_speed(args[1:])
    if args and args[0] == "update":
        return update_overhead(args[1:])
    if args and args[0] == "table1":
        return table1(args[1:])
    if args and args[0] == "sac":
        return sac_vs_ppo(args[1:])
    if args and args[0] == "brc":
        return brc_widths(args[1:])
    if not args or args[0] != "env":
        raise UserError(
            "usage: mtbench bench env [task=mt10] [num_envs=500] [steps=200] [repeats=1] [reference=True] ...\n"
            "       mtbench bench train [task=mt10] [iterations=10] [any mtbench train key=value]\n"
            "       mtbench bench update [repeats=3] [methods=vanilla,pcgrad,...] [sets=mt10,mt50]\n"
            "       mtbench bench update table=schemes [networks=mlp,paco,...] [schemes=pcgrad,cagrad] [sets=...]\n"
            "       mtbench bench table1 [task=mt10] [iterations=60] [seed=1] [methods=...] [out=DIR]\n"
            "       mtbench bench sac [repeats=3] [networks=mlp,moore,...] [sac_batch=8192] [ppo_minibatch=16384]\n"
            "       mtbench bench brc [repeats=3] [widths=[256,512,1024,2048]] [batch=1024]"
        )
    opt = parse_overrides(
        args[1:],
        {
            "task": "mt10",
            "num_envs": 500,
            "steps": 200,
            "reference": True,
            "ref_steps": 300,
            "ceiling": True,
            "sim_device": "cpu",
            "backend": "auto",
            "nthread": None,
            "repeats": 1,
        },
    )
    env = mtbench.make(
        opt["task"],
        num_envs=opt["num_envs"],
        device=opt["sim_device"],
        backend=opt["backend"],
        nthread=opt["nthread"],
        check_actions=False,
        episode_length=150,
        goal_mode="rand",
        random_init_progress=True,
    )
    print(f"{env}  threads={env.nthread}  repeats={opt['repeats']} (medians)")
    runs: dict[str, list[float]] = {}
    for _ in range(int(opt["repeats"])):  # ours and the ceiling alternate, so drifts of the machine hit both
        runs.setdefault("mtbench", []).append(ours(env, opt["steps"]))
        if opt["ceiling"] and env.backend == "cpu":
            env.reset()
            layouts = ceiling(env, opt["steps"])
            for name, v in layouts.items():
                runs.setdefault(f"raw MuJoCo C, {name}", []).append(v)
            runs.setdefault("raw MuJoCo C (ceiling)", []).append(max(layouts.values()))
    if len(runs) > 1:
        ratios = [o / c for o, c in zip(runs["mtbench"], runs["raw MuJoCo C (ceiling)"])]
        print("ours / ceiling per repeat: " + ", ".join(f"{r:.2f}" for r in ratios))
    rows = {name: float(np.median(v)) for name, v in runs.items()}
    if opt["reference"] and str(opt["task"]).lower() in ("mt10", "mt25", "mt50"):
        ref = reference(str(opt["task"]).upper(), opt["ref_steps"])
        rows[f"reference gymnasium sync (metaworld, mujoco {ref['mujoco']})"] = ref["env_steps_per_s"]
    print("| engine | env-steps/s | vs ours |\n|---|---:|---:|")
    for name, v in rows.items():
        print(f"| {name} | {v:,.0f} | {v / rows['mtbench']:.2f} |")
    if "raw MuJoCo C (ceiling)" in rows:
        print(f"ours / ceiling = {float(np.median(ratios)):.2f} (median of the repeats)")
    ref_key = next((k for k in rows if k.startswith("reference")), None)
    if ref_key:
        print(f"ours / reference = {rows['mtbench'] / rows[ref_key]:.1f}x")
