"""The examples run, at toy size."""

import runpy
from pathlib import Path

import numpy as np
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_gymnasium_ppo_example_trains_through_the_gymnasium_face_only():
    main = runpy.run_path(str(EXAMPLES / "gymnasium_ppo.py"), run_name="example")["main"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script does when run: a small MLP beside MuJoCo's threads
    try:
        out = main(
            ["--num-envs", "10", "--num-steps", "16", "--iterations", "2", "--episode-length", "8", "--epochs", "2"]
        )
    finally:
        torch.set_num_threads(threads)
    assert out["episodes"] == 30  # 10 envs x 3 ends of 8-step episodes in 32 steps (plus their reset steps)
    assert np.isfinite(out["mean_return"]) and np.isfinite(out["loss"]) and 0.0 <= out["success_rate"] <= 1.0
