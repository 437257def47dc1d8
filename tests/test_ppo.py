"""MT-PPO's pieces against independent references: numpy statistics, a per-env GAE recursion written
from the definition, and a plain single-task PPO loss written out sample by sample."""

import numpy as np
import pytest
import torch

from mtbench.algos.common import TaskRunningMeanStd, gae, per_task_mean, standardize_per_task
from mtbench.algos.ppo import PPO, PPOConfig, Rollout, gaussian_kl
from mtbench.mtrl import MeanScheme, combine_mean
from mtbench.nets import make_network


def test_per_task_means_recombine_to_the_plain_mean():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, generator=g, dtype=torch.float64)
    task = torch.randint(0, 7, (1000,), generator=g)
    task[task == 3] = 4  # one task absent from the batch
    per_task = per_task_mean(x, task, 7)
    counts = torch.bincount(task, minlength=7).double()
    assert per_task[3] == 0.0
    np.testing.assert_allclose(per_task[5].item(), x[task == 5].mean().item(), rtol=1e-12)
    np.testing.assert_allclose(combine_mean(per_task, counts).item(), x.mean().item(), rtol=1e-12)


def test_running_mean_std_per_task_matches_numpy():
    rng = np.random.default_rng(1)
    rms = TaskRunningMeanStd(3, 2)
    seen = {i: [] for i in range(3)}
    for _ in range(5):
        task = rng.integers(0, 3, 200)
        task[task == 2] = 0 if rng.random() < 0.5 else 2  # batches where a task is missing
        x = rng.normal(loc=task[:, None] * 3.0, scale=1 + task[:, None], size=(200, 2))
        rms.update(torch.from_numpy(x), torch.from_numpy(task))
        for i in range(3):
            seen[i].append(x[task == i])
    for i in range(3):
        data = np.concatenate(seen[i])
        np.testing.assert_allclose(rms.mean[i].numpy(), data.mean(0), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(rms.var[i].numpy(), data.var(0), rtol=1e-3)
    y = torch.tensor([[1.0, 2.0]])
    t = torch.tensor([1])
    torch.testing.assert_close(rms.denormalize(rms.normalize(y, t), t), y)


def test_standardize_per_task_matches_numpy():
    rng = np.random.default_rng(2)
    task = rng.integers(0, 4, 300)
    x = rng.normal(size=300) * (1 + task) + task
    out = standardize_per_task(torch.from_numpy(x), torch.from_numpy(task), 4).numpy()
    for i in range(4):
        xi = x[task == i]
        np.testing.assert_allclose(out[task == i], (xi - xi.mean()) / (xi.std(ddof=1) + 1e-8), rtol=1e-9)


def test_gae_matches_the_definition():
    """A_t = sum_k (gamma*lam)^k delta_{t+k}, cut at episode ends, one env at a time."""
    rng = np.random.default_rng(3)
    T, N, gamma, lam = 12, 5, 0.99, 0.95
    r, v = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    d = rng.random((T, N)) < 0.2
    last = rng.normal(size=N)
    ours = gae(*(torch.from_numpy(a) for a in (r, v, d, last)), gamma, lam).numpy()
    for n in range(N):
        for t in range(T):
            total, factor = 0.0, 1.0
            for k in range(t, T):
                nxt = last[n] if k == T - 1 else v[k + 1, n]
                delta = r[k, n] + gamma * nxt * (not d[k, n]) - v[k, n]
                total += factor * delta
                if d[k, n]:
                    break
                factor *= gamma * lam
            np.testing.assert_allclose(ours[t, n], total, rtol=1e-10, atol=1e-12)


def _ppo_cfg(**cfg) -> PPOConfig:
    """train.ppo of the default config (the one home of PPO's values), with `cfg` changed."""
    from omegaconf import OmegaConf

    from mtbench.config import compose

    defaults = OmegaConf.to_container(compose([]).train.ppo)
    return PPOConfig.from_dict({**defaults, "minibatch_size": 16384, **cfg})


def _agent(n_tasks=3, **cfg):
    net = make_network(10 + n_tasks, 4, [str(i) for i in range(n_tasks)], "mlp", actor_units=(16,), critic_units=(16,))
    gen = torch.Generator().manual_seed(0)
    return PPO(net, 10 + n_tasks, n_tasks, _ppo_cfg(**cfg), torch.device("cpu"), gen)


def _minibatch(agent, B=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    task = torch.randint(0, agent.n_tasks, (B,), generator=g)
    obs = torch.cat([torch.randn(B, 10, generator=g), torch.nn.functional.one_hot(task, agent.n_tasks).float()], 1)
    return {
        "obs": obs, "task": task, "actions": torch.randn(B, 4, generator=g),
        "logp": torch.randn(B, generator=g) - 5.0, "adv": torch.randn(B, generator=g),
        "values": torch.randn(B, generator=g), "returns": torch.randn(B, generator=g),
        "mu": torch.randn(B, 4, generator=g), "sigma": torch.rand(B, 4, generator=g) + 0.5,
    }  # fmt: skip


def _plain_loss(agent, mb):
    """Single-task PPO written sample by sample with torch.distributions, the per-task advantage
    standardisation done with boolean masks."""
    cfg = agent.cfg
    mu, log_std, v = agent.net(agent.normalize_obs(mb["obs"], mb["task"]), mb["task"])
    dist = torch.distributions.Normal(mu, log_std.exp())
    adv = mb["adv"].clone()
    for i in range(agent.n_tasks):
        m = mb["task"] == i
        adv[m] = (adv[m] - adv[m].mean()) / (adv[m].std() + 1e-8)
    ratio = torch.exp(dist.log_prob(mb["actions"]).sum(-1) - mb["logp"])
    a = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - cfg.clip, 1 + cfg.clip)).mean()
    vc = mb["values"] + torch.clamp(v - mb["values"], -cfg.clip, cfg.clip)
    c = torch.max((v - mb["returns"]) ** 2, (vc - mb["returns"]) ** 2).mean()
    ent = dist.entropy().sum(-1).mean()
    b = (torch.relu(mu - cfg.bound) ** 2 + torch.relu(-mu - cfg.bound) ** 2).sum(-1).mean()
    return a + 0.5 * cfg.critic_coef * c - cfg.entropy_coef * ent + cfg.bounds_loss_coef * b


