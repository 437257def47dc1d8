"""Training configuration: Hydra composition from `mtbench/conf`, then every default that depends on the
machine or the task set resolved and every inconsistency rejected before a single env is built."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any, Literal

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from mtbench.envs.core import BACKENDS, even_counts, resolve_device
from mtbench.envs.metaworld.registry import BENCHMARKS
from mtbench.envs.parkour.terrains import TERRAIN_NAMES
from mtbench.envs.suites import SUITES, Suite, suite_of
from mtbench.errors import UserError
from mtbench.overrides import parse_value
from mtbench.validation import NonNegInt, PosFloat, PosInt, check_values

CONF_DIR = Path(__file__).parent / "conf"


TOP_LEVEL: dict[str, Any] = {
    "task": str | int | list,
    "task_id": list | None,
    "task_counts": list[PosInt] | None,
    "num_envs": PosInt | None,
    "seed": int,
    "sim_device": str | None,
    "rl_device": str | None,
    "backend": Literal[BACKENDS],
    "max_iterations": NonNegInt | None,  # 0: evaluate the untrained policy
    "max_minutes": PosFloat | None,
    "experiment": str | int | None,
    "runs_dir": str,
    "checkpoint": str | None,
    "test": bool,
    "headless": bool,
    "record_videos": bool,
    "save_frequency": PosInt | None,
    "save_buffer": bool,
    "progress": bool,
    "metrics_every": NonNegInt,
    "suite": Literal[("auto", *SUITES)],
    "pretrained": str | None,
    "wandb_activate": bool,
}
"""Types and ranges of config.yaml's top-level keys (the sections are checked against their consumers)."""
EVAL: dict[str, Any] = {"episodes_per_task": PosInt | None, "seed_offset": int}

PROFILE_RUN_KEYS = ("num_envs", "envs_per_task", "max_iterations", "max_minutes")
"""Keys of a train config's `gpu`/`cpu` profile that size the run (`envs_per_task` instead of `num_envs`: that many
envs for each task of the set, e.g. BRC's one env per task); the others are the algorithm's settings."""


class ConfigError(UserError, ValueError):
    """A configuration that cannot run; the message says what to change."""


RESUME_KEYS = (
    "checkpoint", "max_iterations", "max_minutes", "experiment", "runs_dir", "save_frequency", "save_buffer",
    "progress", "headless", "eval", "metrics_every", "wandb_activate", "wandb_group", "wandb_name", "wandb_entity",
    "wandb_project", "env.nconmax", "env.njmax", "parkour.nconmax", "parkour.njmax",
)  # fmt: skip
"""Keys `checkpoint=` may change when resuming (with a section name, any key under it): how long the run goes on,
where and how it reports, how it is evaluated; plus each learner's `resumable_settings`. Everything else is
the saved run's: a resumed run is the run it was, and `pretrained=` starts a new one from its weights."""
TEST_KEYS = ("test", "record_videos", "sim_device", "rl_device", "backend", "num_envs", "task_counts", "env", "parkour")
"""Keys `test=True checkpoint=...` may change besides RESUME_KEYS: evaluation builds its own env and loads only the
weights, so it may run on another device or engine, or with other env options (the observation size is checked)."""
GROUPS = ("train", "network", "scheme")
"""Config groups: `network=moore` names a section, compared with the saved run by its `name`."""


