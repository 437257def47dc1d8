"""Meta-World suite: the 50 Meta-World v3 scenes with the v2 rewards, one module per task (`tasks/`, found by
`registry.py`), and the batched env (`env.py`, `MetaWorldVecEnv`)."""

__all__ = ["MetaWorldVecEnv", "ACTION_SCALE"]


def __getattr__(name: str):
    # lazy: the task modules (registry, scene, rewards) load without the env
    if name in __all__:
        from mtbench.envs.metaworld import env

        return getattr(env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
