"""`mtbench <command> key=value ...`: train (MT-PPO; test=True evaluates), report (aggregate runs),
play (scripted experts or random actions), bench (speed).

Arguments use upstream MTBench's `key=value` style so commands read the same as in its README.
"""

from __future__ import annotations

import sys
from typing import Literal

from mtbench.errors import UserError, run_command
from mtbench.overrides import parse_overrides, parse_value
from mtbench.validation import NonNegFloat, PosInt

USAGE = """usage:
  mtbench train [task=mt10] [num_envs=...] [seed=42] [max_iterations=...] [experiment=...] [checkpoint=...]
                [test=True checkpoint=runs/<experiment>/checkpoints/best.pt [record_videos=True]]
                (all keys: mtbench train --help)
  mtbench transfer mode=pretrain|model|embedding|data|scratch [checkpoint=...] [task=...] [transitions=N]
                   (BRC's transfer to held-out Meta-World tasks: mtbench transfer --help)
  mtbench report [out=DIR] runs/<experiment> [runs/<experiment> ...]
  mtbench params [network=mlp|multihead|care|moore|paco|...] [task=mt10|mt50]   (parameter counts)
  mtbench play task=mt10 policy=expert|random [num_envs=50*tasks] [episode_length=500] [goal_mode=metaworld]
               [seed=42] [sim_device=cpu] [backend=auto] [noise=0.0]
               [render=True [render_dir=renders] [render_steps=150]]  (MP4 per task + PNG contact sheet)
  mtbench play task=parkour_easy|parkour_hard|parkour_flat policy=zero|random|runs/<exp>/checkpoints/best.pt
               [episode_length=500] [render=True]   (progress table; MP4 per terrain following a robot + PNG)
  mtbench bench env [task=mt10] [num_envs=...] [steps=...] [reference=True] [ceiling=True]
  mtbench bench gpu [dry_run=False] [out=gpu_check] [steps=...] [kernel_cache=...] [save_kernel_cache=...]
                    (proves and measures the CUDA path in 8 minutes; dry_run=True: toy sizes on the CPU)
"""


def play_parkour(args: list[str]) -> None:
    """Parkour: a zero, random or trained policy on every terrain type; the progress table, and with
    render=True an MP4 per terrain following one robot plus the terrain overview PNG."""
    import torch

    from mtbench.eval import format_table, run_episodes

    opt = parse_overrides(args, {
        "task": "parkour_hard", "policy": "zero", "num_envs": None, "episode_length": 500, "seed": 42,
        "sim_device": "cpu", "backend": "auto", "render": False, "render_dir": "renders", "render_steps": 250,
    }, {"render_steps": PosInt})  # fmt: skip
    policy = str(opt["policy"])
    env = _make_env(opt["task"], num_envs=opt["num_envs"], device=opt["sim_device"], backend=opt["backend"],
                    seed=opt["seed"], episode_length=opt["episode_length"], random_init_progress=False,
                    onehot="terrains")  # fmt: skip
    print(env)
    if policy == "zero":
        act = lambda e: torch.zeros(e.num_envs, e.action_dim, device=e.device)  # noqa: E731
    elif policy == "random":
        gen = torch.Generator(device=env.device).manual_seed(opt["seed"])
        act = lambda e: torch.rand((e.num_envs, e.action_dim), generator=gen, device=e.device) - 0.5  # noqa: E731
    else:
        act = _checkpoint_policy(policy, env)
    results = run_episodes(env, act)
    print(format_table(results, f"{policy} policy, {opt['episode_length']}-step episodes; success % = progress"))
    if opt["render"]:
        from pathlib import Path

        from mtbench.render_parkour import record_parkour

        steps = min(int(opt["render_steps"]), env.episode_length)
        for path in record_parkour(env, act, steps, Path(str(opt["render_dir"]))):
            print(f"wrote {path}")


def _make_env(task, **options):
    """`mtbench.make` for a command whose every option is the user's: a refused option is a UserError."""
    import mtbench

    try:
        return mtbench.make(task, **options)
    except ValueError as e:
        raise UserError(str(e)) from None


