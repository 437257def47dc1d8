"""MT-PQN's math against loops written from the definitions: Peng's Q(λ) targets over constructed episodes
(terminations and time-outs anywhere, the last step included, time-outs bootstrapped from the final observation),
the bins and the factored Q, ε-greedy and learning-rate schedules that follow the run, gradient clipping after
backward, the schemes acting on PQN's per-task losses, and the Q-network forms."""

import math

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from mtbench.algos.pqn import PQN, PQNConfig, q_lambda_targets
from mtbench.config import ConfigError, compose, resolve_config
from mtbench.nets.pqn import ResidualLayerNormMLP, make_q_network
from mtbench.train import build_algorithm


def _settings(**kw) -> PQNConfig:
    """train.pqn of the default config (the one home of PQN's values) with the GPU profile's exploration share,
    with `kw` changed."""
    train = compose(["train=pqn"]).train
    d = OmegaConf.to_container(train.pqn)
    d.update({"exploration_fraction": train.gpu.exploration_fraction, **kw})
    return PQNConfig.from_dict(d)


def _agent(n_tasks=2, obs=5, bins=3, net=None, **kw) -> PQN:
    torch.manual_seed(0)
    names = [str(i) for i in range(n_tasks)]
    net = net or make_q_network(obs + n_tasks, 4, names, bins, "mlp", critic_units=[16, 16], activation="elu")
    cfg = _settings(bins=bins, **kw)
    return PQN(net, obs + n_tasks, 4, n_tasks, cfg, torch.device("cpu"), torch.Generator().manual_seed(0))


def q_lambda_reference(r, v_next, term, trunc, gamma, lam):
    """R_t = r_t + γ [λ R_{t+1} + (1 - λ) V(s_{t+1})] from the end of the rollout backwards, one env and one step
    at a time; after a termination nothing is bootstrapped, after a time-out and at the rollout's last step only
    V of the state that followed."""
    T, N = len(r), len(r[0])
    R = [[0.0] * N for _ in range(T)]
    for e in range(N):
        for t in reversed(range(T)):
            if term[t][e]:
                R[t][e] = r[t][e]
            elif trunc[t][e] or t == T - 1:
                R[t][e] = r[t][e] + gamma * v_next[t][e]
            else:
                R[t][e] = r[t][e] + gamma * (lam * R[t + 1][e] + (1 - lam) * v_next[t][e])
    return torch.tensor(R)


def _episode_ends(T, N, seed=0):
    """Random terminations and time-outs (never both), plus: env 0 terminates at the last step, env 1 times out
    there, env 2 runs through it; env 3 ends three times in a row (both kinds); env 4 times out just before it."""
    g = torch.Generator().manual_seed(seed)
    term = torch.rand(T, N, generator=g) < 0.15
    trunc = torch.rand(T, N, generator=g) < 0.15
    for (t, e), (a, b) in {(-1, 0): (1, 0), (-1, 1): (0, 1), (-1, 2): (0, 0), (0, 3): (1, 0), (1, 3): (0, 1),
                           (2, 3): (1, 0), (-2, 4): (0, 1), (-1, 4): (0, 0)}.items():  # fmt: skip
        term[t, e], trunc[t, e] = bool(a), bool(b)
    return term, trunc & ~term


def test_q_lambda_targets_match_the_backward_loop():
    T, N, gamma, lam = 12, 6, 0.9, 0.7
    g = torch.Generator().manual_seed(1)
    r, v = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g)
    term, trunc = _episode_ends(T, N)
    expected = q_lambda_reference(r.tolist(), v.tolist(), term.tolist(), trunc.tolist(), gamma, lam)
    torch.testing.assert_close(q_lambda_targets(r, v, term, trunc, gamma, lam), expected)
    # λ = 0 is one-step Q-learning; λ = 1 with no ends is the discounted return bootstrapped at the end
    none = torch.zeros(T, N, dtype=torch.bool)
    torch.testing.assert_close(q_lambda_targets(r, v, term, trunc, gamma, 0.0), r + gamma * v * ~term)
    mc = q_lambda_targets(r, v, none, none, gamma, 1.0)
    torch.testing.assert_close(mc[0], sum(gamma**k * r[k] for k in range(T)) + gamma**T * v[-1])


