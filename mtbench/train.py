"""`mtbench train ...` / `python -m mtbench.train ...`: MT-PPO on the multi-task env, with a run directory,
checkpoints, resume, a progress bar, learning curves and a summary table; `test=True` evaluates a checkpoint.

The loop is rollout (horizon steps of the batched env, all on the device) then update. Host syncs happen
once per iteration, for logging, never inside the rollout or the minibatch loop.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

import mtbench
from mtbench.algos.ppo import PPO, PPOConfig, Rollout
from mtbench.config import ConfigError, compose, resolve_config
from mtbench.envs.vec_env import MultiTaskVecEnv, torch_single_threaded
from mtbench.eval import TaskResult, format_table, run_episodes
from mtbench.mtrl import make_scheme
from mtbench.nets import make_network
from mtbench.runlog import RunLog

SMOOTH = 10  # iterations over which "recent success" (progress bar, best checkpoint) is averaged


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

    def pop(self) -> dict[str, torch.Tensor]:
        n = self.count.clamp_min(1.0)
        nan = torch.full_like(n, float("nan"))
        has = self.count > 0
        out = {
            "episodes": self.count.clone(),
            "success": torch.where(has, self.success / n, nan),
            "return": torch.where(has, self.ret / n, nan),
            "length": torch.where(has, self.length / n, nan),
        }
        self.reset()
        return out


def build_env(cfg: DictConfig, **overrides):
    """The training env of `cfg` (Meta-World or parkour); `overrides` replace its options (evaluation)."""
    common = dict(
        # NaN actions are caught once per iteration through the losses instead of a host sync per step
        check_actions=torch.device(cfg.sim_device).type == "cpu",
        task_counts=list(cfg.task_counts),
    )
    if cfg.suite == "parkour":
        opts = {**common, **cfg.parkour}
    else:
        opts = dict(
            common,
            episode_length=cfg.env.episode_length,
            goal_mode=cfg.env.goal_mode,
            reward_scale=cfg.env.reward_scale,
            terminate_on_success=cfg.env.terminate_on_success,
            random_init_progress=cfg.env.random_init_progress,
        )
    opts.update(overrides)
    # a parkour setting name carries its row difficulties and curriculum; ids alone would take parkour.setting's
    task = cfg.task if cfg.suite == "parkour" and cfg.task_id is None and isinstance(cfg.task, str) else cfg.task_ids
    return mtbench.make(
        task if isinstance(task, str) else list(task), num_envs=sum(opts["task_counts"]), device=cfg.sim_device,
        backend=cfg.backend, seed=cfg.seed, suite=cfg.suite, **opts,
    )  # fmt: skip


def build_agent(cfg: DictConfig, obs_dim: int, action_dim: int) -> PPO:
    n_tasks = len(cfg.task_ids)
    torch.manual_seed(cfg.seed)
    net = make_network(obs_dim, action_dim, list(cfg.task_names), **cfg.network)
    gen = torch.Generator(device=cfg.rl_device)
    gen.manual_seed(cfg.seed)
    ppo_cfg = PPOConfig.from_dict(dict(cfg.train.ppo))
    scheme_cfg = dict(cfg.scheme)
    dev = torch.device(cfg.rl_device)
    scheme = make_scheme(scheme_cfg.pop("name"), n_tasks, dev, generator=gen, **scheme_cfg)
    return PPO(net, obs_dim, n_tasks, ppo_cfg, dev, gen, scheme)


def load_checkpoint(cfg: DictConfig) -> dict:
    """Read and check a checkpoint against this config before anything is built."""
    path = Path(cfg.checkpoint)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if list(ckpt["task_ids"]) != list(cfg.task_ids):
        raise ConfigError(
            f"checkpoint {path} was trained on tasks {ckpt['task_names']}, this run has {list(cfg.task_names)}; "
            f"pass the same task=/task_id="
        )
    obs_dim = build_env(cfg, task_counts=[1] * len(cfg.task_ids)).obs_dim
    if ckpt["obs_dim"] != obs_dim:
        raise ConfigError(f"checkpoint {path} has observation size {ckpt['obs_dim']}, this env gives {obs_dim}")
    if dict(ckpt["network"]) != dict(cfg.network):
        raise ConfigError(
            f"checkpoint network {dict(ckpt['network'])} differs from network {dict(cfg.network)}; "
            f"pass the checkpoint's network=... and its settings"
        )
    return ckpt


def load_pretrained(agent: PPO, path: Path) -> None:
    """Start from a checkpoint's network weights wherever names and shapes match (upstream's strict=False
    loading, e.g. a Go1 policy pre-trained on parkour_flat fine-tuned on the 21 terrain types); the
    optimiser, normalisers and everything else start fresh. Prints what was taken and what was not."""
    if not path.is_file():
        raise ConfigError(f"pretrained={path} does not exist")
    src = torch.load(path, map_location="cpu", weights_only=False)["agent"]["net"]
    own = agent.net.state_dict()
    taken = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    if not taken:
        raise ConfigError(f"pretrained={path}: no parameter matches this network by name and shape")
    agent.net.load_state_dict(taken, strict=False)
    skipped = sorted(set(own) - set(taken))
    fresh = f", kept fresh: {skipped}" if skipped else ""
    print(f"pretrained {path}: loaded {len(taken)}/{len(own)} tensors{fresh}")


def eval_setup(agent: PPO, cfg: DictConfig, per_task: int):
    """An env of `per_task` worlds per task for whole episodes with fresh goals (seeded apart from
    training), and the agent's deterministic policy on it."""
    fresh = dict(random_init_progress=False)
    if cfg.suite == "metaworld":
        fresh.update(goal_mode="rand", terminate_on_success=False)
    else:  # every row (difficulty) in turn, as the paper's 200 terrains x 10 runs, even after a curriculum run
        fresh.update(curriculum=False)
    env = build_env(cfg, task_counts=[per_task] * len(cfg.task_ids), **fresh)
    env.gen.manual_seed(cfg.seed + int(cfg.eval.seed_offset))
    task = env.task_index.to(agent.device)
    act = lambda e: agent.act(e.obs.to(agent.device), task, deterministic=True)["action"].to(e.device)
    return env, act


