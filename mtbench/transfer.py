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

`mode=study` runs the four on every held-out task (`tasks=[...]` for some of them, `modes=[...]` for some modes) for
each of `seeds=[...]` (default: the checkpoint's seed) at `transitions=N` new-task steps (`embedding_transitions=M`
for the embedding), one run directory each (<task>_<mode>_s<seed>) under `study=DIR` (default
runs/transfer_<pretrain run>), and writes the table DIR/transfer.md, each cell a mean over its seeds. Finished runs
are reused: two processes with different `tasks=` may share the cores and the directory, and a rerun completes the
table.

Each is one training run through the usual runner: run directory, curves, the evaluation table. The learner's sizes
(critic and actor widths and depths, atoms, embedding) are the checkpoint's; any `mtbench train` key may follow and
wins, e.g. `max_iterations=...` or `train.brc.gradient_steps_per_itr=...`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from mtbench.errors import UserError
from mtbench.overrides import parse_value

HELD_OUT = ("assembly-v3", "disassemble-v3", "dial-turn-v3", "lever-pull-v3", "push-back-v3")
"""The paper's Meta-World transfer tasks (App. E.2), never seen in pretraining."""
MODES = ("pretrain", "model", "embedding", "data", "scratch", "study")
SIZES = ("critic_width", "critic_depth", "n_critics", "actor_width", "actor_depth", "embedding_dim", "embedding_norm",
         "num_atoms", "v_max", "log_std_min", "log_std_max", "normalize_input")  # fmt: skip
"""The settings that shape BRC's networks and what they read: taken from the checkpoint so that its weights fit (a
key newer than the checkpoint keeps its default, which is how that run ran)."""
OWN = ("mode", "checkpoint", "transitions", "tasks", "modes", "seeds", "study", "embedding_transitions")

USAGE = """usage: mtbench transfer mode=pretrain [any mtbench train key ...]   (BRC on MT50 without 5 held-out tasks)
       mtbench transfer mode=model|embedding|data|scratch checkpoint=runs/<pretrain>/checkpoints/latest.pt
                        task=assembly-v3|disassemble-v3|dial-turn-v3|lever-pull-v3|push-back-v3
                        [transitions=N] [any mtbench train key ...]
       mtbench transfer mode=study checkpoint=... [tasks=[...]] [modes=[...]] [seeds=[...]] [transitions=20000]
                        [embedding_transitions=1000] [study=DIR] [any mtbench train key ...]"""


def pretrain_tasks() -> list[str]:
    """MT50 without the held-out tasks: 45 names."""
    from mtbench.envs.metaworld.registry import BENCHMARKS, task_class

    return [task_class(i).name for i in BENCHMARKS["mt50"] if task_class(i).name not in HELD_OUT]


def overrides_for(mode: str, checkpoint: str | None, rest: list[str], ckpt: dict | None = None) -> list[str]:
    """The `mtbench train` overrides of a transfer run; `rest` (the user's own keys) comes last and wins. `ckpt`: the
    checkpoint already loaded (a study reads it once, not once per run)."""
    if mode == "pretrain":
        return ["train=brc", f"task_id=[{','.join(pretrain_tasks())}]", *rest]
    keys = {a.split("=", 1)[0] for a in rest}
    if "task" not in keys and "task_id" not in keys:
        raise UserError(f"mode={mode} learns one new task: give task=..., e.g. task={HELD_OUT[0]}")
    if checkpoint is None:
        raise UserError(f"mode={mode} needs checkpoint=runs/<pretrain run>/checkpoints/latest.pt (mode=pretrain)")
    if ckpt is None:
        from mtbench.checkpoint import load_checkpoint_file

        ckpt = load_checkpoint_file(checkpoint, "checkpoint")
    saved = ckpt["config"]
    if saved["train"]["algo"] != "brc":
        raise UserError(f"checkpoint={checkpoint} is a {saved['train']['algo']} run; transfer starts from a BRC run")
    brc = saved["train"]["brc"]
    sizes = [f"train.brc.{k}={brc[k]}" for k in SIZES if k in brc]
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
    if mode == "study":
        return study(own, rest)
    if extra := sorted(set(own) & set(STUDY_OWN)):
        raise UserError(f"{', '.join(extra)} belong to mode=study, not mode={mode}")
    transitions = own.get("transitions")
    if transitions is not None:
        _check_transitions(transitions)
    cfg = load_config(overrides_for(mode, own.get("checkpoint"), rest))
    if cfg.train.algo != "brc":
        raise ConfigError(f"transfer runs BRC; train={cfg.train.name} is {cfg.train.algo}")
    if transitions is not None:  # the budget of new-task transitions sets the run's length
        cfg.max_iterations = math.ceil(transitions / (cfg.num_envs * cfg.train.brc.horizon))
    return train(cfg)


def _check_transitions(n, key: str = "transitions") -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UserError(f"{key}={n!r} must be an integer >= 1 (env steps of the new task)")


STUDY_MODES = ("model", "embedding", "data", "scratch")
STUDY_OWN = ("tasks", "modes", "seeds", "study", "embedding_transitions")
EMBEDDING_OWN = ("train.brc.warmup_per_task", "train.brc.batch_size")
"""Keys a study's embedding runs keep at their mode's values whatever the study's other runs are given: they collect
with the pretrained actor from the first step and learn from a small buffer."""
STUDY_DEFAULTS = {"transitions": 20_000, "embedding_transitions": 1_000}
"""The study's budgets of new-task transitions: `embedding` learns from about a thousand (the paper: fewer than a
thousand), the other three from the same larger number (a CPU-sized default; the paper's curves run to 500k)."""


