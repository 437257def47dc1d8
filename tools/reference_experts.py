"""Successes of Meta-World's scripted experts on the reference itself: `metaworld.MT1(task, seed)`'s 50
goals, 500-step episodes, success at any step. Runs inside the reference venv (.venv-ref, built by
tools/record_reference.py); prints one line per (task, seed) and a JSON summary.

    .venv-ref/bin/python tools/reference_experts.py shelf-place-v3 --seeds 42 7 0 1 2
"""

import argparse
import json
import warnings

import metaworld
from metaworld.policies import ENV_POLICY_MAP


def successes(task: str, seed: int) -> int:
    bench = metaworld.MT1(task, seed=seed)
    env = bench.train_classes[task]()
    env.max_path_length = 500
    policy = ENV_POLICY_MAP[task]()
    count = 0
    for goal in bench.train_tasks:
        env.set_task(goal)
        obs, _ = env.reset()
        for _ in range(500):
            obs, _, _, truncated, info = env.step(policy.get_action(obs))
            if info["success"]:
                count += 1
                break
            if truncated:
                break
    env.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    out = {}
    for task in args.tasks:
        out[task] = {seed: successes(task, seed) for seed in args.seeds}
        print(task, out[task], "total", sum(out[task].values()), "/", 50 * len(args.seeds), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