def evaluate(agent: PPO, cfg: DictConfig, progress: bool = True) -> list[TaskResult]:
    """The evaluation protocol: deterministic actions, `eval.episodes_per_task` episodes per task, each with
    a fresh goal, success at any step."""
    env, act = eval_setup(agent, cfg, int(cfg.eval.episodes_per_task))
    with torch_single_threaded(agent.device.type == "cpu"):
        return run_episodes(env, act, progress=progress)


def collect(agent: PPO, env: MultiTaskVecEnv, obs: torch.Tensor, buf: Rollout, stats: EpisodeStats) -> torch.Tensor:
    """Fill `buf` with one horizon of experience; returns the observation to continue from."""
    task, gamma, dev = buf.task, agent.cfg.gamma, agent.device
    for t in range(buf.rewards.shape[0]):
        out = agent.act(obs, task)
        next_obs, reward, terminated, truncated, info = env.step(out["action"].to(env.device))
        reward, truncated = reward.to(dev), truncated.to(dev)
        # a time-out is not a failure: bootstrap with the value of the episode's final observation
        final_value = agent.value(info["final_obs"].to(dev), task)
        buf.obs[t], buf.actions[t], buf.logp[t], buf.values[t] = obs, out["action"], out["logp"], out["value"]
        buf.mu[t], buf.sigma[t] = out["mu"], out["sigma"]
        buf.rewards[t] = reward + gamma * final_value * truncated
        buf.dones[t] = (terminated | truncated).to(dev)
        stats.add({k: v.to(dev) for k, v in info["episode"].items()}, task)
        obs = next_obs.to(dev)
    return obs


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def train(cfg: DictConfig) -> list[TaskResult]:
    ckpt = load_checkpoint(cfg) if cfg.checkpoint else None
    env = build_env(cfg)
    agent = build_agent(cfg, env.obs_dim, env.action_dim)
    dev, names = agent.device, list(cfg.task_names)
    T, N = agent.cfg.horizon, env.num_envs
    start_iter, frames, elapsed, best = 0, 0, 0.0, -1.0
    recent: list[float] = []
    obs = env.reset().to(dev)
    if cfg.pretrained is not None:
        load_pretrained(agent, Path(cfg.pretrained))
    if ckpt is not None:
        agent.load_state_dict(ckpt["agent"])
        env.load_state_dict(ckpt["env"])
        agent.gen.set_state(ckpt["rl_gen"])
        obs = env.obs.to(dev)
        start_iter, frames, elapsed = ckpt["iteration"], ckpt["frames"], ckpt["elapsed"]
        best, recent = ckpt["best"], list(ckpt["recent"])
    log = RunLog(cfg, resume=ckpt is not None)
    print(f"run directory: {log.dir}\n{env}\nPPO: {N} envs x {T} steps, minibatch {agent.cfg.minibatch_size}, "
          f"{cfg.max_iterations} iterations" + (f" or {cfg.max_minutes} min" if cfg.max_minutes else ""))  # fmt: skip
    buf = Rollout.empty(T, N, env.obs_dim, env.action_dim, env.task_index.to(dev))
    stats = EpisodeStats(len(names), dev)

    def state(iteration: int) -> dict:
        return {
            "agent": agent.state_dict(), "env": env.state_dict(), "rl_gen": agent.gen.get_state(),
            "iteration": iteration, "frames": frames, "elapsed": elapsed, "best": best, "recent": recent,
            "task_ids": list(cfg.task_ids), "task_names": names, "obs_dim": env.obs_dim,
            "network": OmegaConf.to_container(cfg.network), "config": OmegaConf.to_container(cfg),
        }  # fmt: skip

    bar = tqdm(
        total=cfg.max_iterations, initial=start_iter, unit="it", disable=not cfg.progress, dynamic_ncols=True,
        file=sys.stdout,
    )  # fmt: skip
    t_start = time.perf_counter() - elapsed
    iteration = start_iter
    for iteration in range(start_iter + 1, cfg.max_iterations + 1):
        t0 = time.perf_counter()
        # acting on small per-step batches: one torch thread beats OpenMP workers fighting MuJoCo's pool
        with torch_single_threaded(dev.type == "cpu"):
            obs = collect(agent, env, obs, buf, stats)
            last_value = agent.value(obs, buf.task)
        _sync(dev)
        t1 = time.perf_counter()
        metrics = agent.update(buf, last_value)
        ep = stats.pop()
        _sync(dev)
        t2 = time.perf_counter()
        frames += T * N
        elapsed = t2 - t_start
        row = _row(iteration, frames, elapsed, T * N, t1 - t0, t2 - t1, metrics, ep, names)
        log.log(row)
        if not all(math.isfinite(row[k]) for k in ("loss/surrogate", "loss/value", "std")):
            raise RuntimeError(
                f"training diverged at iteration {iteration} (non-finite loss or policy std); the last good "
                f"checkpoints are in {log.ckpt_dir}. Try a lower train.ppo.lr or train.ppo.schedule=adaptive."
            )
        if row["success"] == row["success"]:  # not NaN
            recent = (recent + [row["success"]])[-SMOOTH:]
        smooth = sum(recent) / len(recent) if recent else 0.0
        if len(recent) == SMOOTH and smooth > best:
            best = smooth
            log.save(state(iteration), "best.pt")
        if iteration % cfg.save_frequency == 0:
            log.save(state(iteration), "latest.pt")
        bar.update(1)
        bar.set_postfix_str(
            f"frames {frames / 1e6:.2f}M | {row['fps']:,.0f} fps | success {100 * smooth:.1f}% | "
            f"{elapsed / 60:.1f} min",
            refresh=False,
        )
        if cfg.max_minutes is not None and elapsed >= 60.0 * cfg.max_minutes:
            break
    bar.close()
    log.save(state(iteration), "latest.pt")
    print(f"trained {iteration - start_iter} iterations ({frames:,} frames in total, {elapsed / 60:.1f} min)")

    results = evaluate(agent, cfg, progress=cfg.progress)
    finish(log.dir, results, f"final policy, {cfg.eval.episodes_per_task} episodes per task (deterministic)")
    log.close()
    return results


