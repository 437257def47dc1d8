"""gymnasium ids of the Meta-World suite, so that a Meta-World user switches by changing the id string alone:
`gymnasium.make_vec("MTBench/MT10", ...)` where they wrote `gymnasium.make_vec("Meta-World/MT10", ...)`.

Ids: `MTBench/MT10`, `MTBench/MT25`, `MTBench/MT50`, one per task by its Meta-World name (`MTBench/reach-v3`),
`MTBench/MT1` with `env_name=`, and `MTBench/custom-mt-envs` with `envs_list=` (Meta-World's ids and keywords). Each
builds `mtbench.make(...)` behind `GymVectorEnv` through gymnasium's `vector_entry_point`, with `mtbench.make`'s
options and checks. Registered on `import mtbench` (gymnasium 1.x loads no plugin entry points);
`gymnasium.make_vec("mtbench:MTBench/MT10")` imports mtbench itself.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
from gymnasium.vector import AutoresetMode

NAMESPACE = "MTBench"
BENCHMARKS = {"MT10": "mt10", "MT25": "mt25", "MT50": "mt50"}
VECTOR_STRATEGIES = ("sync", "async")
METAWORLD_KEYWORDS = {
    "reward_function_version": ("v2", "only Meta-World's v2 rewards are ported"),
    "reward_normalization_method": (None, "wrap the env in gymnasium.wrappers.vector.NormalizeReward"),
    "normalize_observations": (False, "wrap the env in gymnasium.wrappers.vector.NormalizeObservation "
                               "(with autoreset_mode='NextStep')"),
    "num_goals": (50, "goal_mode='metaworld' uses Meta-World's 50 seeded goals per task"),
    "task_select": ("random", "goal_mode= chooses how goals are drawn (rand, fixed, metaworld)"),
    "render_mode": (None, "render with `mtbench play ... render=True` (mtbench.render)"),
}  # fmt: skip
"""Meta-World keywords taken at their Meta-World default (a script that spells them out runs unchanged), refused
otherwise with what to use instead."""
_HERE = "mtbench.envs.gym_registration"


def make_vec_env(
    num_envs: int | None = 1,
    task: str | int | list = "mt10",
    *,
    autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
    tensors: Literal["numpy", "torch"] = "numpy",
    use_one_hot: bool = True,
    vector_strategy: str = "sync",
    max_episode_steps: int | None = None,
    **options: Any,
):
    """`GymVectorEnv(mtbench.make(task, num_envs, **options), autoreset_mode, tensors, use_one_hot)`, with
    Meta-World's keywords understood.

    num_envs: total envs, as `mtbench.make`; gymnasium's default 1 means one env per task (Meta-World's layout) when
      there are several tasks, since `make_vec` cannot tell a default from a choice.
    options: `mtbench.make`'s (device, backend, seed, task_counts, episode_length, goal_mode, reward_scale,
      terminate_on_success, random_init_progress, check_actions, nthread, nconmax, njmax), checked by it.
    Meta-World's keywords: `use_one_hot` (here True by default: mtbench's observation carries the task id; False
      gives Meta-World's 39-d one), `max_episode_steps` (= episode_length), `vector_strategy` ("sync" or "async":
      both mean the one batched env), and those of `METAWORLD_KEYWORDS` at their Meta-World defaults.
    """
    import mtbench
    from mtbench.envs.gym_wrapper import GymVectorEnv
    from mtbench.envs.metaworld.registry import resolve

    if vector_strategy not in VECTOR_STRATEGIES:
        raise ValueError(f"vector_strategy must be one of {VECTOR_STRATEGIES}, got {vector_strategy!r}")
    for key, (default, instead) in METAWORLD_KEYWORDS.items():
        if key in options and options.pop(key) != default:
            raise ValueError(f"{key}: only Meta-World's default {default!r} is taken here; {instead}")
    if max_episode_steps is not None:
        if "episode_length" in options:
            raise ValueError("give episode_length or max_episode_steps (Meta-World's name for it), not both")
        options["episode_length"] = max_episode_steps
    try:
        several = len(resolve(task)) > 1
    except (ValueError, TypeError):
        several = False  # mtbench.make names the problem
    if num_envs == 1 and several:
        num_envs = None
    env = mtbench.make(task, num_envs=num_envs, suite="metaworld", **options)
    try:
        return GymVectorEnv(env, autoreset_mode=autoreset_mode, tensors=tensors, use_one_hot=use_one_hot)
    except ValueError:
        env.close()
        raise


def make_mt1(num_envs: int | None = 1, env_name: str | None = None, **kwargs: Any):
    """`MTBench/MT1`: one task named by `env_name` (Meta-World's keyword), `num_envs` worlds of it."""
    if env_name is None:
        raise ValueError("MTBench/MT1 needs env_name=, a Meta-World task name such as 'reach-v3'")
    return make_vec_env(num_envs, env_name, **kwargs)


def make_custom(num_envs: int | None = 1, envs_list: list | None = None, **kwargs: Any):
    """`MTBench/custom-mt-envs`: the tasks of `envs_list` (Meta-World's keyword: names, or MTBench names or ids)."""
    if not envs_list:
        raise ValueError(
            "MTBench/custom-mt-envs needs envs_list=, a list of task names such as ['reach-v3', 'push-v3']"
        )
    return make_vec_env(num_envs, list(envs_list), **kwargs)


def single_env_refused(**kwargs: Any):
    """`gymnasium.make` (one env) on an MTBench id: the envs come batched only."""
    raise gym.error.Error(
        "MTBench envs are vectorised: use gymnasium.make_vec(id, num_envs=...), or mtbench.make(...) for torch tensors"
    )


def registered_ids() -> dict[str, dict]:
    """Every MTBench gymnasium id with the spec keywords it fixes."""
    from mtbench.envs.metaworld.names import METAWORLD_NAMES

    ids: dict[str, dict] = {f"{NAMESPACE}/{name}": {"task": task} for name, task in BENCHMARKS.items()}
    ids.update({f"{NAMESPACE}/{name}": {"task": name} for name in METAWORLD_NAMES})
    return ids


def register_envs() -> None:
    """Register the ids with gymnasium (once: ids already there are left alone)."""
    entry_points = {f"{NAMESPACE}/MT1": "make_mt1", f"{NAMESPACE}/custom-mt-envs": "make_custom"}
    specs = {env_id: ("make_vec_env", kw) for env_id, kw in registered_ids().items()}
    specs.update({env_id: (fn, {}) for env_id, fn in entry_points.items()})
    for env_id, (fn, kwargs) in specs.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=f"{_HERE}:single_env_refused",
                vector_entry_point=f"{_HERE}:{fn}",
                kwargs=kwargs,
            )