def compose(overrides: list[str]) -> DictConfig:
    """The Hydra config for `overrides` (upstream style `key=value`). MT25/MT50 pick the MT50 column of
    Table 3 unless `train=` is given."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import ConfigCompositionException, OverrideParseException

    overrides = list(overrides) + default_groups(overrides)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            return hydra_compose("config", overrides=overrides)
    except OverrideParseException as e:
        why = [line for line in str(e).splitlines()[1:] if line.strip() and "hydra.cc" not in line][:1]
        raise ConfigError(f"cannot parse {e.override!r} ({'; '.join(why) or 'malformed'}); write key=value") from None
    except ConfigCompositionException as e:
        msg = str(e).splitlines()[0]
        if msg.startswith("Could not override"):
            key = msg.split("'")[1]
            groups = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0]]  # e.g. network=moore
            parent = cfg_keys(key.rsplit(".", 1)[0] if "." in key else "", groups)
            msg = f"unknown key {key!r}; valid keys here: {', '.join(parent)}"
        elif "Could not find '" in msg:  # a config group option that does not exist, e.g. network=resnet
            group, name = msg.split("Could not find '")[1].split("'")[0].rsplit("/", 1)
            options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
            msg = f"unknown {group} {name!r}; available: {', '.join(options)}"
        raise ConfigError(f"{msg}\nSee `mtbench train --help` and mtbench/conf/config.yaml for all keys.") from e


def _add_new_keys(saved: DictConfig, composed: DictConfig) -> None:
    """Keys added to the configs since the run was saved, at any depth (`train.brc.normalize_input`), with today's
    defaults: a new key's default keeps the behaviour the run had."""
    for key, value in composed.items():
        if key not in saved:
            saved[key] = value
        elif isinstance(value, DictConfig) and isinstance(saved[key], DictConfig):
            _add_new_keys(saved[key], value)


def load_config(overrides: list[str]) -> DictConfig:
    """The resolved config of `mtbench train overrides`. With `checkpoint=`, the saved run's own config, with only
    the keys of RESUME_KEYS (and TEST_KEYS under `test=True`) taken from `overrides`; any other key given with a
    value the run did not have is refused, naming each such key."""
    given = [o for o in overrides if o.split("=", 1)[0] == "checkpoint"]
    path = parse_value(given[-1])[1] if given else None
    if path is None:
        return resolve_config(compose(overrides))
    from mtbench.checkpoint import load_checkpoint_file

    saved = OmegaConf.create(load_checkpoint_file(path)["config"])
    keys = [o.split("=", 1)[0].lstrip("~") for o in overrides if "=" in o]
    # the saved run's groups first, so that its own keys (train.sac.batch_size) are valid overrides
    composed = compose([f"{g}={saved[g].name}" for g in GROUPS if g not in keys] + list(overrides))
    test = bool(composed.test)
    allowed = RESUME_KEYS + (TEST_KEYS if test else ())
    resumable = _learner(saved.train.algo).resumable_settings
    differ = []
    for key in keys:
        at = f"{key}.name" if key in GROUPS else key
        _, _, rest = key.partition(".")
        if any(key == a or key.startswith(f"{a}.") for a in allowed) or (
            rest.partition(".")[0] == saved.train.algo and rest.partition(".")[2] in resumable
        ):
            OmegaConf.update(saved, key, OmegaConf.select(composed, key), merge=False, force_add=True)
            continue
        new, old = OmegaConf.select(composed, at), OmegaConf.select(saved, at, default="(absent)")
        if new != old and not (isinstance(old, str) and str(new) == old):  # experiment=2024 is the string '2024'
            differ.append(f"{key} (run: {old}, given: {new})")
    if differ:
        raise ConfigError(
            f"checkpoint={path} resumes its run as it was configured, but {'; '.join(differ)}. Drop these, or start "
            f"a new run from its weights with pretrained={path} (mtbench train --help lists what a resume may change)"
        )
    _add_new_keys(saved, composed)
    if not test and "experiment" not in keys:
        saved.experiment = None  # continue in the checkpoint's own run directory (resolve_config)
    if "num_envs" in keys and "task_counts" not in keys:
        saved.task_counts = None  # spread the new number over the tasks
    saved.pretrained = None  # the saved weights supersede the ones the run started from
    return resolve_config(saved)