def _row(it, frames, elapsed, batch, t_collect, t_update, metrics, ep, names) -> dict[str, float]:
    m = {k: float(v) for k, v in metrics.items()}
    ep = {k: v.cpu().tolist() for k, v in ep.items()}
    has = [c > 0 for c in ep["episodes"]]
    mean = lambda xs: sum(x for x, h in zip(xs, has) if h) / max(1, sum(has)) if any(has) else float("nan")
    row = {
        "iteration": it, "frames": frames, "time": elapsed, "fps": batch / (t_collect + t_update),
        "fps_collect": batch / t_collect, "success": mean(ep["success"]), "return": mean(ep["return"]),
        "episode_length": mean(ep["length"]), "episodes": sum(ep["episodes"]),
        "loss/surrogate": m["surrogate"], "loss/value": m["value_loss"], "loss/entropy": m["entropy"],
        "loss/bounds": m["bounds"], "kl": m["kl"], "clipfrac": m["clipfrac"], "grad_norm": m["grad_norm"],
        "lr": m["lr"], "std": m["std"],
    }  # fmt: skip
    row.update({k: v for k, v in m.items() if k.startswith("grad_cos") or k == "masked_tasks"})
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
    agent = build_agent(cfg, probe.obs_dim, probe.action_dim)
    agent.load_state_dict(ckpt["agent"], weights_only=True)
    results = evaluate(agent, cfg, progress=cfg.progress)
    out_dir = Path(cfg.checkpoint).resolve().parent.parent
    title = f"test of {cfg.checkpoint}: {cfg.eval.episodes_per_task} episodes per task (deterministic)"
    save_results(out_dir, results, title, f"test_{Path(cfg.checkpoint).stem}")
    if cfg.record_videos:
        from mtbench.render import record_policy_videos

        env, act = eval_setup(agent, cfg, 1)
        for path in record_policy_videos(env, act, out_dir / "videos"):
            print(f"wrote {path}")
    return results


def run(overrides: list[str]) -> list[TaskResult]:
    cfg = resolve_config(compose(overrides))
    if cfg.test:
        return test(cfg)
    return train(cfg)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("Keys (key=value, as upstream MTBench):")
        print(OmegaConf.to_yaml(compose([])))
        return
    try:
        run(argv)
    except ConfigError as e:
        raise SystemExit(f"mtbench train: {e}") from None


if __name__ == "__main__":
    main()
