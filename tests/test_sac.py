"""MT-SAC's math against slow loops written from the definitions: n-step returns over constructed episodes
(terminations, time-outs, the ring buffer wrapping around), the twin-min soft target, each task's temperature,
gradient clipping after backward; and the schemes acting on SAC's per-task losses."""

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mtbench.algos.replay import NStepWindow, ReplayBuffer
from mtbench.algos.sac import SAC, SACConfig, squashed_sample
from mtbench.config import compose, resolve_config
from mtbench.train import build_algorithm


def _settings(**kw) -> SACConfig:
    """train.sac of the default config (the one home of SAC's values), sized small, with `kw` changed."""
    d = OmegaConf.to_container(compose(["train=sac"]).train.sac)
    d.update(gradient_steps_per_itr=1, batch_size=64, replay_buffer_size=1000)
    d.update(kw)
    return SACConfig.from_dict(d)


def nstep_reference(r, term, trunc, obs_after, n, gamma):
    """For each (t, env): the n-step transition of step t from its definition, one step at a time."""
    T, N = r.shape
    out = {}
    for t in range(T - n + 1):
        for e in range(N):
            R, k = 0.0, 0
            while True:
                R += gamma**k * r[t + k, e]
                k += 1
                if term[t + k - 1, e] or trunc[t + k - 1, e] or k == n:
                    break
            last = t + k - 1
            disc = 0.0 if term[last, e] else gamma**k
            out[t, e] = (R, disc, obs_after[last, e])
    return out


def test_nstep_returns_with_terminations_timeouts_and_buffer_wraparound():
    rng = np.random.default_rng(0)
    T, N, n, gamma, D = 40, 5, 4, 0.9, 3
    r = rng.normal(size=(T, N)).astype(np.float32)
    term = rng.random((T, N)) < 0.08
    trunc = (rng.random((T, N)) < 0.08) & ~term
    term[5, 0], trunc[6, 1], term[7, 1] = True, True, True  # an end right after another, both kinds
    obs = rng.normal(size=(T, N, D)).astype(np.float32)
    after = rng.normal(size=(T, N, D)).astype(np.float32)
    act = rng.normal(size=(T, N, 2)).astype(np.float32)
    ref = nstep_reference(r, term, trunc, after, n, gamma)
    window = NStepWindow(n, N, D, 2, gamma, torch.device("cpu"))
    buf = ReplayBuffer(3 * N + 2, D, 2, torch.device("cpu"))  # wraps around many times, at an offset
    t_of = lambda x: torch.from_numpy(np.asarray(x))
    emitted = 0
    for t in range(T):
        out = window.push(t_of(obs[t]), t_of(act[t]), t_of(r[t]), t_of(after[t]), t_of(term[t]), t_of(trunc[t]))
        if out is None:
            assert t < n - 1
            continue
        s = t - n + 1
        out["task"] = torch.arange(N)
        pos = buf.pos
        buf.add(out)
        idx = (pos + torch.arange(N)) % buf.capacity
        for e in range(N):
            R, disc, nxt = ref[s, e]
            assert buf.reward[idx[e]].item() == pytest.approx(R, rel=1e-5, abs=1e-5), (s, e)
            assert buf.discount[idx[e]].item() == pytest.approx(disc, rel=1e-6), (s, e)
            np.testing.assert_array_equal(buf.next_obs[idx[e]].numpy(), nxt)
            np.testing.assert_array_equal(buf.obs[idx[e]].numpy(), obs[s, e])
            np.testing.assert_array_equal(buf.action[idx[e]].numpy(), act[s, e])
        emitted += 1
    assert emitted == T - n + 1 and buf.size == buf.capacity
    # the discount is gamma^k for the k steps actually taken: a window cut by a time-out after 2 steps
    assert any(abs(ref[s, e][1] - gamma**2) < 1e-9 for s in range(T - n + 1) for e in range(N))


def test_squashed_log_density_matches_the_change_of_variables():
    torch.manual_seed(0)
    mu, log_std, noise = torch.randn(6, 3), torch.randn(6, 3) * 0.5, torch.randn(6, 3)
    a, logp = squashed_sample(mu, log_std, noise)
    u = mu + log_std.exp() * noise
    base = torch.distributions.Normal(mu, log_std.exp()).log_prob(u)
    expected = (base - torch.log(1 - torch.tanh(u) ** 2)).sum(-1)
    torch.testing.assert_close(a, torch.tanh(u))
    torch.testing.assert_close(logp, expected, rtol=1e-4, atol=1e-4)


def _agent(n_tasks=3, obs=6, **kw) -> SAC:
    from mtbench.nets.sac import make_sac_networks

    torch.manual_seed(0)
    actor, critic = make_sac_networks(obs + n_tasks, 2, [str(i) for i in range(n_tasks)], "mlp",
                                      actor_units=(16,), critic_units=(16,), activation="relu")  # fmt: skip
    return SAC(actor, critic, obs + n_tasks, 2, n_tasks, _settings(**kw), torch.device("cpu"),
               torch.Generator().manual_seed(0))  # fmt: skip