def test_no_scheme_update_equals_plain_mean_loss_update():
    agent = _agent()
    mb = _minibatch(agent)
    losses = agent.task_losses(mb)
    agent.net.zero_grad()
    MeanScheme().backward(losses["actor"], losses["critic"], losses["counts"], [], [])
    ours = [p.grad.clone() for p in agent.net.parameters()]
    agent.net.zero_grad()
    _plain_loss(agent, mb).backward()
    for g_ours, p in zip(ours, agent.net.parameters()):
        torch.testing.assert_close(g_ours, p.grad, rtol=1e-5, atol=1e-7)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(4)
    mu, mu0 = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    s, s0 = torch.rand(8, 4, generator=g) + 0.3, torch.rand(8, 4, generator=g) + 0.3
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu0, s0), torch.distributions.Normal(mu, s))
    torch.testing.assert_close(gaussian_kl(mu, s, mu0, s0), ref.sum(-1), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kl,expected", [(0.05, 5e-4 / 1.5), (0.001, 5e-4 * 1.5), (0.008, 5e-4)])
def test_adaptive_lr_schedule(kl, expected):
    agent = _agent(schedule="adaptive")
    agent._adapt_lr(kl)
    assert agent.lr == pytest.approx(expected)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(expected)


def test_bad_ppo_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown train.ppo settings"):
        PPOConfig.from_dict({"horizn": 32})
    with pytest.raises(ValueError, match="train.ppo.schedule=.* must be one of fixed, adaptive"):
        _ppo_cfg(schedule="cosine")
    with pytest.raises(ValueError, match=r"\['lr'\] are missing"):
        PPOConfig.from_dict({k: v for k, v in vars(_ppo_cfg()).items() if k != "lr"})


def test_paco_masks_out_and_resets_only_the_exploding_task():
    """PaCo's Algorithm 1 inside a real PPO update: task 1's returns are absurd, so its loss exceeds the
    threshold in every minibatch; it must be left out of the loss, its compositional vector re-drawn inside the
    convex hull of the healthy tasks' vectors and its Adam moments cleared; the healthy tasks still train."""
    n, T, N = 3, 4, 12
    net = make_network(10 + n, 4, ["a", "b", "c"], "paco", K=4, D=16, loss_threshold=50.0)
    gen = torch.Generator().manual_seed(0)
    agent = PPO(net, 10 + n, n, _ppo_cfg(minibatch_size=24, mini_epochs=2, normalize_value=False,
                                          normalize_advantage=False), torch.device("cpu"), gen)  # fmt: skip
    task = torch.arange(N) % n
    buf = Rollout.empty(T, N, 10 + n, 4, task)
    g = torch.Generator().manual_seed(1)
    buf.obs[..., :10] = torch.randn(T, N, 10, generator=g)
    buf.obs[..., 10:] = torch.nn.functional.one_hot(task, n).float()
    buf.actions.normal_(generator=g)
    buf.sigma.fill_(1.0)
    buf.rewards[:, task == 1] = 1e3  # value error ~ 1e7 for task 1 only
    before = net.task_encoder.weight.detach().clone()
    metrics = agent.learn(buf, torch.zeros(N))
    assert metrics["masked_tasks"] == 1.0  # exactly one task masked in each of the 2 minibatches (mean over them)
    w = net.compositional_vectors().detach()
    # w_1 = beta_0 w_0 + beta_2 w_2 with beta on the simplex (it was re-drawn after the last step)
    A = torch.cat([torch.stack([w[0], w[2]], 1), torch.ones(1, 2)]).double()  # last row: sum(beta) = 1
    beta = torch.linalg.lstsq(A, torch.cat([w[1], torch.ones(1)]).double()[:, None]).solution.squeeze(-1)
    assert torch.allclose(A @ beta, torch.cat([w[1], torch.ones(1)]).double(), atol=1e-5)
    assert (beta >= -1e-6).all()
    assert not torch.equal(net.task_encoder.weight[0], before[0])  # the healthy tasks trained
    state = agent.optimizer.state[net.task_encoder.weight]
    assert state["exp_avg"][1].abs().max() == 0 and state["exp_avg_sq"][1].abs().max() == 0
    assert state["exp_avg"][0].abs().max() > 0
