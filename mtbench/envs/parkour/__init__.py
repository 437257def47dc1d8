"""Parkour suite: the Unitree Go1 quadruped on MTBench's 20 parkour terrains (plus flat).

`robot.py` holds the Go1 model (`assets/go1.xml`), its joint order, default pose and PD law;
`terrains.py` builds the terrain tiles the robot is attached to; `env.py` is the batched multi-task env
(`ParkourVecEnv`), with `settings.py` (easy / hard / hard_cl / flat), `scene.py` (one model per terrain type),
`observations.py` (the observation layout) and `rewards.py` (rewards, waypoints, curriculum, terminations).
"""

__all__ = ["ParkourVecEnv", "bench_parkour", "SETTINGS"]


def __getattr__(name: str):
    # lazy: importing robot.py or terrains.py alone does not load the env
    if name in ("ParkourVecEnv", "bench_parkour"):
        from mtbench.envs.parkour import env

        return getattr(env, name)
    if name == "SETTINGS":
        from mtbench.envs.parkour.settings import SETTINGS

        return SETTINGS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
