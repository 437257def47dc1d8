"""`mtbench train -m network.critic_units=[64],[256] seed=1,2,3`: sweeps with Hydra's own multirun (its override
grammar, sweeper and launcher, so `hydra/launcher=...` plugins apply), one run directory per job under
`runs/multirun/<time>/job<N>`.

Hydra's sweeper expands the sweep into jobs and every job's config is composed, resolved and checked as `mtbench
train` would (with the groups its own task implies), so a bad value in the seventh job stops the sweep at once, not
hours in; then Hydra's launcher runs the jobs. A job that fails while training (a diverged run, a full disk) is
reported in one line and the sweep goes on; the command then ends with exit status 1 naming them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from omegaconf import DictConfig, open_dict

from mtbench.config import CONF_DIR, ConfigError, compose, default_groups, resolve_config
from mtbench.errors import RunStopped, UserError

MULTIRUN_FLAGS = ("-m", "--multirun")


def expand(overrides: list[str]) -> list[list[str]]:
    """The jobs a sweep stands for, each as its own `key=value` list, by Hydra's basic sweeper (its grammar:
    `a,b`, `range(0,3)`, `choice(...)`, in Hydra's order)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise ConfigError(f"cannot parse the sweep: {str(e).splitlines()[0]}") from None
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _hydra_multirun(overrides: list[str], job, sweep_dir: Path) -> None:
    """Run `job(cfg)` for every combination the overrides sweep, through hydra.main's multirun, in this process;
    Hydra's own record of the sweep (multirun.yaml) goes to `sweep_dir`."""
    import hydra

    main = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)(job)
    argv = sys.argv
    sys.argv = ["mtbench-train", "--multirun", *overrides, "hydra/job_logging=none", "hydra/hydra_logging=none",
                "hydra.output_subdir=null", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=."]  # fmt: skip
    try:
        main()
    except SystemExit as e:  # Hydra reports its own errors, then exits
        if e.code:
            raise RunStopped("Hydra's launcher stopped the sweep (its message is above)") from None
    finally:
        sys.argv = argv


def multirun(overrides: list[str]) -> list[Path]:
    """Resolve and check every job of the sweep, then train (or test) each through Hydra's launcher; returns the
    run directories of the jobs that finished."""
    from hydra.core.hydra_config import HydraConfig

    from mtbench.train import test, train

    overrides = [o for o in overrides if o not in MULTIRUN_FLAGS]
    default_groups(overrides)  # the form of the overrides (key=value, no +key)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jobs: list[DictConfig] = []
    for n, job in enumerate(expand(overrides)):
        try:
            cfg = compose(job)
            with open_dict(cfg):
                if cfg.experiment is None:  # one directory per job, the sweep's jobs side by side
                    cfg.runs_dir = str(Path(cfg.runs_dir) / "multirun" / stamp)
                    cfg.experiment = f"job{n}"
            jobs.append(resolve_config(cfg))
        except UserError as e:
            raise UserError(f"job {n} ({' '.join(job)}): {e}") from None
    out = Path(jobs[0].runs_dir)
    print(f"sweep of {len(jobs)} jobs into {out}")
    done: list[Path] = []
    failed: list[str] = []

    def run_job(_: DictConfig) -> None:
        """Hydra launches job N; it trains the config checked for job N (Hydra's order is `expand`'s)."""
        n = HydraConfig.get().job.num
        cfg = jobs[n]
        print(f"--- job {n + 1}/{len(jobs)}: {Path(cfg.runs_dir) / cfg.experiment}")
        try:
            (test if cfg.test else train)(cfg)
            done.append(Path(cfg.runs_dir) / cfg.experiment)
        except (UserError, RunStopped) as e:
            print(f"mtbench train: job {n} failed: {e}", file=sys.stderr)
            failed.append(f"job{n}")

    out.mkdir(parents=True, exist_ok=True)
    _hydra_multirun(overrides, run_job, out)
    if failed:
        raise RunStopped(f"{len(failed)} of {len(jobs)} jobs failed: {', '.join(failed)} (the others finished)")
    return done