def study(own: dict, rest: list[str]) -> Path:
    """`mode=study`: every mode on every held-out task for every seed from one pretrained checkpoint, one run each
    under one study directory (a finished run, one with eval.json, is reused, so two processes can share the tasks
    and an interrupted study completes), then `transfer.md`: success and return per task and mode."""
    from mtbench.checkpoint import load_checkpoint_file
    from mtbench.config import load_config
    from mtbench.train import train

    checkpoint = own.get("checkpoint")
    if checkpoint is None:
        raise UserError("mode=study needs checkpoint=runs/<pretrain run>/checkpoints/latest.pt (mode=pretrain)")
    listed = lambda v: [v] if isinstance(v, (str, int)) else list(v)  # noqa: E731
    tasks, modes = listed(own.get("tasks", list(HELD_OUT))), listed(own.get("modes", list(STUDY_MODES)))
    if bad := [m for m in modes if m not in STUDY_MODES]:
        raise UserError(f"modes={bad} are not transfer modes: pick from {list(STUDY_MODES)}")
    if any(a.split("=", 1)[0] in ("task", "task_id", "experiment", "runs_dir", "seed") for a in rest):
        raise UserError(
            "mode=study names its runs itself: give tasks=[...], seeds=[...] and study=DIR, not task=/seed=/"
            "experiment=/runs_dir="
        )
    key = lambda m: "embedding_transitions" if m == "embedding" else "transitions"  # noqa: E731
    budget = {m: own.get(key(m), STUDY_DEFAULTS[key(m)]) for m in modes}
    for m, n in budget.items():
        _check_transitions(n, key(m))
    ckpt = load_checkpoint_file(checkpoint, "checkpoint")
    seeds = listed(own["seeds"]) if "seeds" in own else [ckpt["config"]["seed"]]
    if not seeds or any(not isinstance(x, int) or isinstance(x, bool) for x in seeds):
        raise UserError(f"seeds={own.get('seeds')!r} must be a list of integers, e.g. seeds=[1,2,3]")
    root = Path(str(own.get("study") or Path("runs") / f"transfer_{Path(checkpoint).resolve().parent.parent.name}"))
    for seed in seeds:
        for task in tasks:
            for mode in modes:
                run_dir = root / f"{task}_{mode}_s{seed}"
                if (run_dir / "eval.json").is_file():
                    print(f"{run_dir}: finished, reused")
                    continue
                mine = [a for a in rest if mode != "embedding" or a.split("=", 1)[0] not in EMBEDDING_OWN]
                keys = [f"task={task}", f"seed={seed}", f"runs_dir={root}", f"experiment={run_dir.name}", *mine]
                cfg = load_config(overrides_for(mode, checkpoint, keys, ckpt))
                cfg.max_iterations = math.ceil(budget[mode] / (cfg.num_envs * cfg.train.brc.horizon))
                train(cfg)
    table = study_table(root)
    (root / "transfer.md").write_text(table)
    print(table + f"\nwrote {root / 'transfer.md'}")
    return root


def study_table(root: Path) -> str:
    """Markdown: one row per held-out task, one column per mode (every finished run under `root`), each cell the
    deterministic success % and mean return of the final evaluations averaged over the cell's seeds; the new-task
    transitions in the header."""
    import json
    import re

    import yaml

    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    frames: dict[str, set[int]] = {}
    pattern = re.compile(rf"_({'|'.join(STUDY_MODES)})_s\d+$")
    for evals in sorted(root.glob("*/eval.json")):
        if not (found := pattern.search(evals.parent.name)):
            continue
        cfg = yaml.safe_load((evals.parent / "config.yaml").read_text())
        (r,) = json.loads(evals.read_text())
        runs.setdefault((r["name"], found[1]), []).append((r["success"], r["mean_return"]))
        frames.setdefault(found[1], set()).add(cfg["max_iterations"] * cfg["num_envs"] * cfg["train"]["brc"]["horizon"])
    modes = [m for m in STUDY_MODES if m in frames]
    if not modes:
        raise UserError(f"{root} holds no finished transfer run (<task>_<mode>_s<seed>/eval.json)")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    counts = {len(v) for v in runs.values()}
    cell = lambda v: (f"{100 * mean([s for s, _ in v]):.0f} % ({mean([g for _, g in v]):.0f})"  # noqa: E731
                      + ("" if len(counts) == 1 else f" [{len(v)}]"))  # fmt: skip
    head = [f"{m} ({'/'.join(f'{n:,}' for n in sorted(frames[m]))} transitions)" for m in modes]
    lines = ["| held-out task | " + " | ".join(head) + " |", "|---|" + "---:|" * len(modes)]
    for task in sorted({t for t, _ in runs}):
        lines.append(f"| {task} | " + " | ".join(cell(runs[task, m]) if (task, m) in runs else "-" for m in modes)
                     + " |")  # fmt: skip
    per_mode = {m: [s for (_, mm), v in runs.items() if mm == m for s, _ in v] for m in modes}
    lines.append("| **mean success** | " + " | ".join(f"**{100 * mean(per_mode[m]):.0f} %**" for m in modes) + " |")
    seeds = f"{counts.pop()} seed(s) per cell" if len(counts) == 1 else "[n]: the cell's number of seeds"
    note = (
        f"\nDeterministic success on the final evaluation's episodes (mean return in brackets), the mean over "
        f"{seeds}; the new task's transitions only (pretraining data not counted).\n"
    )
    return "\n".join(lines) + "\n" + note


def main(args: list[str]) -> None:
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        print(USAGE)
        return
    run(args)