def test_rollout_targets_bootstrap_time_outs_from_the_final_observation():
    """Through act/observe/prepare: V is taken of the next step's observation inside an episode, of
    info["final_obs"] after a time-out (never of the next episode's first observation) and of s_H at the end."""
    agent = _agent(normalize_input=False)
    T, N, D = agent.cfg.horizon, 5, agent.obs_dim
    g = torch.Generator().manual_seed(2)
    task = torch.tensor([0, 1, 0, 1, 0])
    onehot = nn.functional.one_hot(task, 2).float()
    obs_of = lambda: torch.cat([torch.randn(N, D - 2, generator=g), onehot], 1)
    term, trunc = _episode_ends(T, N, seed=3)
    obs, final = [obs_of()], []
    rewards = torch.randn(T, N, generator=g)
    agent.start(task)
    for t in range(T):
        agent.act(obs[t])
        obs.append(obs_of())
        final.append(obs_of())  # differs from obs[t + 1] everywhere: only ended envs may read it
        agent.observe(obs[t + 1], rewards[t], term[t], trunc[t], {"final_obs": final[t]})
    data = agent.prepare(agent.buf)
    V = lambda o: agent.state_value(agent.net(o, task)).detach()
    v_next = torch.stack([torch.where((term[t] | trunc[t])[:, None], final[t], obs[t + 1]) for t in range(T)])
    v_next = torch.stack([V(o) for o in v_next])
    expected = q_lambda_reference(rewards.tolist(), v_next.tolist(), term.tolist(), trunc.tolist(), 0.99, 0.5)
    torch.testing.assert_close(data["target"], expected.reshape(-1))
    torch.testing.assert_close(data["obs"], torch.stack(obs[:T]).reshape(T * N, D))


class FixedUtilities(nn.Module):
    """A stand-in Q-network whose utilities are given: (B, A, bins), the same for every state."""

    def __init__(self, u: torch.Tensor):
        super().__init__()
        self.u = nn.Parameter(u)

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return self.u.expand(obs.shape[0], *self.u.shape)


@pytest.mark.parametrize("bins, values", [(3, [-1.0, 0.0, 1.0]), (2, [-1.0, 1.0]), (5, [-1.0, -0.5, 0.0, 0.5, 1.0])])
def test_bins_map_to_actions_and_greedy_is_the_per_dimension_argmax(bins, values):
    u = torch.randn(4, bins, generator=torch.Generator().manual_seed(bins))
    agent = _agent(bins=bins, net=FixedUtilities(u))
    torch.testing.assert_close(agent.bin_values, torch.tensor(values))
    obs, task = torch.zeros(3, agent.obs_dim), torch.zeros(3, dtype=torch.long)
    greedy = [values[int(torch.argmax(u[d]))] for d in range(4)]
    assert agent.policy(obs, task).tolist() == [greedy] * 3
    if bins == 3:  # upstream's map: bin b is the action b - 1
        assert agent.bin_values.tolist() == [b - 1 for b in range(3)]


def test_factored_q_is_the_mean_of_the_chosen_utilities_and_v_the_mean_of_the_maxima():
    u = torch.tensor([[[1.0, 5.0, 2.0], [0.0, -1.0, 3.0]], [[4.0, 4.5, -2.0], [7.0, 1.0, 0.0]]])  # (B=2, A=2, 3)
    bins = torch.tensor([[0, 2], [1, 1]])
    torch.testing.assert_close(PQN.q_value(u, bins), torch.tensor([(1.0 + 3.0) / 2, (4.5 + 1.0) / 2]))
    torch.testing.assert_close(PQN.state_value(u), torch.tensor([(5.0 + 3.0) / 2, (4.5 + 7.0) / 2]))


def test_epsilon_and_learning_rate_follow_the_run():
    agent = _agent(exploration_fraction=0.2, epsilon_start=1.0, epsilon_end=0.005, lr=3e-4, anneal_lr=True)
    for f in (0.0, 0.05, 0.1, 0.2, 0.5, 0.99):
        agent.set_progress(f)
        assert agent.epsilon == pytest.approx(1.0 + (0.005 - 1.0) * min(f / 0.2, 1.0))
        assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * (1 - f))
    flat = _agent(anneal_lr=False, exploration_fraction=0.0)
    flat.set_progress(0.5)
    assert flat.epsilon == 0.005 and flat.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)


def test_epsilon_greedy_randomises_whole_envs_at_rate_epsilon():
    """With ε = 0.5 half the envs explore, every dimension at once: a dimension leaves the greedy bin with
    probability ε·2/3, two dimensions together with ε·4/9 (independent per-dimension draws would give (ε·2/3)²)."""
    u = torch.tensor([[0.0, 0.0, 1.0]] * 4)  # greedy: bin 2 in every dimension
    agent = _agent(net=FixedUtilities(u), exploration_fraction=1.0, epsilon_start=1.0, epsilon_end=0.0)
    N = 40000
    agent.start(torch.zeros(N, dtype=torch.long))
    agent.set_progress(0.5)
    off = agent.act(torch.zeros(N, agent.obs_dim)) != 1.0
    assert off[:, 0].float().mean().item() == pytest.approx(0.5 * 2 / 3, abs=0.01)
    assert (off[:, 0] & off[:, 1]).float().mean().item() == pytest.approx(0.5 * 4 / 9, abs=0.01)
    agent.set_progress(1.0)
    assert not (agent.act(torch.zeros(N, agent.obs_dim)) != 1.0).any()  # ε = 0: greedy everywhere


