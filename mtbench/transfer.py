"""`mtbench transfer mode=... checkpoint=... task=...`: BRC's transfer to a new task (paper 003, §4-5, App. E.2).

Pretrain on the 45 Meta-World tasks that are not held out (`mode=pretrain`, a BRC run on MT50 minus the five held-out
tasks: assembly, disassemble, dial-turn, lever-pull, push-back), then learn one held-out task in one of the paper's
three ways, or from scratch for comparison:
- `model`: fine-tune every weight from the checkpoint (`pretrained=`); the new task's embedding starts fresh, the
  temperature as pretrained;
- `embedding`: every weight frozen as pretrained; only the new task's embedding is learned, by the critic's loss,
  from a small budget of transitions (`transitions=1000`; no random warm-up: the pretrained actor collects);
- `data`: a fresh learner whose replay buffer starts with the pretraining transitions (the checkpoint must hold its
  buffer: pretrain with save_buffer=True);
- `scratch`: a fresh learner, nothing from the checkpoint but its network sizes.

Each is one training run through the usual runner: run directory, curves, the evaluation table. The learner's sizes
(critic and actor widths and depths, atoms, embedding) are the checkpoint's; any `mtbench train` key may follow and
wins, e.g. `max_iterations=...` or `train.brc.gradient_steps_per_itr=...`.
"""

from __future__ import annotations

import math
import time

from mtbench.errors import UserError
from mtbench.overrides import parse_value

HELD_OUT = ("assembly-v3", "disassemble-v3", "dial-turn-v3", "lever-pull-v3", "push-back-v3")
"""The paper's Meta-World transfer tasks (App. E.2), never seen in pretraining."""
MODES = ("pretrain", "model", "embedding", "data", "scratch")
SIZES = ("critic_width", "critic_depth", "n_critics", "actor_width", "actor_depth", "embedding_dim", "embedding_norm",
         "num_atoms", "v_max", "log_std_min", "log_std_max")  # fmt: skip
"""The settings that shape BRC's networks: taken from the checkpoint so that its weights fit."""
OWN = ("mode", "checkpoint", "transitions")

USAGE = """usage: mtbench transfer mode=pretrain [any mtbench train key ...]   (BRC on MT50 without 5 held-out tasks)
       mtbench transfer mode=model|embedding|data|scratch checkpoint=runs/<pretrain>/checkpoints/latest.pt
                        task=assembly-v3|disassemble-v3|dial-turn-v3|lever-pull-v3|push-back-v3
                        [transitions=N] [any mtbench train key ...]"""


def pretrain_tasks() -> list[str]:
    """MT50 without the held-out tasks: 45 names."""
    from mtbench.envs.metaworld.registry import BENCHMARKS, task_class

    return [task_class(i).name for i in BENCHMARKS["mt50"] if task_class(i).name not in HELD_OUT]


def overrides_for(mode: str, checkpoint: str | None, rest: list[str]) -> list[str]:
    """The `mtbench train` overrides of a transfer run; `rest` (the user's own keys) comes last and wins."""
    if mode == "pretrain":
        return ["train=brc", f"task_id=[{','.join(pretrain_tasks())}]", *rest]
    keys = {a.split("=", 1)[0] for a in rest}
    if "task" not in keys and "task_id" not in keys:
        raise UserError(f"mode={mode} learns one new task: give task=..., e.g. task={HELD_OUT[0]}")
    if checkpoint is None:
        raise UserError(f"mode={mode} needs checkpoint=runs/<pretrain run>/checkpoints/latest.pt (mode=pretrain)")
    from mtbench.checkpoint import load_checkpoint_file

    ckpt = load_checkpoint_file(checkpoint, "checkpoint")
    saved = ckpt["config"]
    if saved["train"]["algo"] != "brc":
        raise UserError(f"checkpoint={checkpoint} is a {saved['train']['algo']} run; transfer starts from a BRC run")
    brc = saved["train"]["brc"]
    sizes = [f"train.brc.{k}={brc[k]}" for k in SIZES]
    seed = next((parse_value(a)[1] for a in rest if a.startswith("seed=")), saved["seed"])
    task = next(parse_value(a)[1] for a in rest if a.split("=", 1)[0] in ("task", "task_id"))
    label = task if isinstance(task, str) else f"{len(task)}tasks"
    name = f"experiment={label}_brc_{mode}_s{seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    extra = {
        "model": [f"pretrained={checkpoint}"],
        "embedding": [f"pretrained={checkpoint}", "train.brc.finetune=embedding", "train.brc.warmup_per_task=0",
                      "train.brc.batch_size=256"],
        "data": [f"train.brc.prefill={checkpoint}"],
        "scratch": [],
    }[mode]  # fmt: skip
    if mode == "data" and "buffer" not in ckpt["agent"]:
        raise UserError(f"checkpoint={checkpoint} holds no replay buffer: pretrain with save_buffer=True")
    return [f"train={saved['train']['name']}", name, *sizes, *extra, *rest]


def run(args: list[str]):
    """Parse `mode=`, `checkpoint=`, `transitions=`, pass every other key to `mtbench train`, train and evaluate."""
    from mtbench.config import ConfigError, load_config
    from mtbench.train import train

    own = {k: v for k, v in (parse_value(a) for a in args if a.split("=", 1)[0] in OWN)}
    rest = [a for a in args if a.split("=", 1)[0] not in OWN]
    mode = own.get("mode")
    if mode not in MODES:
        raise UserError(f"mode={mode} must be one of {', '.join(MODES)} (mtbench transfer --help)")
    transitions = own.get("transitions")
    if transitions is not None and (not isinstance(transitions, int) or isinstance(transitions, bool) or
                                    transitions < 1):  # fmt: skip
        raise UserError(f"transitions={transitions!r} must be an integer >= 1 (env steps of the new task)")
    cfg = load_config(overrides_for(mode, own.get("checkpoint"), rest))
    if cfg.train.algo != "brc":
        raise ConfigError(f"transfer runs BRC; train={cfg.train.name} is {cfg.train.algo}")
    if transitions is not None:  # the budget of new-task transitions sets the run's length
        cfg.max_iterations = math.ceil(transitions / (cfg.num_envs * cfg.train.brc.horizon))
    return train(cfg)


def main(args: list[str]) -> None:
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        print(USAGE)
        return
    run(args)
