"""BRC's math against slow loops written from the definitions: C51's projection (Bellemare et al. 2017, Alg. 1) on
constructed distributions, return normalisation (paper 003, App. C.2) against numpy over constructed episodes, the
categorical soft target, BroNet's structure and parameter count at every preset, the task embedding's norm and who
trains it, the temperature, the target critics; and one-line errors for what BRC cannot run."""

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.nn import functional as F

from mtbench.algos.brc import (
    BRC,
    CRITIC_PRESETS,
    BRCConfig,
    ReturnScale,
    categorical_projection,
    critic_parameters,
    make_brc_networks,
)
from mtbench.algos.sac import squashed_sample
from mtbench.config import ConfigError, compose, resolve_config
from mtbench.nets.bronet import BroNet, bronet_parameters


def _settings(**kw) -> BRCConfig:
    """train.brc of the default config (the one home of BRC's values), sized small, with `kw` changed."""
    d = OmegaConf.to_container(compose(["train=brc"]).train.brc)
    d.update(gradient_steps_per_itr=1, batch_size=64, buffer_per_task=100, critic_width=32, actor_width=16)
    d.update(kw)
    return BRCConfig.from_dict(d)


# -- the categorical projection -------------------------------------------------------------------------------
def c51_loop(atoms, probs, v_min, v_max):
    """Bellemare et al. (2017), Algorithm 1, one atom at a time: T z_j clipped to [V_min, V_max], b_j = (T z_j -
    V_min) / Δz, its mass split between l = floor(b_j) and u = ceil(b_j) as p_j (u - b_j) and p_j (b_j - l), all of
    it on l when b_j is a support point."""
    B, K = probs.shape
    dz = (v_max - v_min) / (K - 1)
    m = np.zeros((B, K))
    for i in range(B):
        for j in range(K):
            tz = min(max(atoms[i, j], v_min), v_max)
            b = (tz - v_min) / dz
            lo, up = math.floor(b), math.ceil(b)
            if lo == up:
                m[i, lo] += probs[i, j]
            else:
                m[i, lo] += probs[i, j] * (up - b)
                m[i, up] += probs[i, j] * (b - lo)
    return m


def test_categorical_projection_equals_c51_loop_with_clipping_and_terminals():
    rng = np.random.default_rng(0)
    K, v = 101, 10.0
    support = np.linspace(-v, v, K)
    B = 12
    probs = rng.dirichlet(np.full(K, 0.3), size=B)
    reward = rng.normal(0, 4, size=B)
    discount = np.full(B, 0.99)
    reward[0], reward[1] = 9.5, -9.5  # most atoms pushed beyond the support's ends: clipped onto v_max / -v_max
    discount[2:4] = 0.0  # terminal: every atom collapses onto r
    reward[3] = 2.4  # ... exactly a support point: all mass on it
    reward[4], discount[4] = 0.0, 1.0  # identity: the distribution is unchanged
    logp = rng.normal(0, 1, size=B)
    logp[4] = 0.0
    alpha = 0.1
    atoms = reward[:, None] + discount[:, None] * (support[None] - alpha * logp[:, None])
    expected = c51_loop(atoms, probs, -v, v)
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    got = categorical_projection(t(atoms), t(probs), t(support)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-12)
    assert got[0, -1] > 0.5 and got[1, 0] > 0.5  # the clipped mass sits on the ends
    assert got[3, 62] == pytest.approx(1.0)  # 2.4 = -10 + 62 * 0.2
    np.testing.assert_allclose(got[4], probs[4], atol=1e-12)
    # float32, as training runs it: the same within rounding, still a distribution
    got32 = categorical_projection(t(atoms).float(), t(probs).float(), t(support).float()).double().numpy()
    np.testing.assert_allclose(got32, expected, atol=2e-5)