def _minibatch(agent: PQN, B=64, target=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    n = agent.n_tasks
    task = torch.arange(B) % n
    x = torch.randn(B, agent.obs_dim - n, generator=g)
    onehot = nn.functional.one_hot(task, n).float()
    return {
        "obs": torch.cat([x, onehot], 1), "bins": torch.randint(agent.cfg.bins, (B, 4), generator=g),
        "target": torch.randn(B, generator=g) if target is None else target(task), "task": task,
    }  # fmt: skip


def test_gradient_norm_is_clipped_after_backward():
    agent = _agent(normalize_input=False, max_grad_norm=10.0)
    mb = _minibatch(agent, target=lambda t: 1000.0 * (t.float() - 0.5))  # large errors: raw norms far above 10
    seen = {}
    step = agent.optimizer.step

    def hooked(*a, **k):
        seen["norm"] = torch.sqrt(sum((p.grad**2).sum() for p in agent.net.parameters())).item()
        return step(*a, **k)

    agent.optimizer.step = hooked
    metrics = agent.gradient_step(mb)
    assert metrics["grad_norm"] > 100.0  # the norm before clipping
    assert seen["norm"] == pytest.approx(10.0, rel=1e-4)


def test_no_scheme_update_is_the_plain_mean_squared_error_step():
    a, b = _agent(normalize_input=False), _agent(normalize_input=False)
    mb = _minibatch(a)
    a.gradient_step(mb)
    q = PQN.q_value(b.net(mb["obs"], mb["task"]), mb["bins"])
    ((q - mb["target"]).square().mean()).backward()
    nn.utils.clip_grad_norm_(b.net.parameters(), 10.0)
    b.optimizer.step()
    for p, r in zip(a.net.parameters(), b.net.parameters()):
        torch.testing.assert_close(p, r)


NETWORKS = ["mlp", "multihead", "care", "care_mh", "moore", "moore_mh", "paco", "soft_modularization"]
SMALL_NETS = {  # narrowed, so that every combination takes a fraction of a second; the wiring is what is tested
    "mlp": "network.critic_units=[32,32]", "multihead": "network.critic_units=[32]",
    "care": "network.units=[32,32]", "care_mh": "network.units=[32,32]",
    "moore": "network.hidden_dim=32 network.num_layers=2", "moore_mh": "network.hidden_dim=32 network.num_layers=2",
    "paco": "network.D=32 network.loss_threshold=null",
    "soft_modularization": "network.D=32 network.num_layers=2 network.state_units=[32] network.task_units=[32]",
}  # fmt: skip
TASKS = "task_id=[reach-v3,push-v3,pick-place-v3,door-open-v3]"


def _built(network: str, scheme: str = "") -> PQN:
    cfg = resolve_config(compose(["train=pqn", TASKS, "num_envs=4", "sim_device=cpu", f"network={network}",
                                  *SMALL_NETS[network].split(), *scheme.split()]))  # fmt: skip
    return build_algorithm(cfg, 39 + 4, 4)


def _conflicting_minibatch(B=64, n=4):
    """Identical states and actions for every task, opposite targets: the tasks' gradients point apart."""
    g = torch.Generator().manual_seed(0)
    task = torch.arange(B) % n
    x = torch.randn(B // n, 39, generator=g).repeat_interleave(n, 0)
    onehot = nn.functional.one_hot(task, n).float()
    bins = torch.randint(3, (B // n, 4), generator=g).repeat_interleave(n, 0)
    return {"obs": torch.cat([x, onehot], 1), "bins": bins, "target": 50.0 * torch.where(task % 2 == 0, 1.0, -1.0),
            "task": task}  # fmt: skip


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("scheme", ["scheme=pcgrad", "scheme=cagrad", "scheme=famo"])
def test_scheme_changes_the_pqn_update(network, scheme):
    """One step from the same weights and minibatch with the scheme and with the plain mean: the Q-network must
    move differently (the scheme sees the per-task losses, not their mean)."""
    mb = _conflicting_minibatch()
    moved = {}
    for label in ("mean", "scheme"):
        agent = _built(network, scheme if label == "scheme" else "")
        assert agent.scheme.name == (scheme.split("=")[1] if label == "scheme" else "none")
        agent.gradient_step(mb)
        moved[label] = [p.detach().clone() for p in agent.net.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(moved["mean"], moved["scheme"]))


def test_paco_masks_out_and_resets_the_exploding_task():
    cfg = resolve_config(compose(["train=pqn", TASKS, "num_envs=4", "sim_device=cpu", "network=paco", "network.D=32"]))
    agent = build_algorithm(cfg, 39 + 4, 4)
    assert agent.stabilizer is agent.net and agent.net.loss_threshold == 100.0
    mb = _conflicting_minibatch()
    mb["target"] = torch.where(mb["task"] == 2, 1e4, 0.0)  # task 2's squared error ~1e8, far above 100
    logits = agent.net.body.task_encoder.weight.detach().clone()
    metrics = agent.gradient_step(mb)
    assert metrics["masked_tasks"].item() == 1.0
    after = agent.net.body.task_encoder.weight.detach()
    assert not torch.equal(after[2], logits[2])  # w-reset
    assert torch.isfinite(after).all()


def test_residual_layernorm_network_is_upstreams():
    net = ResidualLayerNormMLP(43, 12, width=32, blocks=3, activation="elu")
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "ELU", "LayerNorm", "ResidualBlock", "ResidualBlock", "ELU", "Linear"]
    block = net[3]
    assert [type(m).__name__ for m in block.inner] == ["Linear", "ELU", "LayerNorm", "Linear"]
    x = torch.randn(7, 32)
    torch.testing.assert_close(block(x), block.norm(x + block.inner(x)))
    for m in net.modules():
        if isinstance(m, nn.Linear):
            assert not m.bias.any()
            w = m.weight
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # orthogonal rows or columns, gain sqrt(2)
            torch.testing.assert_close(gram, 2.0 * torch.eye(gram.shape[0]), atol=1e-4, rtol=0)
    q = make_q_network(43, 4, ["a", "b"], 3, "mlp", critic_units=[32, 32], activation="elu", init_log_std=None)
    assert q(torch.randn(5, 43), torch.zeros(5, dtype=torch.long)).shape == (5, 4, 3)
    w, n_in = 32, 43  # input layer and its LayerNorm, one residual block (2 linear, 2 LayerNorm), output layer
    expected = (n_in * w + w) + 2 * w + 2 * (w * w + w) + 2 * 2 * w + (w * 12 + 12)
    assert sum(p.numel() for p in q.parameters()) == expected


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["network.critic_units=[256,128]"], r"critic_units=\[256, 128\] must be one width repeated"),
        (["network.actor_units=[64]"], "sizes an actor, and PQN has none"),
        (["train.pqn.bins=1"], r"bins=1 must be an integer >= 2"),
        (["train.pqn.lam=1.5"], r"lam=1.5 must be a number in \[0, 1\]"),
        (["train.pqn.num_minibatches=100", "num_envs=2", "train.pqn.horizon=4"], "exceeds the num_envs"),
        (["scheme=pcgrad", "scheme.apply_to=actor"], "applies to an actor and PQN has none"),
    ],
)
def test_bad_pqn_settings_are_one_line_errors(overrides, match):
    from mtbench.train import run

    with pytest.raises(ConfigError, match=match) as e:
        run(["train=pqn", "task=reach-v3", "sim_device=cpu", "progress=false", "max_iterations=0", *overrides])
    assert "\n" not in str(e.value).split("See `mtbench")[0].strip()


