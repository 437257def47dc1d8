"""`mtbench train ...` / `python -m mtbench.train ...`: the runner. Any algorithm of `mtbench.algos` (`train=ppo`,
`train=sac`, ...) on the multi-task env, with a run directory, checkpoints, resume, a progress bar, learning
curves and a summary table; `test=True` evaluates a checkpoint.

An iteration is the algorithm's `steps_per_iteration` vector steps (acting and observing, all on the device)
then its update. The runner names no algorithm: it calls the interface of `mtbench.algos.base.Algorithm`. Host
syncs happen once per iteration, for logging, never inside the rollout or the update.

Under `torchrun` (README "More than one machine") every rank runs this runner on its share of the envs
(`config.shard_config`); the ranks agree on each iteration's logged row through one all-reduce, so they take the
same decisions (divergence, best checkpoint, stop), and rank 0 alone writes the run directory and the terminal.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import textwrap
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

import mtbench
from mtbench import distributed
from mtbench.algos import ALGORITHMS, RANK_SEED_STRIDE, Algorithm, make_algorithm
from mtbench.checkpoint import load_checkpoint_file
from mtbench.config import RESUME_KEYS, TEST_KEYS, ConfigError, compose, load_config, shard_config
from mtbench.envs.core import torch_single_threaded
from mtbench.envs.suites import suite_of
from mtbench.errors import RunStopped, UserError, run_command
from mtbench.eval import TaskResult, format_table, pool_over_ranks, run_episodes
from mtbench.nets.plasticity import plasticity_metrics
from mtbench.runlog import RunLog
from mtbench.scaling import apply_match
from mtbench.sim.capacity import SimOverflowError

SMOOTH = 10  # iterations over which "recent success" (progress bar, best checkpoint) is averaged
PROBE_SIZE = 1024  # observations in the plasticity probe batch


class EpisodeStats:
    """Per-task sums over episodes that ended since the last `pop`: one scatter per step, no host sync."""

    def __init__(self, n_tasks: int, device: torch.device):
        self.n_tasks, self.device = n_tasks, device
        self.reset()

    def reset(self) -> None:
        z = lambda: torch.zeros(self.n_tasks, dtype=torch.float64, device=self.device)
        self.count, self.success, self.ret, self.length = z(), z(), z(), z()

    def add(self, episode: dict[str, torch.Tensor], task: torch.Tensor) -> None:
        done = episode["done"].to(torch.float64)
        self.count.index_add_(0, task, done)
        self.success.index_add_(0, task, done * episode["success"].to(torch.float64))
        self.ret.index_add_(0, task, done * episode["return"].to(torch.float64))
        self.length.index_add_(0, task, done * episode["length"].to(torch.float64))

    def take(self) -> torch.Tensor:
        """The sums (4, n_tasks): episodes, successes, returns, lengths; then starts again from zero."""
        out = torch.stack([self.count, self.success, self.ret, self.length])
        self.reset()
        return out

    @staticmethod
    def means(sums: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-task episode count and mean success, return and length (NaN for a task without episodes) of `take`'s
        sums (of one process, or added over the ranks of a torchrun job)."""
        count, success, ret, length = sums
        n = count.clamp_min(1.0)
        nan = torch.full_like(n, float("nan"))
        has = count > 0
        return {
            "episodes": count.clone(),
            "success": torch.where(has, success / n, nan),
            "return": torch.where(has, ret / n, nan),
            "length": torch.where(has, length / n, nan),
        }

    def pop(self) -> dict[str, torch.Tensor]:
        return self.means(self.take())