def _batch(agent: SAC, B=60, seed=1, reward=None):
    g = torch.Generator().manual_seed(seed)
    n = agent.n_tasks
    task = torch.arange(B) % n
    x = torch.randn(B, agent.obs_dim - n, generator=g)
    onehot = torch.nn.functional.one_hot(task, n).float()
    return {
        "obs": torch.cat([x, onehot], 1), "action": torch.rand(B, 2, generator=g) * 2 - 1,
        "reward": torch.randn(B, generator=g) if reward is None else reward(task),
        "next_obs": torch.cat([torch.randn(B, agent.obs_dim - n, generator=g), onehot], 1),
        "discount": torch.where(torch.rand(B, generator=g) < 0.2, 0.0, 0.9**3), "task": task,
    }  # fmt: skip


def test_twin_min_soft_target_and_critic_loss():
    agent = _agent(normalize_input=False)
    b = _batch(agent)
    with torch.no_grad():
        agent.log_alpha.copy_(torch.tensor([-1.0, 0.0, 0.5]))
    state = agent.gen.get_state()
    c = agent.critic_losses(b)
    # the same target by hand, replaying the generator for a'
    agent.gen.set_state(state)
    with torch.no_grad():
        mu, raw = agent.actor(b["next_obs"], b["task"])
        log_std = raw.clamp(-20.0, 2.0)
        noise = torch.randn(mu.shape, generator=agent.gen)
        a2, logp2 = squashed_sample(mu, log_std, noise)
        q1, q2 = (q(torch.cat([b["next_obs"][:, :6], a2, b["next_obs"][:, 6:]], 1), b["task"]).squeeze(-1)
                  for q in agent.critic_target.qs)  # fmt: skip
        alpha = agent.log_alpha.exp()[b["task"]]
        y = b["reward"] + b["discount"] * (torch.minimum(q1, q2) - alpha * logp2)
        x = torch.cat([b["obs"][:, :6], b["action"], b["obs"][:, 6:]], 1)
        qa = [q(x, b["task"]).squeeze(-1) for q in agent.critic.qs]
        per = 0.5 * ((qa[0] - y) ** 2 + (qa[1] - y) ** 2)
        expected = torch.stack([per[b["task"] == i].mean() for i in range(3)])
    torch.testing.assert_close(c["target"], y)
    torch.testing.assert_close(c["critic"], expected)


def test_each_task_temperature_moves_toward_its_entropy_target():
    """Task 0's policy is near-deterministic (entropy far below the target: its alpha must rise), tasks 1 and 2's
    are wide (far above: theirs must fall); they move apart although they share one update."""
    agent = _agent(target_entropy=-1.0, normalize_input=False)
    b = _batch(agent)
    task = b["task"]
    real = agent._pi

    def pi(obs, task_, deterministic=False):  # per-task entropy set by hand through the log-std
        mu = torch.zeros(obs.shape[0], 2) + 0 * sum(p.sum() for p in agent.actor.parameters())
        log_std = torch.where((task_ == 0)[:, None], -6.0, 0.0).expand(-1, 2)  # entropy about -9.2 / +1.3
        return squashed_sample(mu, log_std, torch.randn(mu.shape, generator=agent.gen))

    agent._pi = pi
    before = agent.log_alpha.detach().clone()
    counts = torch.bincount(task, minlength=3).float()
    agent.actor_step(agent.normalize_obs(b["obs"], task), task, counts)
    agent._pi = real
    after = agent.log_alpha.detach()
    assert after[0] > before[0] and after[1] < before[1], (before, after)


def test_gradient_norms_are_clipped_after_backward():
    agent = _agent(grad_norm=0.5, normalize_input=False)
    b = _batch(agent, reward=lambda t: 100.0 * (t.float() - 1))  # large errors: raw norms far above 0.5
    seen = {}
    for name, opt, params in (("critic", agent.critic_opt, agent.critic.parameters()),
                              ("actor", agent.actor_opt, agent.actor.parameters())):  # fmt: skip
        params = list(params)
        step = opt.step

        def hooked(*a, _name=name, _params=params, _step=step, **k):
            seen[_name] = torch.sqrt(sum((p.grad**2).sum() for p in _params if p.grad is not None)).item()
            return _step(*a, **k)

        opt.step = hooked
    metrics = agent.gradient_step(b)
    assert metrics["grad_norm/critic"] > 5.0  # the norm before clipping
    assert seen["critic"] <= 0.5 + 1e-5 and seen["actor"] <= 0.5 + 1e-5
    assert seen["critic"] == pytest.approx(0.5, rel=1e-4)


