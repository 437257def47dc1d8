"""Background stepping of task blocks (mtbench/sim/queue.py) and the env-speed benchmark's code path.

The env scores block k while worker threads step the blocks behind it; that must change nothing but the speed:
a run with workers equals, bit for bit, the same run stepped inline.
"""

from __future__ import annotations

import pytest
import torch

import mtbench
from mtbench import bench
from mtbench.sim.queue import StepQueue, thread_layout


def test_thread_layout():
    assert thread_layout(2, 10) == (2, 1)  # many blocks: each worker steps whole blocks on one thread
    assert thread_layout(2, 1) == (1, 2)  # one task still gets every core
    assert thread_layout(16, 10) == (10, 2)
    assert thread_layout(16, 50) == (16, 1)
    with pytest.raises(ValueError):
        thread_layout(0, 3)


def _rollout(env, steps: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    out = [env.reset().clone()]
    for _ in range(steps):
        obs, rew, term, trunc, info = env.step(torch.rand(env.num_envs, 4, generator=gen) * 2 - 1)
        out += [obs.clone(), rew.clone(), info["final_obs"].clone(), (term | trunc).clone()]
    return out


def test_background_stepping_equals_inline_stepping():
    # 5 tasks, 3 worlds each, 12-step episodes with random initial progress: resets on most steps
    kw = dict(num_envs=15, device="cpu", seed=5, episode_length=12, random_init_progress=True, nthread=2)
    tasks = ["reach-v3", "push-v3", "door-open-v3", "drawer-close-v3", "window-open-v3"]
    threaded = mtbench.make(tasks, **kw)
    inline = mtbench.make(tasks, **kw)
    inline._queue = StepQueue(0)
    assert threaded._queue._pool is not None
    a, b = _rollout(threaded, 30), _rollout(inline, 30)
    assert any(t.dtype == torch.bool and t.any() for t in a)  # episodes did end along the way
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    threaded.close()  # the workers stop; a closed env goes on stepping inline, with the same results
    assert threaded._queue._pool is None
    a, b = _rollout(threaded, 3), _rollout(inline, 3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_bench_env_runs_and_reports_the_ceiling(capsys):
    bench.main(["env", "task=['reach','push']", "num_envs=4", "steps=3", "repeats=2", "reference=False"])
    out = capsys.readouterr().out
    assert "raw MuJoCo C (ceiling)" in out and "ours / ceiling per repeat" in out
    assert "raw MuJoCo C, 2 workers x " in out  # two tasks: two workers, whatever the core count