def build_env(cfg: DictConfig, **overrides):
    """The training env of `cfg`: its suite's options section (`env.*` or `parkour.*`); `overrides` replace
    options (evaluation). Rank r of a torchrun job seeds it with seed + r * RANK_SEED_STRIDE."""
    suite = suite_of(cfg.task, cfg.suite)
    opts = {
        # NaN actions are caught once per iteration through the losses instead of a host sync per step
        "check_actions": torch.device(cfg.sim_device).type == "cpu",
        "task_counts": list(cfg.task_counts),
        **cfg[suite.options_key],
        **overrides,
    }
    # a set's name (parkour_hard: its rows' difficulties and curriculum) says more than its ids
    task = cfg.task if cfg.task_id is None and isinstance(cfg.task, str) else list(cfg.task_ids)
    return mtbench.make(
        task, num_envs=sum(opts["task_counts"]), device=cfg.sim_device, backend=cfg.backend,
        seed=cfg.seed + RANK_SEED_STRIDE * distributed.rank(), suite=suite.name, **opts,
    )  # fmt: skip


def build_algorithm(cfg: DictConfig, obs_dim: int, action_dim: int) -> Algorithm:
    """The learner `train.algo` with its settings `train.<algo>`, the network and the MTRL scheme of `cfg`; a
    setting the learner, network or scheme refuses is the user's to change (ConfigError, one line)."""
    algo = cfg.train.algo
    try:
        if cfg.network.get("match"):
            apply_match(cfg, obs_dim, action_dim)  # network=mlp network.match=moore: the width of equal size
        network = {k: v for k, v in OmegaConf.to_container(cfg.network).items() if k != "match"}
        return make_algorithm(
            algo, cfg.train[algo], network, cfg.scheme, obs_dim, action_dim, list(cfg.task_names), cfg.rl_device,
            cfg.seed,
        )  # fmt: skip
    except ValueError as e:
        raise ConfigError(str(e)) from e


def load_checkpoint(cfg: DictConfig, ckpt: dict | None = None) -> dict:
    """Read (unless given as `ckpt`) and check a checkpoint against this config before anything is built."""
    path = Path(cfg.checkpoint)
    ckpt = load_checkpoint_file(path) if ckpt is None else ckpt
    if list(ckpt["task_ids"]) != list(cfg.task_ids):
        raise ConfigError(
            f"checkpoint {path} was trained on tasks {ckpt['task_names']}, this run has {list(cfg.task_names)}; "
            f"pass the same task=/task_id="
        )
    obs_dim = build_env(cfg, task_counts=[1] * len(cfg.task_ids)).obs_dim
    if ckpt["obs_dim"] != obs_dim:
        raise ConfigError(f"checkpoint {path} has observation size {ckpt['obs_dim']}, this env gives {obs_dim}")
    algo = ckpt["config"]["train"]["algo"]
    if algo != cfg.train.algo:
        raise ConfigError(f"checkpoint {path} was trained with train.algo={algo}, this run has {cfg.train.algo}; "
                          f"pass the checkpoint's train=...")  # fmt: skip
    if dict(ckpt["network"]) != dict(cfg.network):
        raise ConfigError(
            f"checkpoint network {dict(ckpt['network'])} differs from network {dict(cfg.network)}; "
            f"pass the checkpoint's network=... and its settings"
        )
    return ckpt


def check_world_size(ckpt: dict, path: str | Path, world: int) -> None:
    """Refuse to resume a checkpoint written by another number of ranks than this job's: each rank's envs, replay
    buffer and generators are in it (`Runner.state`), one set per rank."""
    saved = int(ckpt.get("world_size", 1))
    if saved == world:
        return
    fresh = f"or start a new run from its weights with pretrained={path}"
    if saved == 1:
        raise ConfigError(f"{path} was written by one process; resume it without torchrun (mtbench train "
                          f"checkpoint={path}), {fresh}")  # fmt: skip
    raise ConfigError(f"{path} was written by {saved} ranks; resume it with torchrun --nproc_per_node {saved} ... "
                      f"(nodes x processes per node = {saved}), {fresh}")  # fmt: skip