def test_target_critics_follow_by_polyak_averaging():
    agent = _agent(critic_tau=0.25, normalize_input=False)
    old = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent.gradient_step(_batch(agent))
    for o, t, c in zip(old, agent.critic_target.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(t, 0.75 * o + 0.25 * c.detach())


SCHEMES = ["scheme=pcgrad", "scheme=cagrad", "scheme=famo", "scheme=pcgrad scheme.apply_to=actor"]
NETWORKS = ["mlp", "multihead", "care", "care_mh", "moore", "moore_mh", "paco", "soft_modularization"]


SMALL_NETS = {  # the Table 3 sizes narrowed, so that 32 combinations take seconds; the wiring is what is tested
    "mlp": "network.actor_units=[32] network.critic_units=[32]",
    "multihead": "network.actor_units=[32] network.critic_units=[32]",
    "care": "network.units=[32,32]", "care_mh": "network.units=[32,32]",
    "moore": "network.hidden_dim=32 network.num_layers=2", "moore_mh": "network.hidden_dim=32 network.num_layers=2",
    "paco": "network.D=32 network.loss_threshold=null",
    "soft_modularization": "network.D=32 network.num_layers=2 network.state_units=[32] network.task_units=[32]",
}  # fmt: skip
TASKS = "task_id=[reach-v3,push-v3,pick-place-v3,door-open-v3]"


def _built(network: str, scheme: str) -> SAC:
    cfg = resolve_config(compose(["train=sac", TASKS, "num_envs=4", "sim_device=cpu", f"network={network}",
                                  *SMALL_NETS[network].split(), *scheme.split()]))  # fmt: skip
    return build_algorithm(cfg, 39 + 4, 4)


def _conflicting_batch(B=64, n=4):
    """Identical states for every task, opposite rewards: the tasks' critic gradients point apart."""
    g = torch.Generator().manual_seed(0)
    task = torch.arange(B) % n
    x = torch.randn(B // n, 39, generator=g).repeat_interleave(n, 0)
    onehot = torch.nn.functional.one_hot(task, n).float()
    sign = torch.where(task % 2 == 0, 1.0, -1.0)
    return {"obs": torch.cat([x, onehot], 1), "action": torch.zeros(B, 4), "reward": 50.0 * sign,
            "next_obs": torch.cat([x, onehot], 1), "discount": torch.zeros(B), "task": task}  # fmt: skip


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_scheme_changes_the_sac_update_where_it_acts(network, scheme):
    """One critic step and one actor step from the same weights and batch, with the scheme and with the plain
    mean: the part the scheme acts on must move differently, the other part exactly as with the mean."""
    b = _conflicting_batch()
    counts = torch.bincount(b["task"], minlength=4).float()
    moved = {}
    for label in ("mean", "scheme"):
        agent = _built(network, scheme if label == "scheme" else "")
        obs = agent.normalize_obs(b["obs"], b["task"])
        agent.critic_step(b, counts)
        critic = [p.detach().clone() for p in agent.critic.parameters()]
        agent.gen.manual_seed(5)
        agent.actor_step(obs, b["task"], counts)
        moved[label] = (critic, [p.detach().clone() for p in agent.actor.parameters()])
    acts_on_actor = "apply_to=actor" in scheme
    same_critic = all(torch.equal(a, b) for a, b in zip(moved["mean"][0], moved["scheme"][0]))
    same_actor = all(torch.equal(a, b) for a, b in zip(moved["mean"][1], moved["scheme"][1]))
    if acts_on_actor:
        assert same_critic and not same_actor
    else:
        assert not same_critic  # (the actor then follows a different critic: no claim about it)


def test_sac_config_errors_are_one_line():
    with pytest.raises(ValueError, match="train.sac.nstep=0 must be an integer >= 1"):
        _settings(nstep=0)
    with pytest.raises(ValueError, match="unknown train.sac settings"):
        SACConfig.from_dict({**vars(_settings()), "n_step": 3})
    from mtbench.config import ConfigError

    with pytest.raises(ConfigError, match="replay_buffer_size=5 holds less than one step"):
        resolve_config(compose(["train=sac", "num_envs=20", "train.sac.replay_buffer_size=5", "sim_device=cpu"]))
    with pytest.raises(ConfigError, match="train.algo='td3' is not an algorithm"):
        resolve_config(compose(["train.algo=td3", "sim_device=cpu"]))


def test_sac_defaults_follow_table_6():
    cfg = resolve_config(compose(["train=sac", "sim_device=cpu"]))
    s = cfg.train.sac
    assert (s.nstep, s.gamma, s.critic_tau, s.actor_lr, s.critic_lr, s.alpha_lr, s.init_alpha, s.grad_norm) == (
        16, 0.99, 0.01, 5e-4, 5e-4, 5e-3, 1.0, 0.5)  # fmt: skip
    assert list(cfg.network.actor_units) == [512, 256, 128] and cfg.network.activation == "relu"
    assert list(resolve_config(compose(["sim_device=cpu"])).network.actor_units) == [256, 128, 64]  # PPO's
    gpu = compose(["train=sac"]).train.gpu
    sizes = (gpu.num_envs, gpu.batch_size, gpu.gradient_steps_per_itr, gpu.replay_buffer_size)
    assert sizes == (4096, 8192, 32, 5_000_000)
    assert math.isclose(SAC.build(dict(s), dict(cfg.network), 49, 4, list(cfg.task_names), torch.device("cpu"),
                                  torch.Generator(), None).target_entropy, -4.0)  # fmt: skip
