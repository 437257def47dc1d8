"""PPO is unchanged by refactors of the trainer: fixed-seed CPU runs (MT10, a few iterations) end with the
parameters recorded before the algorithm interface was introduced (commit 507be00), bit for bit.

The hashes hold for the pinned torch CPU build with 2 torch threads (the test sets them; recorded on a 2-core x86
VM); a change of torch, of the CPU's vector instructions or of the algorithm itself changes them, and then this
test says so rather than letting PPO drift silently."""

import hashlib

import pytest
import torch

from mtbench.train import run

TINY = ["task=mt10", "num_envs=20", "train.ppo.horizon=8", "train.ppo.minibatch_size=40", "train.ppo.mini_epochs=2",
        "max_iterations=3", "seed=7", "eval.episodes_per_task=1", "env.episode_length=10", "progress=false",
        "sim_device=cpu"]  # fmt: skip

RECORDED = {
    "vanilla": ((), "5ed0f3818aabbc2c82745f79d02efc3a1db7e0441ed08ed87be52c38db86c6a4"),
    # re-recorded deliberately (issue #17): PaCo's shared trunk and task logits now get the value loss's gradient too
    # (PCGrad over every parameter the critic's losses reach), and PCGrad runs on the tasks' Gram matrix
    "paco_pcgrad": (
        ("network=paco", "scheme=pcgrad"),
        "9c186d6c967a8f62a71bd7b522ab86cb2ab1f0bc84a6bb89418839fab483d649",
    ),
}


def parameter_hash(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_fixed_seed_ppo_run_ends_with_the_recorded_parameters(tmp_path, name):
    overrides, expected = RECORDED[name]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # as recorded: float sums depend on how many threads split them
    try:
        run(TINY + list(overrides) + [f"runs_dir={tmp_path}", "experiment=h"])
    finally:
        torch.set_num_threads(threads)
    state = torch.load(tmp_path / "h" / "checkpoints" / "latest.pt", weights_only=False)["agent"]["net"]
    assert parameter_hash(state) == expected