def load_pretrained(agent: Algorithm, path: Path, src: dict) -> None:
    """Start from a checkpoint's network weights wherever names and shapes match (upstream's strict=False
    loading, e.g. a Go1 policy pre-trained on parkour_flat fine-tuned on the 21 terrain types); the
    optimiser, normalisers and everything else start fresh. Prints what was taken and what was not."""
    src = src["agent"]["net"]
    own = agent.net.state_dict()
    taken = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    if not taken:
        raise ConfigError(f"pretrained={path}: no parameter matches this network by name and shape")
    agent.net.load_state_dict(taken, strict=False)
    skipped = sorted(set(own) - set(taken))
    fresh = f", kept fresh: {skipped}" if skipped else ""
    if distributed.is_main():
        print(f"pretrained {path}: loaded {len(taken)}/{len(own)} tensors{fresh}")


def eval_setup(agent: Algorithm, cfg: DictConfig, per_task: int):
    """An env of `per_task` worlds per task for whole episodes with fresh goals (seeded apart from
    training, and apart by rank in a torchrun job), and the agent's deterministic policy on it."""
    fresh = suite_of(cfg.task, cfg.suite).eval_options
    env = build_env(cfg, task_counts=[per_task] * len(cfg.task_ids), **fresh)
    env.gen.manual_seed(cfg.seed + int(cfg.eval.seed_offset) + RANK_SEED_STRIDE * distributed.rank())
    task = env.task_index.to(agent.device)
    act = lambda e: agent.policy(e.obs.to(agent.device), task).to(e.device)
    return env, act