def _checkpoint_policy(path: str, env):
    """The deterministic policy of a training checkpoint (policy=runs/<experiment>/checkpoints/best.pt)."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from mtbench.checkpoint import load_checkpoint_file
    from mtbench.train import build_algorithm

    if not Path(path).is_file():
        raise UserError(f"policy must be zero, random or a checkpoint file; {path!r} is none of them")
    ckpt = load_checkpoint_file(path, "policy")
    cfg = OmegaConf.create(ckpt["config"])
    if ckpt["obs_dim"] != env.obs_dim or list(ckpt["task_ids"]) != list(env.task_ids):
        raise UserError(f"checkpoint {path} was trained on {ckpt['task_names']} (obs {ckpt['obs_dim']}); "
                         f"pass the same task= (this env: {env.task_names}, obs {env.obs_dim})")  # fmt: skip
    cfg.rl_device = "cpu"
    agent = build_algorithm(cfg, env.obs_dim, env.action_dim)
    agent.load_state_dict(ckpt["agent"], weights_only=True)
    task = env.task_index.cpu()  # the agent runs on the CPU; the env may not
    return lambda e: agent.policy(e.obs.cpu(), task).to(e.device)


def play(args: list[str]) -> None:
    import torch

    from mtbench.envs.metaworld.experts import ScriptedExperts
    from mtbench.envs.metaworld.registry import resolve
    from mtbench.envs.suites import suite_of
    from mtbench.eval import format_table, run_episodes

    task = next((parse_value(a)[1] for a in args if a.startswith("task=")), "mt10")
    try:
        parkour = suite_of(task).name == "parkour"
    except ValueError as e:
        raise UserError(str(e)) from None
    if parkour:
        return play_parkour(args)
    opt = parse_overrides(args, {
        "task": "mt10", "policy": "expert", "num_envs": None, "episode_length": 500, "goal_mode": "metaworld",
        "seed": 42, "sim_device": "cpu", "backend": "auto", "noise": 0.0, "task_counts": None,
        "render": False, "render_dir": "renders", "render_steps": 150,
    }, {"policy": Literal["expert", "random"], "noise": NonNegFloat, "render_steps": PosInt})  # fmt: skip
    try:
        n_tasks = len(resolve(opt["task"]))
    except (ValueError, TypeError) as e:
        raise UserError(str(e)) from None
    num_envs = opt["num_envs"] or 50 * n_tasks
    env = _make_env(
        opt["task"], num_envs=num_envs, device=opt["sim_device"], backend=opt["backend"], seed=opt["seed"],
        episode_length=opt["episode_length"], goal_mode=opt["goal_mode"], task_counts=opt["task_counts"],
    )  # fmt: skip
    print(env)
    if opt["policy"] == "expert":
        experts = ScriptedExperts(env.task_names, env.task_counts, noise_std=float(opt["noise"]), seed=opt["seed"])

        def act(e):
            return experts(e.metaworld_obs)
    else:
        gen = torch.Generator(device=env.device).manual_seed(opt["seed"])

        def act(e):
            return torch.rand((e.num_envs, 4), generator=gen, device=e.device) * 2 - 1

    results = run_episodes(env, act)
    title = f"{opt['policy']} policy, {opt['episode_length']}-step episodes, goal_mode={opt['goal_mode']}"
    print(format_table(results, title))
    if opt["render"]:
        _render(opt)


def _render(opt: dict) -> None:
    """One world per task for `render_steps` steps: an MP4 per task and a PNG contact sheet."""
    from pathlib import Path

    import torch

    from mtbench.envs.metaworld.experts import ScriptedExperts
    from mtbench.render import contact_sheet, record_episode, write_videos

    env = _make_env(opt["task"], num_envs=None, device=opt["sim_device"], backend=opt["backend"],
                    seed=opt["seed"], episode_length=opt["episode_length"], goal_mode=opt["goal_mode"])  # fmt: skip
    if opt["policy"] == "expert":
        experts = ScriptedExperts(env.task_names, env.task_counts, noise_std=float(opt["noise"]), seed=opt["seed"])
        act = lambda e: experts(e.metaworld_obs)
    else:
        gen = torch.Generator(device=env.device).manual_seed(opt["seed"])
        act = lambda e: torch.rand((e.num_envs, 4), generator=gen, device=e.device) * 2 - 1
    frames = record_episode(env, act, steps=min(int(opt["render_steps"]), env.episode_length), every=2)
    out = Path(opt["render_dir"])
    for path in [
        *write_videos(frames, env.task_names, out),
        contact_sheet(frames, env.task_names, out / "contact_sheet.png"),
    ]:
        print(f"wrote {path}")


def params(args: list[str]) -> None:
    """Trainable parameter counts of the configured learner's networks (any `mtbench train` keys, `train=sac`
    included), for equal-size comparisons."""
    from mtbench.config import compose, resolve_config, run_label
    from mtbench.train import build_algorithm, build_env

    cfg = resolve_config(compose(args + ["sim_device=cpu"]))
    n = len(cfg.task_ids)
    probe = build_env(cfg, task_counts=[1] * n)  # one world per task: the observation and action sizes
    agent = build_algorithm(cfg, probe.obs_dim, probe.action_dim)
    label = getattr(agent, "network_label", None) or run_label(cfg) or cfg.network.name
    show = lambda counts: ", ".join(f"{k} {v:,}" for k, v in counts.items())  # noqa: E731
    print(f"{cfg.train.algo} network {label} for {n} tasks: {show(agent.parameter_counts())}")
    for name, counts in getattr(agent, "preset_counts", dict)().items():  # a learner's size presets (BRC's widths)
        print(f"  {name}: {show(counts)}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    cmd, rest = argv[0], argv[1:]
    run_command(cmd, _dispatch, cmd, rest)


def _dispatch(cmd: str, rest: list[str]) -> None:
    if cmd == "play":
        play(rest)
    elif cmd == "train":
        from mtbench.train import run_or_help

        run_or_help(rest)
    elif cmd == "params":
        params(rest)
    elif cmd == "report":
        from mtbench.report import main as report_main

        report_main(rest)
    elif cmd == "bench" and rest[:1] == ["gpu"]:
        from mtbench.gpucheck import main as gpu_main

        gpu_main(rest[1:])
    elif cmd == "transfer":
        from mtbench.transfer import main as transfer_main

        transfer_main(rest)
    elif cmd == "bench":
        from mtbench.bench import main as bench_main

        bench_main(rest)
    else:
        commands = "train, transfer, play, params, report, bench"
        raise UserError(f"unknown command {cmd!r}; one of {commands} (mtbench --help)")


if __name__ == "__main__":
    main()
