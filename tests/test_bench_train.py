"""The training benchmarks' code paths at toy sizes: `bench train` times the runner's own iteration for any
algorithm, `bench sac` times one SAC gradient step against one PPO minibatch step, `bench brc` one BRC step per critic
width."""

import pytest

from mtbench import bench


@pytest.mark.parametrize("algo", [
    ["train.ppo.horizon=4", "train.ppo.minibatch_size=16", "train.ppo.mini_epochs=1"],
    ["train=sac", "train.sac.batch_size=16", "train.sac.gradient_steps_per_itr=1", "train.sac.replay_buffer_size=64",
     "train.sac.nstep=1", "train.sac.num_warmup_steps=1", "network.actor_units=[16]", "network.critic_units=[16]"],
])  # fmt: skip
def test_bench_train_times_the_runners_iteration(capsys, algo):
    bench.main(["train", "task_id=[reach-v3,push-v3]", "num_envs=8", "iterations=2", "sim_device=cpu", *algo])
    out = capsys.readouterr().out
    assert "| training end to end (rollout + update) |" in out and "end-to-end / env-only" in out


def test_bench_sac_against_ppo(capsys):
    bench.main(["sac", "repeats=1", "networks=mlp", "sac_batch=32", "ppo_minibatch=320"])
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| mlp |")][0]
    sac, ppo, ratio = (float(x) for x in row.strip("|").split("|")[1:])
    # the table prints 3 decimals: the ratio of the printed times is only as exact as their rounding (+-0.0005 each)
    lo, hi = (sac - 5e-4) / (ppo + 5e-4), (sac + 5e-4) / (ppo - 5e-4)
    assert sac > 0 and ppo > 0 and lo - 0.01 <= ratio <= hi + 0.01


def test_bench_brc_times_a_step_per_critic_width(capsys):
    bench.main(["brc", "repeats=1", "widths=[64,128]", "batch=32"])
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| 64 ") or line.startswith("| 128 ")
    ]
    assert len(rows) == 2 and rows[0].endswith("| 1.0x |")
