"""MT-GRPO's math against computations written from the definitions (numpy, slow loops): reward-to-go, the
per-task group advantages of both forms on constructed batches, the degenerate groups; its refusal of a critic and
of a scheme on a critic; and every scheme acting on its per-task actor losses."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mtbench.algos import make_algorithm
from mtbench.algos.grpo import GRPO, episode_advantages, reward_to_go
from mtbench.config import ConfigError, compose, resolve_config
from mtbench.mtrl import combine_mean


def test_reward_to_go_resets_at_episode_ends_and_does_not_bootstrap():
    rng = np.random.default_rng(0)
    T, N, gamma = 12, 4, 0.9
    r = rng.normal(size=(T, N))
    done = rng.random((T, N)) < 0.2
    done[T - 1, 0] = True
    ref = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            g, k = 0.0, 0
            while t + k < T:
                g += gamma**k * r[t + k, n]
                if done[t + k, n]:
                    break
                k += 1
            ref[t, n] = g
    out = reward_to_go(torch.tensor(r), torch.tensor(done), gamma)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)


def _episodes_reference(r, done, fresh, task, n_tasks):
    """Walk each env's steps, cut them into segments, score the whole episodes, standardise per task."""
    T, N = r.shape
    segments = []  # (env, first step, last step, whole)
    for n in range(N):
        start = 0
        for t in range(T):
            if done[t, n] or t == T - 1:
                began = start > 0 or fresh[n]
                segments.append((n, start, t, bool(done[t, n]) and began))
                start = t + 1
    scores = {s: r[s[1] : s[2] + 1, s[0]].sum() for s in segments if s[3]}
    adv = np.zeros((T, N))
    for k in range(n_tasks):
        group = [s for s in scores if task[s[0]] == k]
        vals = np.array([scores[s] for s in group])
        if len(vals) < 2 or vals.std() == 0:
            continue  # one episode, or no spread: advantage 0
        mean, std = vals.mean(), vals.std(ddof=1)
        for s in group:
            adv[s[1] : s[2] + 1, s[0]] = (scores[s] - mean) / (std + 1e-8)
    scored = np.zeros((T, N), dtype=bool)
    for s in scores:
        scored[s[1] : s[2] + 1, s[0]] = True
    return adv, scored


def test_episode_advantages_equal_a_per_episode_computation():
    """Three tasks with different episode counts: task 0 several envs and episodes, task 1 a single whole episode
    (advantage 0), task 2 two whole episodes of equal return (no spread: 0). Cut episodes get 0 and are not
    scored: a first segment of an env that was not fresh, and every last segment without a done."""
    rng = np.random.default_rng(1)
    T = 10
    task = np.array([0, 0, 0, 1, 1, 2, 2])
    N = len(task)
    r = rng.normal(size=(T, N))
    done = np.zeros((T, N), dtype=bool)
    done[[3, 9], 0] = True  # env 0: fresh, two whole episodes
    done[[1, 6], 1] = True  # env 1: not fresh: the first segment is cut, one whole, a cut tail
    done[[9], 2] = True  # env 2: fresh, one whole episode spanning the rollout
    done[[4], 3] = True  # env 3 (task 1): fresh, one whole, then a cut tail
    # env 4 (task 1): no end inside the rollout: nothing scored
    done[[9], 5] = done[[9], 6] = True  # task 2: two whole episodes with the same return
    r[:, 6] = r[:, 5]
    fresh = np.array([True, False, True, True, True, True, True])
    ref, scored_ref = _episodes_reference(r, done, fresh, task, 3)
    adv, scored = episode_advantages(torch.tensor(r), torch.tensor(done), torch.tensor(fresh), torch.tensor(task), 3)
    np.testing.assert_allclose(adv.numpy(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(scored.numpy(), scored_ref)
    assert scored[:, 3].sum() == 5 and (adv[:, 3:5] == 0).all()  # task 1's lone episode: 0, not NaN
    assert scored[:, 5:7].all() and (adv[:, 5:7] == 0).all()  # task 2: no spread
    assert torch.isfinite(adv).all() and adv[:, 0].abs().sum() > 0


def _algo(scheme: str = "none", **settings) -> GRPO:
    cfg = resolve_config(compose(["train=grpo", "task_id=[reach-v3,push-v3]", "num_envs=4", "sim_device=cpu",
                                  "network.actor_units=[16]", f"scheme={scheme}"]))  # fmt: skip
    s = OmegaConf.to_container(cfg.train.grpo)
    s.update(horizon=6, mini_epochs=1, minibatch_size=24, **settings)
    net, sch = OmegaConf.to_container(cfg.network), OmegaConf.to_container(cfg.scheme)
    return make_algorithm("grpo", s, net, sch, 39 + 2, 4, ["reach-v3", "push-v3"], "cpu", seed=0)


def test_grpo_has_a_policy_and_no_critic():
    algo = _algo()
    names = [n for n, _ in algo.net.named_parameters()]
    assert names and not any("critic" in n for n in names)
    counts = algo.parameter_counts()
    assert counts["actor"] == counts["total"] == (41 * 16 + 16) + (16 * 4 + 4) + 4
    with pytest.raises(ConfigError, match="sizes a critic"):
        resolve_and_build(["network.critic_units=[8]"])


def resolve_and_build(extra: list[str]):
    from mtbench.train import run

    run(["train=grpo", "task=reach-v3", "num_envs=2", "train.grpo.minibatch_size=300", "max_iterations=1",
         "sim_device=cpu", "progress=false", *extra])  # fmt: skip


def test_episode_advantages_need_aligned_episodes_and_a_scheme_needs_a_part_grpo_has():
    with pytest.raises(ConfigError, match="env.random_init_progress=false"):
        resolve_config(compose(["train=grpo", "train.grpo.advantage=episode", "sim_device=cpu"]))
    with pytest.raises(ConfigError, match="horizon=100 < episode_length=150"):
        resolve_config(compose(["train=grpo", "train.grpo.advantage=episode", "train.grpo.horizon=100",
                                "train.grpo.minibatch_size=1000", "env.random_init_progress=false",
                                "sim_device=cpu"]))  # fmt: skip
    assert resolve_config(compose(["train=grpo", "scheme=pcgrad", "sim_device=cpu"])).scheme.apply_to == "actor"
    assert resolve_config(compose(["scheme=pcgrad", "sim_device=cpu"])).scheme.apply_to == "critic"  # PPO
    settings, network = dict(_algo().cfg.__dict__), {"name": "mlp", "actor_units": [16], "activation": "elu"}
    with pytest.raises(ValueError, match="GRPO has none"):
        make_algorithm("grpo", settings, network, {"name": "pcgrad", "apply_to": "critic"}, 41, 4,
                       ["reach-v3", "push-v3"], "cpu", seed=0)  # fmt: skip


def _conflicting_update(algo: GRPO) -> dict[str, torch.Tensor]:
    """One update on a constructed rollout: both tasks see the same states and actions, task 0 with advantage +1
    and task 1 with -1, so their policy gradients point against each other. Returns the parameters after."""
    gen = torch.Generator().manual_seed(0)
    T, N = 6, 4
    task = torch.tensor([0, 0, 1, 1])
    algo.start(task)
    state = torch.randn(T, 2, 39, generator=gen).repeat(1, 2, 1)  # envs 0,1 and 2,3 see the same states
    onehot = torch.nn.functional.one_hot(task, 2).float().expand(T, N, 2)
    for t in range(T):
        algo.act(torch.cat([state[t], onehot[t]], dim=-1))
        algo.observe(None, torch.zeros(N), torch.zeros(N, dtype=torch.bool), torch.zeros(N, dtype=torch.bool), {})
    algo.buf["actions"][:, 2:] = algo.buf["actions"][:, :2]
    algo.buf["logp"][:, 2:] = algo.buf["logp"][:, :2]
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0]).expand(T, N)
    algo.advantages = lambda: (adv, torch.ones(T, N, dtype=torch.bool))
    algo.update()
    return {k: v.clone() for k, v in algo.net.state_dict().items()}