# -- return normalisation -------------------------------------------------------------------------------------
def returns_reference(rewards, term, trunc, task, n_tasks, gamma, bootstrap=None):
    """Per task, max over every state of every finished episode of |G_t|, G_t = Σ_{k>=t} γ^(k-t) r_k, a time-out
    adding γ^(L-t) b with b the given bootstrap or, by default, the episode's mean reward / (1 - γ). One env and
    one step at a time, in numpy."""
    T, N = rewards.shape
    g = np.zeros(n_tasks)
    seen = np.zeros(n_tasks, bool)
    for e in range(N):
        start = 0
        for t in range(T):
            if not (term[t, e] or trunc[t, e]):
                continue
            r = rewards[start : t + 1, e]
            if term[t, e]:
                b = 0.0
            else:
                b = r.mean() / (1 - gamma) if bootstrap is None else bootstrap[t, e]
            G, best = b, 0.0
            for k in reversed(range(len(r))):
                G = r[k] + gamma * G
                best = max(best, abs(G))
            g[task[e]] = max(g[task[e]], best)
            seen[task[e]] = True
            start = t + 1
    return g, seen


@pytest.mark.parametrize("explicit", [False, True])
def test_return_scale_equals_numpy_on_constructed_episodes(explicit):
    """Episodes of many lengths (some longer than the trace's starting capacity of 8, so it grows), terminations
    and time-outs, rewards of both signs, several envs per task; `explicit`: the paper's bootstrap given per env."""
    rng = np.random.default_rng(1)
    T, N, n_tasks, gamma = 90, 7, 3, 0.9
    task = np.array([0, 0, 1, 1, 1, 2, 2])
    rewards = rng.normal(0.5, 2.0, size=(T, N))
    term = rng.random((T, N)) < 0.03
    trunc = (rng.random((T, N)) < 0.05) & ~term
    trunc[30:, 6] = False  # env 6 runs one long episode to the end (task 2's only other env ends early below)
    term[:, 6] = False
    trunc[89, 6] = True
    term[0, 5] = True  # a one-step episode
    boot = rng.normal(0, 20, size=(T, N)) if explicit else None
    tracker = ReturnScale(torch.as_tensor(task), n_tasks, gamma, capacity=8)
    for t in range(T):
        b = None if boot is None else torch.as_tensor(boot[t])
        tracker.push(torch.as_tensor(rewards[t], dtype=torch.float32), torch.as_tensor(term[t]),
                     torch.as_tensor(term[t] | trunc[t]), b)  # fmt: skip
    expected, seen = returns_reference(rewards.astype(np.float32).astype(np.float64), term, trunc, task, n_tasks,
                                       gamma, boot)  # fmt: skip
    assert tracker.trace.shape[1] >= 64  # it grew
    np.testing.assert_allclose(tracker.g_max.numpy(), expected, rtol=1e-10)
    np.testing.assert_array_equal(tracker.seen.numpy(), seen)


def test_reward_scale_by_return_norm_form():
    """`code`: v_max / (Ḡ + α |target entropy| / (2 (1 - γ))); `paper`: v_max / (Ḡ + α max(H_i, 0) / (1 - γ)); a task
    without a finished episode gets 0."""
    for form in ("code", "paper"):
        agent = _agent(n_tasks=3, return_norm=form)
        agent.returns.g_max[:] = torch.tensor([100.0, 3.0, 50.0], dtype=torch.float64)
        agent.returns.seen[:] = torch.tensor([True, True, False])
        agent.task_entropy = torch.tensor([2.0, -5.0, 1.0])
        with torch.no_grad():
            agent.log_alpha.fill_(math.log(0.2))
        scale = agent.reward_scale()
        if form == "code":
            lam = torch.full((3,), 0.2 * 100.0 * 2.0 / 2.0)  # -|A|/2 = -2 for a 4-d action
        else:
            lam = 0.2 * 100.0 * torch.tensor([2.0, 0.0, 1.0])
        expected = 10.0 / (torch.tensor([100.0, 3.0, 50.0]) + lam)
        expected[2] = 0.0
        torch.testing.assert_close(scale, expected)


# -- the agent ------------------------------------------------------------------------------------------------
def _agent(n_tasks=3, state=6, **kw) -> BRC:
    torch.manual_seed(0)
    agent = BRC(state + n_tasks, 4, n_tasks, _settings(**kw), torch.device("cpu"), torch.Generator().manual_seed(0))
    agent.start(torch.arange(n_tasks))  # one env per task
    return agent


def _batch(agent: BRC, B=60, seed=1):
    g = torch.Generator().manual_seed(seed)
    task = torch.arange(B) % agent.n_tasks
    return {
        "obs": torch.randn(B, agent.state_dim, generator=g), "action": torch.rand(B, 4, generator=g) * 2 - 1,
        "reward": torch.rand(B, generator=g) * 10, "next_obs": torch.randn(B, agent.state_dim, generator=g),
        "discount": torch.where(torch.rand(B, generator=g) < 0.2, 0.0, 0.99), "task": task,
    }  # fmt: skip


