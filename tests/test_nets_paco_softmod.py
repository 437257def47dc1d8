"""PaCo and Soft-Modularization against explicit references: per-task layers composed by hand from Φw, the
PaCo paper's loss maskout and w-reset (Algorithm 1, Eq. 3), and a slow per-sample loop of Soft-Modularization's
wiring."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mtbench.nets.paco import CompositionalLinear, PaCoActorCritic
from mtbench.nets.soft_modularization import SoftModularActorCritic


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    """Break the K-fold copies of PaCo's init so the composition is actually tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def _batch(obs_dim: int, n_tasks: int, B: int, seed: int = 0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    task = torch.arange(B) % n_tasks
    state = torch.randn(B, obs_dim - n_tasks, generator=gen, dtype=dtype)
    return torch.cat([state, F.one_hot(task, n_tasks).to(dtype)], dim=1), task


# ---------------------------------------------------------------- PaCo


@pytest.mark.parametrize("in_dim,out_dim", [(7, 13), (13, 7), (9, 9)])  # both mixing orders are exercised
def test_compositional_linear_equals_per_task_layer_from_phi_w(in_dim, out_dim):
    K, n_tasks = 4, 5
    layer = CompositionalLinear(in_dim, out_dim, K)
    _randomise(layer, seed=1, scale=1.0)
    gen = torch.Generator().manual_seed(2)
    w_tasks = torch.softmax(torch.randn(n_tasks, K, generator=gen), -1)
    task = torch.randint(n_tasks, (64,), generator=gen)
    x = torch.randn(64, in_dim, generator=gen)
    out = layer(x, w_tasks[task]).detach().numpy()

    V, b, W = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy(), w_tasks.double().numpy()
    for t in range(n_tasks):
        W_t = sum(W[t, k] * V[k] for k in range(K))  # θ_t = Φ w_t, one explicit linear layer per task
        b_t = sum(W[t, k] * b[k] for k in range(K))
        rows = (task == t).numpy()
        np.testing.assert_allclose(out[rows], x.double().numpy()[rows] @ W_t + b_t, atol=1e-5, rtol=0)


def test_paco_forward_equals_hand_composed_per_task_mlp():
    n_tasks, obs_dim, A, K, D = 4, 11 + 4, 3, 3, 16
    net = PaCoActorCritic(obs_dim, A, n_tasks, K=K, D=D, num_layers=3).double()
    _randomise(net, seed=3)
    obs, task = _batch(obs_dim, n_tasks, 40, dtype=torch.float64)
    mu, log_std, value = net(obs, task)

    P = {name: p.detach().numpy() for name, p in net.named_parameters()}
    logits = P["task_encoder.weight"]
    w = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = [f"trunk.{i}" for i in range(3)]

    def compose(name: str, t: int) -> tuple[np.ndarray, np.ndarray]:
        """θ_t = Φ w_t for one layer: W_t = Σ_k w_tk V_k, b_t = Σ_k w_tk b_k."""
        return np.tensordot(w[t], P[f"{name}.weight"], 1), w[t] @ P[f"{name}.bias"]

    for b in range(len(task)):
        t = int(task[b])
        h = obs[b, : obs_dim - n_tasks].numpy()  # the trunk sees the state only; the task comes through w
        for name in names:
            W_t, b_t = compose(name, t)
            h = np.maximum(h @ W_t + b_t, 0.0)
        W_a, b_a = compose("actor_head", t)
        W_c, b_c = compose("critic_head", t)
        np.testing.assert_allclose(mu[b].detach().numpy(), h @ W_a + b_a, atol=1e-10)
        np.testing.assert_allclose(value[b].item(), (h @ W_c + b_c)[0], atol=1e-10)
    assert torch.equal(log_std, net.log_std.expand(40, A))
    torch.testing.assert_close(net.value(obs, task), value)