@pytest.mark.parametrize("scheme", ["pcgrad", "cagrad", "famo"])
def test_every_scheme_acts_on_grpos_per_task_losses(scheme):
    """The same update under `scheme` differs from the plain mean (a scheme silently replaced by the mean fails)."""
    plain = _conflicting_update(_algo("none"))
    algo = _algo(scheme)
    after = _conflicting_update(algo)
    assert any(not torch.equal(plain[k], after[k]) for k in plain)
    if scheme == "famo":  # upstream's GRPO+FAMO weights the exponentiated losses: FAMO saw exp(loss) + eps
        assert algo.scheme.weights.prev.min() > algo.scheme.weights.eps


def test_plain_update_is_the_count_weighted_mean_of_task_losses():
    """With no scheme the gradient is that of the plain minibatch mean (checked against autograd of the mean)."""
    algo = _algo()
    algo.start(torch.tensor([0, 1, 0, 1]))
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        obs = torch.cat([torch.randn(4, 39, generator=gen), torch.eye(2)[[0, 1, 0, 1]]], dim=-1)
        algo.act(obs)
        algo.observe(None, torch.randn(4, generator=gen), torch.zeros(4, dtype=torch.bool),
                     torch.zeros(4, dtype=torch.bool), {})  # fmt: skip
    adv, _ = algo.advantages()
    T, N = adv.shape
    mb = {"obs": algo.buf["obs"].reshape(T * N, -1), "actions": algo.buf["actions"].reshape(T * N, -1),
          "logp": algo.buf["logp"].reshape(-1), "mu": algo.buf["mu"].reshape(T * N, -1),
          "sigma": algo.buf["sigma"].reshape(T * N, -1), "adv": adv.reshape(-1),
          "task": algo.buf["task"].expand(T, N).reshape(-1)}  # fmt: skip
    losses = algo.task_losses(mb)
    mean = combine_mean(losses["actor"], losses["counts"])
    cfg = algo.cfg
    mu, log_std = algo.net(algo.normalize_obs(mb["obs"], mb["task"]), mb["task"])
    from mtbench.algos.ppo import gaussian_logp

    ratio = torch.exp(gaussian_logp(mb["actions"], mu, log_std) - mb["logp"])
    a = mb["adv"]
    surr = torch.maximum(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip))
    ent = (0.5 + 0.5 * np.log(2 * np.pi) + log_std).sum(-1)
    bounds = ((mu - cfg.bound).clamp_min(0).square() + (mu + cfg.bound).clamp_max(0).square()).sum(-1)
    direct = (surr - cfg.entropy_coef * ent + cfg.bounds_loss_coef * bounds).mean()
    torch.testing.assert_close(mean, direct)