def _learner(algo: str) -> type:
    from mtbench.algos import ALGORITHMS

    if algo not in ALGORITHMS:
        raise ConfigError(f"train.algo={algo!r} is not an algorithm; available: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[algo]


def default_groups(overrides: list[str]) -> list[str]:
    """Checks the overrides' form (`key=value`, no `+key`) and returns the config groups the task implies when they
    are not given: MT25/MT50 the MT50 column of Table 3 (`train=ppo_mt50`), a parkour task its Go1 recipe."""
    bare = [o for o in overrides if "=" not in o and not o.startswith("~")]
    if bare:
        raise ConfigError(f"expected key=value, got {bare[0]!r}; see mtbench train --help")
    added = [o for o in overrides if o.startswith("+")]
    if added:
        raise ConfigError(
            f"{added}: new keys would be ignored by the trainer; use the existing keys (mtbench train --help)"
        )
    keys = {o.split("=", 1)[0].lstrip("~") for o in overrides}
    task = next((o.split("=", 1)[1] for o in overrides if o.startswith("task=")), "mt10")
    suite = _suite(task, next((o.split("=", 1)[1] for o in overrides if o.startswith("suite=")), None))
    out = []
    if "train" not in keys and task.lower() in ("mt25", "mt50"):
        out.append("train=ppo_mt50")
    if "train" not in keys and suite.default_train:
        out.append(f"train={suite.default_train}")
    if "network" not in keys and suite.default_network:
        out.append(f"network={suite.default_network}")
    return out


def cfg_keys(path: str, groups: list[str] | None = None) -> list[str]:
    """Keys of the config at dotted `path` ('' for the top level) with the config groups chosen in `groups`
    (e.g. ["network=moore"]), for error messages."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import ConfigCompositionException

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        try:
            node = hydra_compose("config", overrides=groups or [])
        except ConfigCompositionException:  # the groups themselves are invalid: list the defaults' keys
            node = hydra_compose("config")
    for part in filter(None, path.split(".")):
        node = node.get(part) if isinstance(node, DictConfig) else None
    return sorted(node.keys()) if isinstance(node, DictConfig) else []


def _device(name: str | None) -> torch.device:
    try:
        return resolve_device(name)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"{e}; e.g. sim_device=cpu") from e


def _suite(task, suite: str | None) -> Suite:
    try:
        return suite_of(task, suite)
    except ValueError as e:
        raise ConfigError(str(e)) from e


def resolve_config(cfg: DictConfig) -> DictConfig:
    """Fill every `null` default and validate. Returns a new config; the input is left as composed."""
    try:
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    except OmegaConfBaseException as e:  # e.g. an interpolation `${...}` to a key that does not exist
        raise ConfigError(f"{getattr(e, 'full_key', '') or 'config'}: {str(e).splitlines()[0]}") from None
    check_sections(cfg)
    with open_dict(cfg):
        sim = _device(cfg.sim_device)
        cfg.sim_device = str(sim)
        cfg.rl_device = str(_device(cfg.rl_device)) if cfg.rl_device is not None else str(sim)
        profile = cfg.train.gpu if sim.type == "cuda" else cfg.train.cpu
        task = list(cfg.task_id) if cfg.task_id is not None else cfg.task
        suite = _suite(task, cfg.suite)
        cfg.suite = suite.name
        _resolve_env(cfg, suite)
        try:
            ids, names = suite.resolve(task, cfg[suite.options_key].get("setting"))
        except (ValueError, TypeError, NotImplementedError) as e:
            raise ConfigError(str(e)) from e
        cfg.task_ids, cfg.task_names = ids, names
        if cfg.eval.episodes_per_task is None:
            cfg.eval.episodes_per_task = suite.eval_episodes
        if cfg.num_envs is None:
            if cfg.task_counts is not None:
                cfg.num_envs = sum(cfg.task_counts)
            elif "envs_per_task" in profile:
                cfg.num_envs = int(profile.envs_per_task) * len(ids)
            else:
                cfg.num_envs = int(profile.num_envs)
        if cfg.num_envs < len(ids):
            raise ConfigError(f"num_envs={cfg.num_envs} is fewer than the {len(ids)} tasks; each task needs >= 1 env")
        if cfg.task_counts is None:
            cfg.task_counts = even_counts(cfg.num_envs, len(ids))
        counts = list(cfg.task_counts)
        if len(counts) != len(ids) or sum(counts) != cfg.num_envs or min(counts) < 1:
            raise ConfigError(
                f"task_counts {counts} must have one positive entry per task ({len(ids)}) and sum to "
                f"num_envs={cfg.num_envs}"
            )
        _resolve_network(cfg.network, len(ids), cfg.suite, cfg.train.algo, cfg.train.name)
        if (
            cfg.suite == "parkour" and cfg.parkour.onehot == "terrains" and len(ids) != len(TERRAIN_NAMES)
            and cfg.network.name not in ("mlp", "multihead")
        ):  # fmt: skip
            raise ConfigError(
                f"network={cfg.network.name} reads the task one-hot as {len(ids)} columns, but parkour.onehot=terrains "
                f"makes it {len(TERRAIN_NAMES)} wide; use parkour.onehot=tasks (or network=mlp)"
            )
        _resolve_algorithm(cfg, profile, suite)
        if cfg.save_frequency is None:
            cfg.save_frequency = int(cfg.train.save_frequency)
        if cfg.save_frequency < 1:
            raise ConfigError(f"save_frequency={cfg.save_frequency} must be >= 1 (iterations between checkpoints)")
        if cfg.max_iterations is None:
            setting = suite.setting_of(task, cfg[suite.options_key].get("setting"))
            cfg.max_iterations = _profile_iterations(profile, setting)
        if cfg.max_minutes is None and "max_minutes" in profile:
            cfg.max_minutes = profile.max_minutes
        if cfg.pretrained is not None and cfg.checkpoint is not None:
            raise ConfigError("pretrained= starts a new run from weights, checkpoint= resumes one: pass only one")
        if cfg.checkpoint is not None and not cfg.test and cfg.experiment is None:
            # resuming continues the checkpoint's own run directory: runs/<experiment>/checkpoints/x.pt
            run_dir = Path(cfg.checkpoint).resolve().parent.parent
            cfg.runs_dir, cfg.experiment = str(run_dir.parent), run_dir.name
        if cfg.experiment is not None:
            cfg.experiment = str(cfg.experiment)  # experiment=2024 names a directory, not a number
        if cfg.experiment is None:
            label = cfg.task if cfg.task_id is None else f"{len(ids)}tasks"
            method = "_".join(x for x in (cfg.train.name, run_label(cfg)) if x)
            cfg.experiment = f"{label}_{method}_s{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
        if cfg.test and cfg.checkpoint is None:
            raise ConfigError("test=True needs checkpoint=runs/<experiment>/checkpoints/best.pt (or latest.pt)")
        if cfg.wandb_activate and importlib.util.find_spec("wandb") is None:
            raise ConfigError("wandb_activate=True needs Weights & Biases: pip install wandb (or wandb_activate=false)")
        if cfg.record_videos and not cfg.test:
            raise ConfigError("record_videos=True is part of the test mode: add test=True checkpoint=...")
    return cfg


def shard_config(cfg: DictConfig, world: int, local_rank: int = 0) -> DictConfig:
    """The config one rank of a `torchrun` job of `world` ranks trains with (a new one; `cfg`, the user's totals, is
    what config.yaml and the checkpoints keep). `num_envs` (each task's count) and the learner's `split_settings` are
    totals over the ranks: each rank gets 1/world of them; a total that does not divide is refused, naming one that
    does. A CUDA device given as `cuda` or `cuda:0` becomes this rank's GPU, `cuda:<LOCAL_RANK>`. Under `test=True`
    only the devices change (evaluation splits its episodes itself)."""
    out = OmegaConf.create(OmegaConf.to_container(cfg))
    job = f"the {world} ranks of this torchrun job"
    with open_dict(out):
        for key in ("sim_device", "rl_device"):
            dev = torch.device(out[key])
            if dev.type == "cuda" and (dev.index or 0) == 0:
                out[key] = f"cuda:{local_rank}"
        episodes = int(out.eval.episodes_per_task)
        if episodes < world:
            raise ConfigError(
                f"eval.episodes_per_task={episodes} is split over {job} and each rank needs at least one; give "
                f"eval.episodes_per_task={world} or more"
            )
        if not out.test:
            _shard_sizes(out, world, job)
    return out


def _shard_sizes(out: DictConfig, world: int, job: str) -> None:
    """`shard_config`'s totals: the envs of each task and the learner's `split_settings`, divided by `world`."""
    with open_dict(out):
        counts = list(out.task_counts)
        if any(c % world for c in counts):
            step = len(counts) * world
            fit = max(step, -(-int(out.num_envs) // step) * step)
            raise ConfigError(
                f"num_envs={out.num_envs} (task_counts {counts}) is a total over {job}: each task's count must be a "
                f"multiple of {world}; e.g. num_envs={fit} (or task_counts that are multiples of {world})"
            )
        out.task_counts = [c // world for c in counts]
        out.num_envs = sum(out.task_counts)
        algo = out.train.algo
        for key in _learner(algo).split_settings:
            value = out.train[algo][key]
            if value is None:
                continue
            if value % world:
                lo, hi = value // world * world, (value // world + 1) * world
                fit = f"{lo} or {hi}" if lo else str(hi)
                raise ConfigError(
                    f"train.{algo}.{key}={value} is a total over {job} and must be a multiple of {world}; e.g. "
                    f"train.{algo}.{key}={fit}"
                )
            out.train[algo][key] = value // world


def check_sections(cfg: DictConfig) -> None:
    """Every value's type and range, before any default is resolved or anything built: the top level and `eval`
    here, `env`/`parkour` against their env's constructor, `network` and `scheme` against theirs (the learner's
    settings are checked in `_resolve_algorithm`, against its settings dataclass)."""
    from mtbench.mtrl import SCHEMES
    from mtbench.nets import MATCHABLE, NETWORKS

    def section(parent: dict, key: str, where: str = "") -> dict:
        value = parent.get(key)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{where}{key}={value!r} must be a section of key: value settings")
        return {k: v for k, v in (value or {}).items() if v is not None}  # a null is filled later

    plain = OmegaConf.to_container(cfg)
    try:
        check_values({k: v for k, v in plain.items() if k in TOP_LEVEL}, TOP_LEVEL)
        check_values(section(plain, "eval"), EVAL, "eval.")
        for suite in SUITES.values():
            check_values(section(plain, suite.options_key), suite.env_class, f"{suite.options_key}.")
        net = section(plain, "network")
        # the by_* tables fill the same keys: their entries meet the same hints
        if isinstance(net.get("name"), str) and net["name"] in NETWORKS:
            hints = NETWORKS[net["name"]]
            check_values(net, hints, "network.")
            if net.get("match") is not None:
                check_values(net, {"match": Literal[MATCHABLE]}, "network.")
            for table in ("by_suite", "by_algo"):
                for name in section(net, table, "network."):
                    check_values(section(net[table], name, f"network.{table}."), hints, f"network.{table}.{name}.")
            for key, column in section(net, "by_task_set", "network.").items():
                if not (isinstance(column, list) and len(column) == 2):
                    raise ValueError(f"network.by_task_set.{key}={column!r} must be [MT10 value, MT50 value]")
                for value in column:
                    check_values({key: value} if value is not None else {}, hints, "network.by_task_set.")
        scheme = section(plain, "scheme")
        if isinstance(scheme.get("name"), str) and scheme["name"] in SCHEMES:
            check_values(scheme, SCHEMES[scheme["name"]], "scheme.")
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _resolve_env(cfg: DictConfig, suite: Suite) -> None:
    """The env settings a train config runs with (its `env:` section: PQN's 500-step episodes, GRPO's aligned
    episodes) fill the `null`s of the top-level `env`; a value given on the command line wins."""
    wanted = cfg.train.get("env") or {}
    unknown = sorted(set(wanted) - set(cfg.env))
    if unknown:
        raise ConfigError(f"train={cfg.train.name} sets unknown env keys {unknown}; valid: {sorted(cfg.env)}")
    for key, value in wanted.items():
        if cfg.env[key] is None:
            cfg.env[key] = value
    missing = [k for k, v in cfg.env.items() if v is None and k not in ("nconmax", "njmax")]  # null: per-scene size
    if missing and suite.options_key == "env":
        key = missing[0]
        raise ConfigError(f"env.{key} is null and train={cfg.train.name} does not set it; give env.{key}=...")


def _profile_iterations(profile: DictConfig, setting: str | None) -> int:
    """The profile's `max_iterations`: a number, or a table by the suite's setting (train/ppo_go1.yaml's GPU profile:
    the paper's iterations per parkour setting)."""
    value = profile.max_iterations
    if not isinstance(value, DictConfig):
        return int(value)
    if setting not in value:
        raise ConfigError(
            f"the train config sets max_iterations per setting ({', '.join(value)}), not for {setting}; "
            "give max_iterations=..."
        )
    return int(value[setting])


def _resolve_algorithm(cfg: DictConfig, profile: DictConfig, suite: Suite) -> None:
    """`train.algo` must be registered; its settings `train.<algo>` get their machine defaults from the profile
    (`train.gpu` / `train.cpu`) and are checked against num_envs and the env settings by the algorithm itself; a
    scheme's `apply_to: null` becomes the algorithm's `scheme_part`."""
    from mtbench.algos import ALGORITHMS

    algo = cfg.train.algo
    if algo not in ALGORITHMS:
        raise ConfigError(f"train.algo={algo!r} is not an algorithm; available: {', '.join(sorted(ALGORITHMS))}")
    if algo not in cfg.train:
        raise ConfigError(f"train={cfg.train.name} has no train.{algo} section with the settings of {algo}")
    learner = ALGORITHMS[algo]
    machine = {k: v for k, v in OmegaConf.to_container(profile).items() if k not in PROFILE_RUN_KEYS}
    settings = OmegaConf.to_container(cfg.train[algo])
    try:  # the values given first (a null is the profile's to fill), then all of them once resolved
        check_values({k: v for k, v in settings.items() if v is not None}, learner.settings_class, f"train.{algo}.")
        cfg.train[algo] = settings = learner.resolve_settings(settings, int(cfg.num_envs), machine)
        learner.settings_class.from_dict(settings)
        learner.check_env(settings, OmegaConf.to_container(cfg[suite.options_key]))
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if "apply_to" in cfg.scheme and cfg.scheme.apply_to is None:
        cfg.scheme.apply_to = ALGORITHMS[algo].scheme_part


def _resolve_network(
    net: DictConfig, n_tasks: int, suite: str = "metaworld", algo: str = "ppo", train: str | None = None
) -> None:
    """Fill `null` network sizes from the network's `by_suite: {suite: {key: value}}` (the parkour benchmark's
    Table 7), then its `by_algo: {name: {key: value}}` (PPO's Table 3 vs SAC's Table 6; the train config's own
    name first, e.g. grpo_mt50, then its algorithm's), then its
    `by_task_set: {key: [MT10 value, MT50 value]}` (Table 3 gives two columns; sets of more than 10 tasks take
    the MT50 one), then drop the tables. Values set in the YAML or on the command line are never replaced."""
    per_suite = (net.pop("by_suite", None) or {}).get(suite) or {}
    by_algo = net.pop("by_algo", None) or {}
    per_algo = by_algo.get(train) or by_algo.get(algo) or {}
    table = net.pop("by_task_set", None) or {}
    for key, value in [*per_suite.items(), *per_algo.items()]:
        if net.get(key) is None:
            net[key] = value
    for key, (mt10, mt50) in table.items():
        if net.get(key) is None:
            net[key] = mt10 if n_tasks <= 10 else mt50


def run_label(cfg: DictConfig) -> str:
    """Network and scheme in a run's name when they are not the vanilla ones, e.g. `moore_mh_pcgrad`."""
    net = cfg.network.name + ("_mh" if cfg.network.get("multihead") else "")
    parts = [net if net != "mlp" else "", cfg.scheme.name if cfg.scheme.name != "none" else ""]
    return "_".join(p for p in parts if p)


def benchmark_names() -> str:
    return ", ".join(BENCHMARKS)