def evaluate(agent: Algorithm, cfg: DictConfig, progress: bool = True) -> list[TaskResult]:
    """The evaluation protocol: deterministic actions, `eval.episodes_per_task` episodes per task, each with
    a fresh goal, success at any step. The ranks of a torchrun job share the episodes and pool the table."""
    world, rank, total = distributed.world_size(), distributed.rank(), int(cfg.eval.episodes_per_task)
    env, act = eval_setup(agent, cfg, total // world + (rank < total % world))
    with torch_single_threaded(agent.device.type == "cpu"):
        results = run_episodes(env, act, progress=progress and distributed.is_main())
    return pool_over_ranks(results, agent.device)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class Runner:
    """One training run's live objects: the env, the algorithm, the episode statistics and the counters, with
    one `iteration()` that `train` loops over and `mtbench bench train` times. In a torchrun job `cfg` is this
    rank's share (`shard_config`) and `total` the user's config, the one checkpoints keep."""

    def __init__(self, cfg: DictConfig, ckpt: dict | None = None, total: DictConfig | None = None):
        self.cfg = cfg
        self.total = cfg if total is None else total
        pretrained = load_checkpoint_file(cfg.pretrained, "pretrained") if cfg.pretrained is not None else None
        self.env = build_env(cfg)
        self.algo = build_algorithm(cfg, self.env.obs_dim, self.env.action_dim)
        if cfg.metrics_every and not self.algo.plasticity_parts():
            raise ConfigError(
                f"metrics_every={cfg.metrics_every}: train={cfg.train.name} with network={cfg.network.name} has no "
                "separate actor and critic modules to measure; use another network (e.g. mlp), or metrics_every=0"
            )
        self.device = self.algo.device
        self.task = self.env.task_index.to(self.device)
        self.algo.start(self.env.task_index)
        self.stats = EpisodeStats(len(cfg.task_names), self.device)
        self.iteration_count, self.frames, self.elapsed, self.best = 0, 0, 0.0, -1.0
        self.recent: list[float] = []
        self.obs = self.env.reset()
        if pretrained is not None:
            load_pretrained(self.algo, Path(cfg.pretrained), pretrained)
        if ckpt is not None:
            agent, env, gen = ckpt["agent"], ckpt["env"], ckpt["rl_gen"]
            if "ranks" in ckpt:  # a torchrun checkpoint: this rank's own envs, generator and storage
                part = ckpt["ranks"][distributed.rank()]
                agent, env, gen = {**agent, **part["agent"]}, part["env"], part["rl_gen"]
            self.algo.load_state_dict(agent)
            self.env.load_state_dict(env)
            self.algo.gen.set_state(gen)
            self.obs = self.env.obs
            self.iteration_count, self.frames, self.elapsed = ckpt["iteration"], ckpt["frames"], ckpt["elapsed"]
            self.best, self.recent = ckpt["best"], list(ckpt["recent"])

    def progress(self) -> float:
        """The share of the run done, by the limit that binds: iterations, or minutes when `max_minutes` is set
        and nearer its end (a run limited by minutes is then scheduled by the clock, not bit-reproducible)."""
        cfg = self.cfg
        done = self.iteration_count / cfg.max_iterations
        if cfg.max_minutes is not None:
            done = max(done, self.elapsed / (60.0 * cfg.max_minutes))
        return min(done, 1.0)

    def plasticity(self) -> dict[str, float]:
        """Plasticity metrics of the learner's networks (`mtbench.nets.plasticity`) on a probe batch of the envs'
        current observations (every task's envs, at most PROBE_SIZE of them, evenly strided), and their cost."""
        t0 = time.perf_counter()
        n = self.env.num_envs
        rows = torch.arange(0, n, max(1, -(-n // PROBE_SIZE)), device=self.obs.device)
        obs, task = self.obs[rows], self.env.task_index[rows]
        out = plasticity_metrics(self.algo.plasticity_parts(), lambda: self.algo.probe(obs, task))
        out["time/plasticity"] = time.perf_counter() - t0
        return out

    @property
    def batch(self) -> int:
        """Frames per iteration."""
        return self.algo.steps_per_iteration * self.env.num_envs

    def rollout(self) -> None:
        """Act and observe for one iteration's `steps_per_iteration` vector steps (no timing, no wait)."""
        algo, env, dev = self.algo, self.env, self.device
        obs = self.obs
        for _ in range(algo.steps_per_iteration):
            action = algo.act(obs)
            obs, reward, terminated, truncated, info = env.step(action.to(env.device))
            algo.observe(obs, reward, terminated, truncated, info)
            self.stats.add({k: v.to(dev) for k, v in info["episode"].items()}, self.task)
        self.obs = obs

    def iteration(self) -> tuple[dict[str, torch.Tensor], torch.Tensor, float, float]:
        """Act and observe for one iteration, then update. Returns (metrics, the episode sums of
        `EpisodeStats.take`, seconds acting, seconds updating)."""
        algo, env, dev = self.algo, self.env, self.device
        t0 = time.perf_counter()
        # acting on small per-step batches: one torch thread beats OpenMP workers fighting MuJoCo's pool
        with torch_single_threaded(dev.type == "cpu"):
            self.rollout()
        _sync(dev)
        t1 = time.perf_counter()
        metrics = algo.update()
        ep = self.stats.take()
        env.check_sim()  # MuJoCo Warp's dropped contacts: one host sync per iteration, never per step
        _sync(dev)
        return metrics, ep, t1 - t0, time.perf_counter() - t1

    def state(self, buffer: bool | None = None) -> dict | None:
        """The checkpoint: everything that decides the rest of the run, and what `test=True` needs; the replay
        buffer of an off-policy learner when `buffer` (default: `save_buffer`).

        In a torchrun job every rank must call it at once: the learner's state is the same on every rank but its
        `rank_local_state` (replay buffer, n-step window), which goes with each rank's env state and generator
        to rank 0 as `ranks[r]` = {"env", "rl_gen", "agent": {those keys}}, beside "world_size". "agent", "env"
        and "rl_gen" are rank 0's whole state, as one process's (its rank-local parts are the very tensors of
        `ranks[0]`: stored once), for whatever reads a checkpoint as one process's (`test=True`, `pretrained=`,
        BRC's data transfer). Rank 0 gets the checkpoint, the others None."""
        cfg = self.cfg
        buffer = bool(cfg.save_buffer) if buffer is None else buffer
        state = {
            "agent": self.algo.state_dict(buffer=buffer), "env": self.env.state_dict(),
            "rl_gen": self.algo.gen.get_state(), "iteration": self.iteration_count, "frames": self.frames,
            "elapsed": self.elapsed, "best": self.best, "recent": self.recent, "task_ids": list(cfg.task_ids),
            "task_names": list(cfg.task_names), "obs_dim": self.env.obs_dim,
            "network": OmegaConf.to_container(cfg.network), "config": OmegaConf.to_container(self.total),
        }  # fmt: skip
        if distributed.world_size() == 1:
            return state
        local = {k: v for k, v in state["agent"].items() if k in self.algo.rank_local_state}
        mine = _to_cpu({"env": state["env"], "rl_gen": state["rl_gen"], "agent": local})
        parts = distributed.gather_objects(mine)
        if parts is None:
            return None
        parts[0] = mine
        state["agent"].update(mine["agent"])
        state.update(env=mine["env"], rl_gen=mine["rl_gen"], ranks=parts, world_size=len(parts))
        return state


def _to_cpu(obj):
    """`obj` with every tensor in it on the CPU (what another rank, or another machine, can unpickle)."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def pool_iteration(
    metrics: dict[str, torch.Tensor], sums: torch.Tensor, times: tuple[float, ...]
) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[float]]:
    """One iteration's numbers agreed by the ranks of a torchrun job with one all-reduce of a float64 vector: the
    learner's metrics and `times` (wall-clock, seconds acting and updating) averaged, the episode sums added, so that
    every rank logs and decides (divergence, best checkpoint, `max_minutes`) from the same row."""
    world, dev = distributed.world_size(), sums.device
    values = [torch.as_tensor(v).detach().to(dev, torch.float64).reshape(()) for v in metrics.values()]
    flat = torch.cat([torch.stack(values) if values else sums.new_zeros(0), sums.reshape(-1),
                      torch.tensor(times, dtype=torch.float64, device=dev)])  # fmt: skip
    distributed.all_reduce_(flat)
    m, e = len(values), sums.numel()
    pooled = dict(zip(metrics, flat[:m] / world))
    return pooled, flat[m : m + e].view_as(sums), (flat[m + e :] / world).tolist()


def train(
    cfg: DictConfig, ckpt: dict | None = None, total: DictConfig | None = None, job: TorchrunJob | None = None
) -> list[TaskResult]:
    """Train `cfg` to its end, then evaluate it. In a torchrun job (`run`) `cfg` is this rank's share of `total`,
    the user's config; `ckpt` is the checkpoint's contents when `run` has read them already."""
    total = cfg if total is None else total
    ckpt = load_checkpoint(cfg, ckpt) if cfg.checkpoint else None
    main, world = distributed.is_main(), distributed.world_size()
    say = print if main else lambda *args: None  # rank 0 alone talks
    runner = Runner(cfg, ckpt, total)
    env, algo, names = runner.env, runner.algo, list(cfg.task_names)
    start_iter = runner.iteration_count
    log = RunLog(total, resume=ckpt is not None, write=main)
    if main:
        (log.dir / "params.json").write_text(json.dumps(algo.parameter_counts()))  # for the scaling report
    say(f"run directory: {log.dir}\n{env}\n{algo.describe()}: {cfg.max_iterations} iterations"
        + (f" or {cfg.max_minutes} min" if cfg.max_minutes else ""))  # fmt: skip
    if world > 1:
        say(f"torchrun: {world} ranks, each with the env and the share of the batch above ({total.num_envs} envs in "
            f"all), gradients summed over {torch.distributed.get_backend()}")  # fmt: skip
    # the bar counts toward the limit that binds: wall-clock when a budget in minutes is set, else iterations
    by_time = cfg.max_minutes is not None
    bar = tqdm(
        total=float(cfg.max_minutes) if by_time else cfg.max_iterations,
        initial=round(runner.elapsed / 60, 2) if by_time else start_iter, unit="min" if by_time else "it",
        disable=not (cfg.progress and main), dynamic_ncols=True, file=sys.stdout,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} min [{postfix}]" if by_time else None,
    )  # fmt: skip

    def save(name: str, buffer: bool | None = None) -> None:  # every rank calls it; rank 0 writes
        path = log.save(runner.state(buffer), name)
        if job is not None and name == "latest.pt":
            job.last = path

    t_start = time.perf_counter() - runner.elapsed
    for iteration in range(start_iter + 1, cfg.max_iterations + 1):
        algo.set_progress(runner.progress())
        try:
            metrics, ep, t_act, t_update = runner.iteration()
        except SimOverflowError as e:
            raise SimOverflowError(f"{e}. The last checkpoints, from before it, are in {log.ckpt_dir}") from None
        runner.iteration_count = iteration
        runner.frames += runner.batch * world
        elapsed = time.perf_counter() - t_start
        if world > 1:  # every rank the same row: the same decisions below
            metrics, ep, (elapsed, t_act, t_update) = pool_iteration(metrics, ep, (elapsed, t_act, t_update))
        runner.elapsed = elapsed
        row = _row(iteration, runner.frames, elapsed, runner.batch * world, t_act, t_update, metrics,
                   EpisodeStats.means(ep), names)  # fmt: skip
        if world > 1:
            row["time/comm"] = distributed.pop_comm_seconds()
        if cfg.metrics_every and iteration % cfg.metrics_every == 0 and main:
            row.update(runner.plasticity())
        log.log(row)
        if algo.learning and not all(math.isfinite(row[k]) for k in algo.health):
            raise RunStopped(
                f"training diverged at iteration {iteration} (non-finite {', '.join(algo.health)}); the last good "
                f"checkpoints are in {log.ckpt_dir}. {algo.diverged_hint}"
            )
        if row["success"] == row["success"]:  # not NaN
            runner.recent = (runner.recent + [row["success"]])[-SMOOTH:]
        smooth = sum(runner.recent) / len(runner.recent) if runner.recent else 0.0
        if len(runner.recent) == SMOOTH and smooth > runner.best:
            runner.best = smooth
            save("best.pt", buffer=False)  # for evaluation: never the replay buffer
        if iteration % cfg.save_frequency == 0:
            save("latest.pt")
        bar.update(min(elapsed / 60, bar.total) - bar.n if by_time else 1)
        where = f"it {iteration}/{cfg.max_iterations}" if by_time else f"{elapsed / 60:.1f} min"
        bar.set_postfix_str(
            f"{where} | frames {runner.frames / 1e6:.2f}M | {row['fps']:,.0f} fps | success {100 * smooth:.1f}%",
            refresh=False,
        )
        if cfg.max_minutes is not None and elapsed >= 60.0 * cfg.max_minutes:
            break
    bar.close()
    save("latest.pt")
    done = runner.iteration_count - start_iter
    say(f"trained {done} iterations ({runner.frames:,} frames in total, {runner.elapsed / 60:.1f} min)")

    results = evaluate(algo, cfg, progress=cfg.progress)
    if main:
        finish(log.dir, results, f"final policy, {cfg.eval.episodes_per_task} episodes per task (deterministic)")
    log.close()
    return results


def _row(it, frames, elapsed, batch, t_act, t_update, metrics, ep, names) -> dict[str, float]:
    """One line of metrics.jsonl: the runner's counters and episode statistics, then the algorithm's metrics."""
    ep = {k: v.cpu().tolist() for k, v in ep.items()}
    has = [c > 0 for c in ep["episodes"]]
    mean = lambda xs: sum(x for x, h in zip(xs, has) if h) / max(1, sum(has)) if any(has) else float("nan")
    row = {
        "iteration": it, "frames": frames, "time": elapsed, "fps": batch / (t_act + t_update),
        "fps_collect": batch / t_act, "success": mean(ep["success"]), "return": mean(ep["return"]),
        "episode_length": mean(ep["length"]), "episodes": sum(ep["episodes"]),
    }  # fmt: skip
    row.update({k: float(v) for k, v in metrics.items()})
    for i, name in enumerate(names):
        row[f"success/{name}"] = ep["success"][i]
        row[f"return/{name}"] = ep["return"][i]
        row[f"length/{name}"] = ep["length"][i]
    return row


def save_results(out_dir: Path, results: list[TaskResult], title: str, name: str) -> None:
    """Print the per-task table and save it as Markdown and JSON."""
    table = format_table(results, title)
    print(table)
    (out_dir / f"{name}.md").write_text(table + "\n")
    (out_dir / f"{name}.json").write_text(json.dumps([r.__dict__ for r in results], indent=1))


def finish(run_dir: Path, results: list[TaskResult], title: str) -> None:
    """The end of a training run: the evaluation table and the learning curves."""
    from mtbench.plots import plot_run

    save_results(run_dir, results, title, "eval")
    for path in plot_run(run_dir):
        print(f"wrote {path}")


def test(cfg: DictConfig) -> list[TaskResult]:
    ckpt = load_checkpoint(cfg)
    probe = build_env(cfg, task_counts=[1] * len(cfg.task_ids))
    agent = build_algorithm(cfg, probe.obs_dim, probe.action_dim)
    agent.load_state_dict(ckpt["agent"], weights_only=True)
    results = evaluate(agent, cfg, progress=cfg.progress)
    if not distributed.is_main():  # a torchrun job: rank 0 writes the pooled table
        return results
    out_dir = Path(cfg.checkpoint).resolve().parent.parent
    title = f"test of {cfg.checkpoint}: {cfg.eval.episodes_per_task} episodes per task (deterministic)"
    save_results(out_dir, results, title, f"test_{Path(cfg.checkpoint).stem}")
    if cfg.record_videos:
        from mtbench.render import record_policy_videos

        env, act = eval_setup(agent, cfg, 1)
        for path in record_policy_videos(env, act, out_dir / "videos"):
            print(f"wrote {path}")
    return results


class TorchrunJob:
    """This rank's membership of a `torchrun` job (`launched_world_size() > 1`): joins the process group on entry,
    leaves it on exit, and turns the job ending under this rank into one line and exit status 1 (RunStopped) that
    names the last checkpoint, instead of a hang or a traceback: torchrun's SIGTERM (it stops the others when a rank
    dies) and a collective that fails (a peer's connection closed, or no answer within MTBENCH_DIST_TIMEOUT)."""

    def __init__(self, cfg: DictConfig):
        self.device = torch.device(cfg.rl_device)
        self.last: Path | None = Path(cfg.checkpoint) if cfg.checkpoint and not cfg.test else None
        """The last checkpoint written (`train` updates it): where to resume."""

    def __enter__(self) -> TorchrunJob:
        signal.signal(signal.SIGTERM, self._terminated)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        try:
            distributed.init(self.device)
        except (RuntimeError, ValueError) as e:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise RunStopped(f"could not join the torchrun job ({_first_line(e)})") from None
        return self

    def stopped(self, why: str) -> str:
        if self.last is None:
            return f"stopped: {why}; no checkpoint was written yet: start it again with the same torchrun command"
        return (f"stopped: {why}; the last checkpoint is {self.last}; resume with the same torchrun command and "
                f"checkpoint={self.last}")  # fmt: skip

    def _terminated(self, signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one message, whatever torchrun sends next
        raise RunStopped(self.stopped("another rank of this torchrun job ended (or the job was stopped)"))

    def __exit__(self, kind, error, tb) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            distributed.shutdown()
        except Exception:
            if error is None:
                raise  # else the error that broke the group is the one to tell
        if error is not None and _collective_failed(error):
            why = f"a collective with the other ranks failed ({_first_line(error)})"
            raise RunStopped(self.stopped(f"{why}: another rank ended, or stalled longer than MTBENCH_DIST_TIMEOUT="
                                          f"{distributed.TIMEOUT_S:g} s"))  # fmt: skip


def _collective_failed(e: BaseException) -> bool:
    """Whether `e` is a collective that failed (Gloo: RuntimeError naming a closed connection or a timeout)."""
    if isinstance(e, torch.distributed.DistError):
        return True
    return isinstance(e, RuntimeError) and bool(
        re.search(r"gloo|nccl|connection (closed|reset|refused)|timed out|timeout", str(e), re.IGNORECASE)
    )


def _first_line(e: BaseException) -> str:
    """The first sentence of `e`'s message, without the C++ source location Gloo puts in front."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    return text.split(". ")[0][:200]


def run(overrides: list[str]) -> list[TaskResult]:
    """`mtbench train overrides` in one process, or as one rank of a torchrun job (each rank calls it)."""
    cfg = load_config(overrides)
    world = distributed.launched_world_size()
    ckpt = None
    if cfg.checkpoint and not cfg.test:
        ckpt = load_checkpoint_file(cfg.checkpoint)
        check_world_size(ckpt, cfg.checkpoint, world)
    if world == 1:
        return test(cfg) if cfg.test else train(cfg, ckpt)
    local = shard_config(cfg, world, distributed.local_rank())
    with TorchrunJob(local) as job:
        # each rank named a new run directory by its own clock: rank 0's name for all
        cfg.experiment = local.experiment = distributed.broadcast_object(cfg.experiment)
        return test(local) if cfg.test else train(local, ckpt, total=cfg, job=job)


def resume_help() -> str:
    """What `checkpoint=` may change, for `--help`."""
    learners = "; ".join(f"train.{a}.{{{','.join(c.resumable_settings)}}}" for a, c in ALGORITHMS.items())
    text = (
        "Resuming: checkpoint=runs/<experiment>/checkpoints/latest.pt alone continues that run with its saved "
        f"config. Only these keys may change on resume (a section covers its keys): {', '.join(RESUME_KEYS)}; and "
        f"the learner's resumable settings: {learners}. With test=True also: {', '.join(TEST_KEYS)}. Any other key "
        "given with another value is refused; pretrained=<checkpoint> starts a new run from a checkpoint's "
        "weights with any settings."
    )
    return textwrap.fill(text, 110, break_on_hyphens=False)


def run_or_help(argv: list[str]) -> None:
    """`mtbench train ...`: `--help` prints every key, anything else trains (or tests) with those overrides."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("Keys (key=value, as upstream MTBench):")
        print(OmegaConf.to_yaml(compose([])))
        print(resume_help())
        return
    if any(a in ("-m", "--multirun") for a in argv):
        if distributed.launched_world_size() > 1:
            raise ConfigError("a sweep (-m) runs its jobs in one process, one after another; start it without torchrun")
        from mtbench.sweep import multirun

        multirun(argv)
        return
    run(argv)


def main(argv: list[str] | None = None) -> None:
    """`python -m mtbench.train ...`: as `mtbench train`, a user error ending with exit status 2. Under torchrun
    every line says which rank wrote it, and a mistake in the command (the same on every rank) is told once per
    machine (by local rank 0)."""
    argv = sys.argv[1:] if argv is None else argv
    if distributed.launched_world_size() == 1:
        run_command("train", run_or_help, argv)
        return

    def once_per_machine(argv: list[str]) -> None:
        try:
            run_or_help(argv)
        except UserError:
            if distributed.local_rank() != 0:
                raise SystemExit(2) from None
            raise

    run_command(f"train (rank {os.environ.get('RANK', '0')})", once_per_machine, argv)


if __name__ == "__main__":
    main()