def test_categorical_soft_target_and_cross_entropy():
    """The target distribution is the target critics' averaged probabilities at (s', a' ~ π(s')), projected from
    the atoms r̃ + d (z - α log π'); the loss is Σ_critics cross-entropy, averaged per task."""
    agent = _agent()
    b = _batch(agent)
    scale = torch.tensor([0.5, 1.0, 0.0])
    state = agent.gen.get_state()
    c = agent.critic_losses(b, scale)
    agent.gen.set_state(state)
    with torch.no_grad():
        emb = agent.critic.embed(b["task"])
        mu, log_std = agent.actor(b["next_obs"], emb)
        a2, logp2 = squashed_sample(mu, log_std, torch.randn(mu.shape, generator=agent.gen))
        x2 = torch.cat([b["next_obs"], a2, agent.critic_target.embed(b["task"])], 1)
        p = sum(F.softmax(q(x2), -1) for q in agent.critic_target.qs) / 2
        z = torch.linspace(-10, 10, 101)
        r = b["reward"] * scale[b["task"]]
        atoms = (r[:, None] + b["discount"][:, None] * (z[None] - 0.1 * logp2[:, None])).double().numpy()
        m = torch.as_tensor(c51_loop(atoms, p.double().numpy(), -10.0, 10.0), dtype=torch.float32)
        x = torch.cat([b["obs"], b["action"], emb], 1)
        ce = sum(-(m * F.log_softmax(q(x), -1)).sum(-1) for q in agent.critic.qs)
        expected = torch.stack([ce[b["task"] == i].mean() for i in range(3)])
    torch.testing.assert_close(c["critic"], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c["target"], m @ z, rtol=1e-4, atol=1e-4)
    assert (c["reward"][b["task"] == 2] == 0).all()  # an unscaled task's rewards count as 0


def test_bronet_forward_is_residual_layernorm_blocks():
    torch.manual_seed(0)
    net = BroNet(7, 12, 2, 5)
    x = torch.randn(4, 7)
    ln = lambda h: F.layer_norm(h, (12,))  # noqa: E731  (fresh LayerNorms: unit scale, zero shift)
    lin = lambda m, h: h @ m.weight.T + m.bias  # noqa: E731
    h = torch.relu(ln(lin(net.stem[0], x)))
    for block in net.blocks:
        first, second = block.net[0], block.net[3]
        h = h + ln(lin(second, torch.relu(ln(lin(first, h)))))  # no activation after the add
    torch.testing.assert_close(net(x), lin(net.head, h))
    kinds = [type(m).__name__ for m in net.blocks[0].net]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm"]
    w = net.stem[0].weight  # orthogonal with gain sqrt(2): W W^T = 2 I (12 rows of 7 columns: W^T W = 2 I)
    torch.testing.assert_close(w.T @ w, 2.0 * torch.eye(7), atol=1e-5, rtol=0)


@pytest.mark.parametrize("width", CRITIC_PRESETS)
def test_parameter_count_equals_closed_form_at_every_preset(width):
    """4 w^2 + (in + 116) w + 101 per critic (in = 39 + 4 + 32 on Meta-World), plus the embedding table; built on the
    meta device, so the 8192-wide ensemble costs no memory."""
    cfg = _settings(critic_width=width, actor_width=256)
    with torch.device("meta"):
        actor, critic = make_brc_networks(39, 4, 10, cfg)
    per = 4 * width**2 + (75 + 116) * width + 101
    assert bronet_parameters(75, width, 2, 101) == per
    assert sum(p.numel() for p in critic.parameters()) == 2 * per + 10 * 32 == critic_parameters(39, 4, 10, cfg)
    actor_count = bronet_parameters(39 + 32, 256, 1) + 2 * (256 * 4 + 4)
    assert sum(p.numel() for p in actor.parameters()) == actor_count
    if width == 4096:
        assert per == 67_891_301  # the paper's default critic, per ensemble member