def test_paco_init_copies_one_orthogonal_matrix_to_all_sets():
    net = PaCoActorCritic(39 + 10, 4, 10, K=5)
    for layer, gain in [(net.trunk[0], 2**0.5), (net.trunk[1], 2**0.5), (net.actor_head, 1.0)]:
        V = layer.weight.detach()
        assert all(torch.equal(V[0], V[k]) for k in range(5))
        small = V[0] if V.shape[1] <= V.shape[2] else V[0].T  # the orthonormal side is the shorter one
        torch.testing.assert_close(small @ small.T, gain**2 * torch.eye(small.shape[0]), atol=1e-5, rtol=0)
        assert not layer.bias.any()
    E = net.task_encoder.weight.detach()  # (10, 5): orthonormal columns
    torch.testing.assert_close(E.T @ E, torch.eye(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(net.compositional_vectors().sum(1), torch.ones(10))


def test_paco_task_enters_only_through_w():
    net = PaCoActorCritic(10 + 3, 2, 3, K=2, D=8)
    _randomise(net, seed=4)
    obs, task = _batch(13, 3, 6)
    scrambled = obs.clone()
    scrambled[:, 10:] = torch.randn(6, 3)  # a wrong one-hot changes nothing, a wrong index does
    torch.testing.assert_close(net(scrambled, task), net(obs, task))
    assert not torch.allclose(net(obs, (task + 1) % 3)[0], net(obs, task)[0])


def test_loss_mask_removes_exactly_the_exploding_task():
    losses = torch.tensor([0.5, 1e6, 0.2], requires_grad=True)
    mask = PaCoActorCritic.loss_mask(losses.detach(), 100.0)
    assert mask.dtype == torch.float32 and mask.tolist() == [1.0, 0.0, 1.0]
    total = torch.where(mask.bool(), losses, 0.0).sum()
    total.backward()
    assert total.item() == pytest.approx(0.7) and losses.grad.tolist() == [1.0, 0.0, 1.0]
    odd = torch.tensor([float("nan"), float("inf"), -float("inf"), 100.0, -3.0])
    assert PaCoActorCritic.loss_mask(odd, 100.0).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def _reset_net(n_tasks: int, K: int, seed: int = 5) -> PaCoActorCritic:
    net = PaCoActorCritic(6 + n_tasks, 2, n_tasks, K=K, D=8)
    with torch.no_grad():
        net.task_encoder.weight.copy_(torch.randn(n_tasks, K, generator=torch.Generator().manual_seed(seed)) * 2)
    return net


def test_w_reset_gives_failing_tasks_a_convex_mix_of_healthy_vectors_only():
    net = _reset_net(n_tasks=6, K=6)
    failing = torch.tensor([False, True, False, False, True, False])
    before_logits = net.task_encoder.weight.detach().clone()
    before_w = net.compositional_vectors().detach().clone()
    net.w_reset(failing, torch.Generator().manual_seed(0))
    after = net.task_encoder.weight.detach()

    assert torch.equal(after[~failing], before_logits[~failing])  # healthy rows bit-identical
    healthy_w = before_w[~failing].double()  # (4, K): 4 sources in 6 dims, so β is unique
    new_w = torch.softmax(after[failing].double(), -1)
    for row in new_w:
        beta = torch.linalg.lstsq(healthy_w.T, row.unsqueeze(1)).solution.squeeze(1)
        torch.testing.assert_close(beta @ healthy_w, row, atol=1e-6, rtol=0)  # it lies in their span ...
        assert (beta > -1e-6).all() and beta.sum().item() == pytest.approx(1.0, abs=1e-6)  # ... and hull
    assert not torch.allclose(new_w[0], new_w[1])  # each failing task draws its own β
    assert not torch.allclose(after[failing], before_logits[failing])

    again = _reset_net(n_tasks=6, K=6)
    again.w_reset(failing, torch.Generator().manual_seed(0))
    assert torch.equal(again.task_encoder.weight, net.task_encoder.weight)  # reproducible from the generator


def test_w_reset_stores_log_w_so_softmax_gives_the_mix_back():
    net = _reset_net(n_tasks=3, K=4)
    w = net.compositional_vectors().detach().clone()
    net.w_reset(torch.tensor([False, False, True]), torch.Generator().manual_seed(1))
    new_w = net.compositional_vectors().detach()[2]
    torch.testing.assert_close(net.task_encoder.weight[2].detach().exp(), new_w, atol=1e-6, rtol=0)
    beta = torch.linalg.lstsq(w[:2].T.double(), new_w.double().unsqueeze(1)).solution.squeeze(1)
    assert (beta >= -1e-6).all() and beta.sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("failing", [[True, True, True], [False, False, False]])
def test_w_reset_without_healthy_or_failing_tasks_changes_nothing(failing):
    net = _reset_net(n_tasks=3, K=4)
    before = net.task_encoder.weight.detach().clone()
    net.w_reset(torch.tensor(failing), torch.Generator().manual_seed(2))
    assert torch.equal(net.task_encoder.weight, before)


def test_w_reset_draws_beta_uniformly_from_the_simplex():
    """Healthy w_j ≈ basis vectors e_j, so a failing task's new w is its β. Dirichlet(1,1,1) has mean 1/3,
    variance 1/18 per coordinate and P(β_1 > 1/2) = 1/4; normalised U(0, 1) draws would give variance about
    1/31 and P ≈ 0.17."""
    n_fail = 3000
    net = _reset_net(n_tasks=3 + n_fail, K=3)
    with torch.no_grad():
        net.task_encoder.weight[:3] = 60.0 * torch.eye(3)
    failing = torch.arange(3 + n_fail) >= 3
    net.w_reset(failing, torch.Generator().manual_seed(3))
    beta = net.compositional_vectors().detach()[3:].double()
    torch.testing.assert_close(beta.mean(0), torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(beta.var(0), torch.full((3,), 1 / 18, dtype=torch.float64), atol=0.006, rtol=0)
    assert (beta[:, 0] > 0.5).double().mean().item() == pytest.approx(0.25, abs=0.03)


# ---------------------------------------------------------------- Soft-Modularization


def test_softmod_shapes_routing_and_task_dependence():
    net = SoftModularActorCritic(39 + 10, 4, 10)
    obs, task = _batch(49, 10, 32)
    mu, log_std, value = net(obs, task)
    assert mu.shape == (32, 4) and log_std.shape == (32, 4) and value.shape == (32,)
    assert torch.isfinite(mu).all() and torch.isfinite(value).all()
    probs = net.routing(obs, task)
    assert probs.shape == (3, 32, 2, 2) and (probs >= 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 32, 2))  # row-stochastic over input experts

    other = (task + 3) % 10
    obs_other = torch.cat([obs[:, :39], F.one_hot(other, 10).float()], dim=1)
    mu2, _, value2 = net(obs_other, other)
    assert (mu2 - mu).abs().max() > 1e-4 and (value2 - value).abs().max() > 1e-4
    assert (net.routing(obs_other, other) - probs).abs().max() > 1e-4


def _softmod_loop_reference(body, obs: np.ndarray) -> np.ndarray:
    """Slow per-sample, per-expert Soft-Modularization from the raw parameter tensors."""
    P = {name: p.detach().numpy() for name, p in body.named_parameters()}
    lin = lambda name, x: x @ P[f"{name}.weight"].T + P[f"{name}.bias"]  # noqa: E731
    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    E, s = body.n_experts, body.state_dim
    outs = []
    for o in obs:
        f = lin("state_encoder.4", relu(lin("state_encoder.2", relu(lin("state_encoder.0", o[:s])))))
        z = lin("task_encoder.2", relu(lin("task_encoder.0", o[s:])))
        u = f * z
        logits = [lin("route_down.0", relu(u))]
        for k in range(1, len(body.layers)):
            logits.append(lin(f"route_down.{k}", relu(lin(f"route_up.{k - 1}", logits[-1]) * u)))
        probs = []
        for p in logits:
            m = p.reshape(E, E)
            probs.append(np.exp(m) / np.exp(m).sum(1, keepdims=True))
        x = [u] * E
        for k in range(len(body.layers)):
            h = [relu(x[i] @ P[f"layers.{k}.weight"][i] + P[f"layers.{k}.bias"][i, 0]) for i in range(E)]
            x = [sum(probs[k][i, j] * h[j] for j in range(E)) for i in range(E)]
        outs.append(sum(x[i] @ P["head.weight"][i] + P["head.bias"][i, 0] for i in range(E)))
    return np.stack(outs)


def test_softmod_matches_slow_loop_reference():
    net = SoftModularActorCritic(8 + 3, 2, 3, num_experts=3, num_layers=4, D=12, state_units=(10, 9), task_units=(7,))
    net = net.double()
    _randomise(net, seed=6, scale=0.5)
    obs, task = _batch(11, 3, 9, dtype=torch.float64)
    mu, _, value = net(obs, task)
    np.testing.assert_allclose(mu.detach().numpy(), _softmod_loop_reference(net.actor, obs.numpy()), atol=1e-10)
    np.testing.assert_allclose(value.detach().numpy(), _softmod_loop_reference(net.critic, obs.numpy())[:, 0])


def test_softmod_identity_routing_gives_independent_expert_chains_summed():
    net = SoftModularActorCritic(8 + 3, 2, 3, num_experts=2, num_layers=4, D=12, state_units=(10,), task_units=(7,))
    _randomise(net, seed=7, scale=0.4)
    body = net.actor
    obs, _ = _batch(11, 3, 5)
    body.routing = lambda u: torch.eye(2).expand(3, u.shape[0], 2, 2)  # P_l = I: expert i only feeds expert i
    u = body.embed(obs)
    expected = 0
    for i in range(2):
        h = u
        for layer in body.layers:
            h = torch.relu(h @ layer.weight[i] + layer.bias[i])
        expected = expected + h @ body.head.weight[i] + body.head.bias[i]
    torch.testing.assert_close(body(obs), expected)


# ---------------------------------------------------------------- both


def test_parameter_counts_at_paper_sizes_mt10():
    s, T, A, K, D = 39, 10, 4, 5, 400  # PaCo: K sets of every layer, trunk on the 39-d state
    trunk = K * (s * D + D) + 2 * K * (D * D + D)
    paco_actor = trunk + T * K + K * (D * A + A) + A
    paco_critic = K * (D * 1 + 1)
    paco = PaCoActorCritic(s + T, A, T, K=K)
    assert (paco_actor, paco_critic) == (1_692_074, 2_005)
    assert sum(p.numel() for p in paco.actor_parameters()) == paco_actor
    assert sum(p.numel() for p in paco.critic_parameters()) == paco_critic
    assert sum(p.numel() for p in paco.parameters()) == paco_actor + paco_critic

    E, D = 2, 256
    encoders = (s * 256 + 256) + (256 * 256 + 256) + (256 * D + D) + (T * 256 + 256) + (256 * D + D)
    routing = 3 * (D * E * E + E * E) + 2 * (E * E * D + D)
    base = 3 * E * (D * D + D)
    sm_actor = encoders + routing + base + E * (D * A + A) + A
    sm_critic = encoders + routing + base + E * (D * 1 + 1)
    sm = SoftModularActorCritic(s + T, A, T)
    assert (sm_actor, sm_critic) == (612_888, 611_342)
    assert sum(p.numel() for p in sm.actor_parameters()) == sm_actor
    assert sum(p.numel() for p in sm.critic_parameters()) == sm_critic
    assert sum(p.numel() for p in sm.parameters()) == sm_actor + sm_critic


@pytest.mark.parametrize(
    "make",
    [
        lambda: PaCoActorCritic(9 + 4, 3, 4, K=3, D=16),
        lambda: SoftModularActorCritic(9 + 4, 3, 4, D=16, state_units=(16, 16), task_units=(16,)),
    ],
    ids=["paco", "soft_modularization"],
)
def test_gradients_reach_every_parameter_and_groups_partition(make):
    net = make()
    actor, critic = net.actor_parameters(), net.critic_parameters()
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert len(ids(actor)) == len(actor) and len(ids(critic)) == len(critic)
    assert not ids(actor) & ids(critic) and ids(actor) | ids(critic) == ids(net.parameters())
    assert any(p is net.log_std for p in actor) and net.n_tasks == 4

    obs, task = _batch(13, 4, 64, seed=8)
    mu, log_std, value = net(obs, task)
    (mu.square().sum() + log_std.sum() + value.square().sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
