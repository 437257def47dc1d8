"""Env-steps/s of the reference: Meta-World's own `gymnasium.make_vec(..., vector_strategy="sync")` with
random actions. Runs inside the isolated reference venv (.venv-ref, see tools/record_reference.py) and
prints one JSON line; `mtbench bench env` calls it so both numbers come from one run."""

import json
import sys
import time

import gymnasium as gym
import metaworld  # noqa: F401  (registers the Meta-World envs)
import mujoco


def main() -> None:
    benchmark, steps = sys.argv[1], int(sys.argv[2])
    envs = gym.make_vec(f"Meta-World/{benchmark}", vector_strategy="sync", seed=0)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    for _ in range(20):
        envs.step(envs.action_space.sample())
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(envs.action_space.sample())
    elapsed = time.perf_counter() - start
    n = envs.num_envs
    print(
        json.dumps(
            {
                "env_steps_per_s": n * steps / elapsed,
                "num_envs": n,
                "steps": steps,
                "metaworld": metaworld.__version__ if hasattr(metaworld, "__version__") else "?",
                "mujoco": mujoco.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