def test_embedding_stays_unit_norm_and_only_the_critic_loss_trains_it():
    agent = _agent(critic_lr=0.05, actor_lr=0.05)
    b = _batch(agent)
    counts = torch.bincount(b["task"], minlength=3).float()
    table = agent.critic.embedding.table.weight
    before = table.detach().clone()
    # the actor's loss reaches the embedding neither through the actor's input nor through the critic
    agent.actor_step(b["obs"], b["task"], counts)
    torch.testing.assert_close(table.detach(), before, rtol=0, atol=0)
    assert table.grad is None
    # the critic's loss does
    agent.critic_step(b, torch.ones(3), counts)
    assert not torch.equal(table.detach(), before)
    for _ in range(5):
        agent.gradient_step(b)
    norms = agent.critic.embed(torch.arange(3)).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones(3))
    l1 = _agent(embedding_norm="l1")
    torch.testing.assert_close(l1.critic.embed(torch.arange(3)).abs().sum(-1), torch.ones(3))


def test_normalize_input_feeds_every_network_the_per_task_normalised_state():
    """`normalize_input`: the states seen while acting set each task's running mean and variance (numpy's over the
    same states), and the actor, the critic and its target all read (s - mean_task) / std_task: the losses and the
    policy equal those of the plain agent with the same weights given the normalised states by hand."""
    agent, plain = _agent(normalize_input=True), _agent()
    plain.net.load_state_dict(agent.net.state_dict())
    g = torch.Generator().manual_seed(5)
    seen = []
    for _ in range(6):  # one env per task, states of scale and offset unlike N(0, 1)
        state = torch.randn(3, agent.state_dim, generator=g) * 3.0 + 7.0
        agent.act(torch.cat([state, torch.eye(3)], 1))
        agent.observe(state, torch.ones(3), torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool),
                      {"final_obs": torch.cat([state, torch.eye(3)], 1)})  # fmt: skip
        seen.append(state.double().numpy())
    seen = np.stack(seen)  # (steps, task, dim)
    # (the statistics start from a count of 1e-4 at N(0, 1): 1e-5 of relative weight after 6 states)
    torch.testing.assert_close(agent.obs_norm.mean, torch.as_tensor(seen.mean(0)), rtol=1e-4, atol=0)
    torch.testing.assert_close(agent.obs_norm.var, torch.as_tensor(seen.var(0)), rtol=1e-3, atol=0)
    mean, std = agent.obs_norm.mean.float(), (agent.obs_norm.var + 1e-8).sqrt().float()  # numpy's, as checked
    norm = lambda x, t: (x - mean[t]) / std[t]  # noqa: E731
    b = _batch(agent)
    b["obs"], b["next_obs"] = b["obs"] * 3.0 + 7.0, b["next_obs"] * 3.0 + 7.0
    by_hand = dict(b, obs=norm(b["obs"], b["task"]), next_obs=norm(b["next_obs"], b["task"]))
    scale = torch.tensor([0.5, 1.0, 0.2])
    for a in (agent, plain):
        a.gen.manual_seed(9)
    ours, theirs = agent.critic_losses(b, scale), plain.critic_losses(by_hand, scale)
    torch.testing.assert_close(ours["critic"], theirs["critic"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours["target_probs"], theirs["target_probs"], rtol=1e-4, atol=1e-5)
    obs = torch.cat([b["obs"], F.one_hot(b["task"], 3).float()], 1)
    torch.testing.assert_close(agent.policy(obs, b["task"]), plain.policy(torch.cat([by_hand["obs"], obs[:, 6:]], 1),
                                                                          b["task"]), rtol=1e-4, atol=1e-5)  # fmt: skip
    # the raw states give other losses: the normalisation is not a no-op here
    assert not torch.allclose(plain.critic_losses(b, scale)["critic"], theirs["critic"], atol=1e-3)
    # the statistics travel with the checkpoint
    fresh = _agent(normalize_input=True)
    fresh.load_state_dict(agent.state_dict())
    torch.testing.assert_close(fresh.obs_norm.var, agent.obs_norm.var, rtol=0, atol=0)


def test_temperature_moves_toward_the_target_entropy():
    """Target -|A|/2 by default; one temperature: it rises when the policy's entropy is below the target and falls
    when above, with the gradient α (H - target) of the reference's loss α (H - target)."""
    assert _agent().target_entropy == -2.0 and _agent().log_alpha.shape == ()
    for log_std, rises in ((-6.0, True), (0.0, False)):  # entropy about -18 / +3 for a 4-d action
        agent = _agent()  # fresh: Adam's momentum would carry one case's step into the other
        b = _batch(agent)
        counts = torch.bincount(b["task"], minlength=3).float()

        def pi(s, e, deterministic=False, agent=agent, log_std=log_std):  # the entropy set by hand through the std
            mu = 0.0 * agent.actor(s, e)[0]
            return squashed_sample(mu, torch.full_like(mu, log_std), torch.randn(mu.shape, generator=agent.gen))

        agent._pi = pi
        before = agent.log_alpha.item()
        out = agent.actor_step(b["obs"], b["task"], counts)
        assert (agent.log_alpha.item() > before) == rises, (log_std, out["entropy"])


def test_target_critics_follow_by_polyak_averaging_embedding_included():
    agent = _agent(tau=0.25)
    old = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent.gradient_step(_batch(agent))
    for o, t, c in zip(old, agent.critic_target.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(t, 0.75 * o + 0.25 * c.detach())
    assert any(n.startswith("embedding") for n, _ in agent.critic_target.named_parameters())


def test_schemes_act_on_brc_per_task_critic_losses():
    """PCGrad on the critic moves it differently from the plain mean; the actor step stays as with the mean."""
    from mtbench.mtrl import make_scheme

    moved = {}
    for name in ("none", "pcgrad"):
        agent = _agent()
        agent.scheme = make_scheme(name, 3, torch.device("cpu"), generator=torch.Generator().manual_seed(0))
        b = _batch(agent)
        b["reward"] = torch.where(b["task"] == 0, 10.0, -10.0)
        agent.critic_step(b, torch.ones(3), torch.bincount(b["task"], minlength=3).float())
        moved[name] = [p.detach().clone() for p in agent.critic.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(moved["none"], moved["pcgrad"]))


def test_brc_defaults_follow_appendix_f():
    cfg = resolve_config(compose(["train=brc_paper", "task=mt50", "sim_device=cpu"]))
    s = cfg.train.brc
    assert (s.gamma, s.tau, s.actor_lr, s.critic_lr, s.alpha_lr, s.weight_decay, s.init_alpha) == (
        0.99, 0.005, 3e-4, 3e-4, 3e-4, 1e-4, 0.1)  # fmt: skip
    assert (s.num_atoms, s.v_max, s.n_critics, s.critic_depth, s.actor_width, s.actor_depth, s.embedding_dim) == (
        101, 10.0, 2, 2, 256, 1, 32)  # fmt: skip
    assert (s.nstep, s.warmup_per_task, s.log_std_min, s.log_std_max, s.target_entropy) == (1, 5000, -10, 2, None)
    assert cfg.num_envs == 50 and cfg.env.episode_length == 200 and not cfg.env.random_init_progress
    gpu = compose(["train=brc_paper"]).train.gpu
    assert (gpu.envs_per_task, gpu.gradient_steps_per_itr, gpu.batch_size, gpu.buffer_per_task, gpu.critic_width) == (
        1, 2, 1024, 1_000_000, 4096)  # fmt: skip
    assert resolve_config(compose(["train=brc", "sim_device=cpu"])).num_envs == 40  # 4 per MT10 task


def test_brc_config_errors_are_one_line():
    with pytest.raises(ValueError, match=r"train.brc.gamma=1.0 must be a number in \[0, 1\)"):
        _settings(gamma=1.0)
    with pytest.raises(ValueError, match="train.brc.return_norm='bogus' must be one of code, paper"):
        _settings(return_norm="bogus")
    with pytest.raises(ConfigError, match="train=brc builds its own BroNet networks"):
        resolve_config_and_build(["network=moore"])
    with pytest.raises(ConfigError, match="train.brc.embedding_norm='l3' must be one of l2, l1"):
        resolve_config(compose(["train=brc", "train.brc.embedding_norm=l3", "sim_device=cpu"]))


def resolve_config_and_build(extra):
    from mtbench.train import build_algorithm

    cfg = resolve_config(compose(["train=brc", "task=reach-v3", "num_envs=1", "sim_device=cpu", *extra]))
    return build_algorithm(cfg, 40, 4)
