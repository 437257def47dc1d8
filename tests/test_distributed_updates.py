"""Data-parallel learners (issue #16): one update over a batch split across 2 Gloo ranks equals the update of one
process over the whole batch, for PPO (per-task normalisers, per-task advantages, and the MTRL schemes) and SAC
(uneven task mixes per rank, temperatures, target critics).

Tolerance: parameters after the update within atol 1e-5 / rtol 1e-4 of the one-process update (float32 sums taken
in another order; Adam's first steps amplify nothing larger); the two ranks bit-identical to each other.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtbench.algos.ppo import PPO, PPOConfig, Rollout, gaussian_logp
from mtbench.algos.sac import SAC, SACConfig, squashed_sample
from mtbench.mtrl import make_scheme
from mtbench.nets import make_network
from mtbench.nets.sac import make_sac_networks

WORLD = 2
CPU = torch.device("cpu")
PPO_CASES = {  # scheme, tasks, scheme settings, PPO settings
    "ppo-none": ("none", 3, {}, {}),
    # two tasks: PCGrad's random task order cannot matter; raw returns, so that the tasks' critic gradients conflict
    "ppo-pcgrad": ("pcgrad", 2, {}, {"normalize_value": False}),
    "ppo-cagrad": ("cagrad", 3, {}, {}),
    "ppo-famo": ("famo", 3, {}, {}),
    "ppo-famo-after-step": ("famo", 3, {"loss_change": "after_step"}, {}),
}
SAC_CASES = {"sac-none": ("none", 3, {}, {}), "sac-pcgrad": ("pcgrad", 2, {}, {}), "sac-famo": ("famo", 3, {}, {})}


def _defaults(group: str, algo: str) -> dict:
    from omegaconf import OmegaConf

    from mtbench.config import compose

    return OmegaConf.to_container(compose([f"train={group}"]).train[algo])


def _ppo_update(scheme: str, n: int, kw: dict, ppo: dict, rank: int, world: int) -> dict[str, torch.Tensor]:
    """Two mini-epochs of one minibatch each over this rank's env columns of a fixed rollout."""
    T, N = 6, 4 * n
    g = torch.Generator().manual_seed(1)
    task = torch.arange(N) % n
    buf = Rollout.empty(T, N, 10 + n, 4, task)
    buf.obs[..., :10] = 3.0 * torch.randn(T, N, 10, generator=g) + 1.0
    buf.obs[..., 10:] = torch.nn.functional.one_hot(task, n).float()
    # the old policy near the fresh network's (mean about 0, std 1), so that probability ratios stay near 1
    buf.actions.normal_(generator=g)
    buf.mu.normal_(0.0, 0.1, generator=g)
    buf.sigma.uniform_(0.9, 1.1, generator=g)
    buf.logp.copy_(gaussian_logp(buf.actions, buf.mu, buf.sigma.log()))
    buf.values.normal_(generator=g)
    # tasks pull the shared critic apart, unequally: task 0's returns large and positive, the others' small and negative
    buf.rewards.copy_(torch.randn(T, N, generator=g) + torch.where(task == 0, 10.0, -2.0))
    buf.dones.copy_(torch.rand(T, N, generator=g) < 0.1)
    last_value = torch.randn(N, generator=g)
    cols = slice(rank * N // world, (rank + 1) * N // world)
    local = Rollout(*(getattr(buf, f)[:, cols] for f in ("obs", "actions", "logp", "values", "rewards", "dones",
                                                         "mu", "sigma")), task[cols])  # fmt: skip
    cfg = PPOConfig.from_dict({**_defaults("ppo", "ppo"), "minibatch_size": T * N // world, "mini_epochs": 2,
                               "normalize_input": True, "normalize_value": True, "per_task_advantage": True,
                               "normalize_advantage": True, "clip_value": False, **ppo})  # fmt: skip
    # no value clipping: with it these random old values would freeze most samples' critic losses, and a step must
    # move them well beyond float32 noise (FAMO's after_step form reads that change)
    torch.manual_seed(0)
    net = make_network(10 + n, 4, [str(i) for i in range(n)], "mlp", actor_units=(16,), critic_units=(16,))
    gen = torch.Generator().manual_seed(0)
    agent = PPO(net, 10 + n, n, cfg, CPU, gen, make_scheme(scheme, n, CPU, generator=gen, **kw))
    agent.learn(local, last_value[cols])
    out = {f"net.{k}": v for k, v in agent.net.state_dict().items()}
    out.update({f"obs_norm.{k}": v for k, v in agent.obs_norm.state_dict().items()})
    out.update({f"value_norm.{k}": v for k, v in agent.value_norm.state_dict().items()})
    if scheme == "famo":
        out["famo.w"] = agent.scheme.state_dict()["w"]
    return out


class _SampleNoiseSAC(SAC):
    """SAC whose exploration noise is a fixed function of each sample's state, so that a sample draws the same
    action on whichever rank holds it (the test checks the reductions, not the sampling)."""

    def _pi(self, obs_n, task, deterministic=False):
        mu, raw = self.actor(obs_n, task)
        log_std = raw.clamp(self.cfg.log_std_min, self.cfg.log_std_max)
        noise = None if deterministic else torch.sin(37.0 * obs_n[:, :1] + torch.arange(mu.shape[1]))
        return squashed_sample(mu, log_std, noise)


def _sac_update(scheme: str, n: int, kw: dict, sac: dict, rank: int, world: int) -> dict[str, torch.Tensor]:
    """The input normaliser fed this rank's part of a batch, then two gradient steps on it; the tasks are drawn
    at random, so the ranks hold different task mixes."""
    B, obs = 48, 6
    g = torch.Generator().manual_seed(2)
    task = torch.randint(0, n, (B,), generator=g)
    onehot = torch.nn.functional.one_hot(task, n).float()
    x = torch.randn(B, obs, generator=g)
    batch = {
        "obs": torch.cat([x, onehot], 1), "action": torch.rand(B, 2, generator=g) * 2 - 1,
        "reward": torch.randn(B, generator=g) + torch.where(task == 0, 20.0, -20.0),
        "next_obs": torch.cat([torch.randn(B, obs, generator=g), onehot], 1),
        "discount": torch.where(torch.rand(B, generator=g) < 0.2, 0.0, 0.9**3), "task": task,
    }  # fmt: skip
    rows = slice(rank * B // world, (rank + 1) * B // world)
    local = {k: v[rows] for k, v in batch.items()}
    settings = {**_defaults("sac", "sac"), "gradient_steps_per_itr": 1, "batch_size": B // world,
                "replay_buffer_size": 1000, **sac}  # fmt: skip
    torch.manual_seed(0)
    actor, critic = make_sac_networks(obs + n, 2, [str(i) for i in range(n)], "mlp", actor_units=(16,),
                                      critic_units=(16,), activation="relu")  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    agent = _SampleNoiseSAC(actor, critic, obs + n, 2, n, SACConfig.from_dict(settings), CPU, gen,
                            make_scheme(scheme, n, CPU, generator=gen, **kw))  # fmt: skip
    agent.obs_norm.update(local["obs"][:, :obs], local["task"])
    for _ in range(2):
        agent.gradient_step(local)
    out = {f"net.{k}": v for k, v in agent.net.state_dict().items()}
    out.update({f"obs_norm.{k}": v for k, v in agent.obs_norm.state_dict().items()})
    out["log_alpha"] = agent.log_alpha.detach().clone()
    if scheme == "famo":
        out["famo.w"] = agent.scheme.state_dict()["w"]
    return out


def _case(name: str, rank: int, world: int) -> dict[str, torch.Tensor]:
    if name in PPO_CASES:
        return _ppo_update(*PPO_CASES[name], rank, world)
    return _sac_update(*SAC_CASES[name], rank, world)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.save({name: _case(name, rank, WORLD) for name in [*PPO_CASES, *SAC_CASES]}, f"{out_dir}/{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    """Every case's result on each of 2 Gloo ranks (one spawn for all of them)."""
    tmp = tmp_path_factory.mktemp("gloo")
    mp.start_processes(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True, start_method="spawn")
    return [torch.load(tmp / f"{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("name", [*PPO_CASES, *SAC_CASES])
def test_two_ranks_update_as_one_big_batch(two_ranks, name):
    single = _case(name, 0, 1)
    rank0, rank1 = two_ranks[0][name], two_ranks[1][name]
    assert single.keys() == rank0.keys() == rank1.keys()
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), f"{key}: the ranks disagree"
        torch.testing.assert_close(rank0[key], single[key], atol=1e-5, rtol=1e-4, msg=lambda m, key=key: f"{key}: {m}")


@pytest.mark.parametrize("name", ["ppo-pcgrad", "ppo-cagrad", "ppo-famo", "sac-pcgrad", "sac-famo"])
def test_the_scheme_cases_are_not_the_plain_mean(name):
    """The data make each scheme act: with the plain mean the update would be another, so the equality above
    tests the schemes' own reductions."""
    cases, run = (PPO_CASES, _ppo_update) if name.startswith("ppo") else (SAC_CASES, _sac_update)
    scheme, n, kw, settings = cases[name]
    plain, ours = run("none", n, {}, settings, 0, 1), run(scheme, n, kw, settings, 0, 1)
    moved = [k for k in ours if k.startswith("net.") and not torch.allclose(ours[k], plain[k], atol=1e-6)]
    assert moved, f"{name} updated exactly as the plain mean"


def test_one_process_is_unchanged_by_the_reductions():
    """Without a process group every reduction is the identity: the shares are the losses themselves."""
    from mtbench import distributed

    losses, counts = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 0.0, 2.0])
    assert distributed.world_size() == 1
    assert distributed.share(losses, counts, distributed.global_counts(counts)) is losses
    assert math.isclose(float(distributed.mean_over_ranks(torch.tensor(2.5))), 2.5)