def test_pqn_defaults_follow_table_5():
    cfg = resolve_config(compose(["train=pqn", "sim_device=cpu"]))
    s = cfg.train.pqn
    assert (s.horizon, s.mini_epochs, s.num_minibatches, s.lr, s.anneal_lr, s.gamma, s.lam, s.bins) == (
        16, 8, 4, 3e-4, True, 0.99, 0.5, 3)  # fmt: skip
    assert (s.epsilon_start, s.epsilon_end, s.max_grad_norm, s.normalize_input) == (1.0, 0.005, 10.0, False)
    # ε decays over 0.5 % of the run on the GPU (Table 5); the hour-long CPU run explores over 8 %, the share
    # upstream's runs explored (its counter ended the decay at 4,000 of 50,000 iterations)
    assert s.exploration_fraction == 0.08
    assert cfg.env.episode_length == 500 and cfg.env.random_init_progress
    assert list(cfg.network.critic_units) == [256, 256] and cfg.network.activation == "elu"
    assert cfg.network.actor_units is None
    gpu = compose(["train=pqn"]).train.gpu
    assert (gpu.num_envs, gpu.max_iterations, gpu.exploration_fraction) == (8192, 50000, 0.005)
    mt50 = resolve_config(compose(["train=pqn_mt50", "task=mt50", "sim_device=cpu"]))
    assert mt50.train.name == "pqn_mt50" and list(mt50.network.critic_units) == [256, 256]
    agent = build_algorithm(cfg, 39 + 10, 4)
    counts = agent.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in agent.net.parameters())
    assert math.isclose(agent.lr, 3e-4) and agent.epsilon == 1.0
