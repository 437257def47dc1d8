"""Gradient schemes against closed forms and the papers' formulas."""

import numpy as np
import pytest
import torch

from mtbench.mtrl import FAMOScheme, MeanScheme, PCGradScheme, combine_mean
from mtbench.mtrl.famo import FAMOWeights
from mtbench.mtrl.grads import task_gradients
from mtbench.mtrl.pcgrad import pcgrad


def test_pcgrad_two_tasks_closed_form():
    g1 = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    g2 = torch.tensor([-1.0, 1.0, -0.5], dtype=torch.float64)
    assert g1 @ g2 < 0
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    out = pcgrad(torch.stack([g1, g2]), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, (p1 + p2) / 2)
    assert abs(float(p1 @ g2)) < 1e-12 and abs(float(p2 @ g1)) < 1e-12


def test_pcgrad_without_conflict_is_the_mean():
    G = torch.rand(5, 20, dtype=torch.float64)  # all entries positive: no negative inner products
    torch.testing.assert_close(pcgrad(G, torch.Generator().manual_seed(1)), G.mean(0))


def test_pcgrad_equals_sequential_projection_and_removes_each_conflict():
    """A plain per-task loop (the paper's Algorithm 1) with the same random orders gives the same result,
    and right after each projection the gradient no longer conflicts with the one it was projected on."""
    torch.manual_seed(0)
    G = torch.randn(4, 6, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    orders = [torch.randperm(4, generator=gen).tolist() for _ in range(4)]
    projected = []
    for i in range(4):
        g = G[i].clone()
        for j in orders[i]:
            if j != i and g @ G[j] < 0:
                g = g - (g @ G[j]) / (G[j] @ G[j]) * G[j]
                assert g @ G[j] > -1e-12
        projected.append(g)
    torch.testing.assert_close(pcgrad(G, torch.Generator().manual_seed(3)), torch.stack(projected).mean(0))


def _toy(n_tasks=3, seed=0):
    torch.manual_seed(seed)
    actor, critic = torch.nn.Linear(4, 2), torch.nn.Linear(4, 1)
    x = torch.randn(30, 4)
    task = torch.arange(30) % n_tasks
    per_sample_a = actor(x).pow(2).sum(1)
    per_sample_c = (critic(x).squeeze(1) - task.float()).pow(2)
    counts = torch.bincount(task, minlength=n_tasks).float()
    mean = lambda v: torch.zeros(n_tasks).index_add(0, task, v) / counts
    return actor, critic, mean(per_sample_a), mean(per_sample_c), counts


def _grads(*modules):
    return [p.grad.clone() for m in modules for p in m.parameters()]


def test_task_gradients_equal_separate_backward_passes():
    actor, critic, la, lc, counts = _toy()
    G = task_gradients(lc, list(critic.parameters()))
    for i in range(3):
        gi = torch.autograd.grad(lc[i], list(critic.parameters()), retain_graph=True)
        torch.testing.assert_close(G[i], torch.cat([g.reshape(-1) for g in gi]))


def test_pcgrad_on_critic_only_leaves_actor_at_the_plain_mean():
    actor, critic, la, lc, counts = _toy()
    PCGradScheme("critic", torch.Generator().manual_seed(0)).backward(
        la, lc, counts, list(actor.parameters()), list(critic.parameters())
    )
    ours_actor, ours_critic = _grads(actor), _grads(critic)
    actor.zero_grad()
    critic.zero_grad()
    actor, critic, la, lc, counts = _toy()
    combine_mean(la, counts).backward()
    for a, b in zip(ours_actor, _grads(actor)):
        torch.testing.assert_close(a, b)
    G = task_gradients(lc, list(critic.parameters()))
    expected = pcgrad(G, torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.cat([g.reshape(-1) for g in ours_critic]), expected)


def test_mean_scheme_is_the_plain_mean():
    actor, critic, la, lc, counts = _toy()
    MeanScheme().backward(la, lc, counts, [], [])
    ours = _grads(actor, critic)
    actor, critic, la, lc, counts = _toy()
    (combine_mean(la, counts) + combine_mean(lc, counts)).backward()
    for a, b in zip(ours, _grads(actor, critic)):
        torch.testing.assert_close(a, b)


def test_famo_loss_gradient_is_the_paper_weighting():
    """d/dtheta sum_i z_i log D_i / c = sum_i z_i / (D_i c) * d loss_i / dtheta."""
    actor, critic, la, lc, counts = _toy()
    famo = FAMOWeights(3, torch.device("cpu"))
    with torch.no_grad():
        famo.w.copy_(torch.tensor([0.3, -0.2, 0.1]))
    famo.loss(lc).backward(retain_graph=True)
    ours = _grads(critic)
    critic.zero_grad()
    z = torch.softmax(famo.w.detach(), 0)
    D = lc.detach() + famo.eps
    c = (z / D).sum()
    ((z / (D * c)) * lc).sum().backward()
    for a, b in zip(ours, _grads(critic)):
        torch.testing.assert_close(a, b)


def _adam_numpy(lr: float, gamma: float):
    """torch.optim.Adam with L2 weight decay, written out: step(w, g) -> new w."""
    state = {"m": 0.0, "v": 0.0, "t": 0}
    b1, b2 = 0.9, 0.999

    def step(w, g):
        g = g + gamma * w
        state["t"] += 1
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g * g
        t = state["t"]
        return w - lr * (state["m"] / (1 - b1**t)) / (np.sqrt(state["v"] / (1 - b2**t)) + 1e-8)

    return step


def _softmax_jacobian_t(w: np.ndarray, delta: np.ndarray) -> np.ndarray:
    z = np.exp(w) / np.exp(w).sum()
    return (np.diag(z) - np.outer(z, z)).T @ delta


def test_famo_after_step_form_step_by_step():
    """The FAMO paper's official code: each minibatch, delta = log D(before its step) - log D(same minibatch after
    it), and the logits take an Adam step along J_softmax^T delta, not normalised."""
    gamma, lr, eps = 1e-3, 1e-2, 1e-2
    famo = FAMOWeights(3, torch.device("cpu"), gamma=gamma, w_lr=lr, eps=eps, loss_change="after_step")
    before = [np.array([1.0, 2.0, 0.3]), np.array([0.9, 1.5, 0.31]), np.array([0.5, 1.4, 0.2])]
    after = [np.array([0.8, 1.9, 0.32]), np.array([0.85, 1.0, 0.3]), np.array([0.52, 1.3, 0.1])]
    w, adam = np.zeros(3), _adam_numpy(lr, gamma)
    for b, a in zip(before, after):
        famo.update(torch.tensor(b, dtype=torch.float32))
        np.testing.assert_allclose(famo.w.detach().numpy(), w, rtol=1e-5, atol=1e-9)  # nothing moves before the step
        famo.update_after_step(torch.tensor(a, dtype=torch.float32))
        w = adam(w, _softmax_jacobian_t(w, np.log(b + eps) - np.log(a + eps)))
        np.testing.assert_allclose(famo.w.detach().numpy(), w, rtol=1e-5, atol=1e-9)


def test_famo_forgets_the_previous_minibatch():
    famo = FAMOWeights(2, torch.device("cpu"))
    famo.update(torch.tensor([1.0, 2.0]))
    famo.forget()
    famo.update(torch.tensor([0.1, 5.0]))  # a new rollout: no comparison with the last one
    assert np.allclose(famo.w.detach().numpy(), 0.0)
    with pytest.raises(RuntimeError, match="after_step form"):
        famo.update_after_step(torch.tensor([1.0, 1.0]))


def test_famo_logit_update_step_by_step():
    """Upstream's form (the default): two toy losses over three minibatches, the logits follow Adam on the
    normalised J^T delta with delta = log D(previous minibatch) - log D(this minibatch)."""
    gamma, lr, eps = 1e-3, 1e-3, 1e-2
    famo = FAMOWeights(2, torch.device("cpu"), gamma=gamma, w_lr=lr, eps=eps)
    seq = [torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.9]), torch.tensor([0.45, 1.0])]
    # reference: plain numpy Adam with L2 weight decay (torch.optim.Adam's convention)
    w, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    b1, b2 = 0.9, 0.999
    famo.update(seq[0])
    assert np.allclose(famo.w.detach().numpy(), 0.0)  # first minibatch: nothing to compare with yet
    for t, (prev, cur) in enumerate(zip(seq[:-1], seq[1:]), start=1):
        famo.update(cur)
        z = np.exp(w) / np.exp(w).sum()
        delta = np.log(prev.numpy() + eps) - np.log(cur.numpy() + eps)
        J = np.diag(z) - np.outer(z, z)
        d = J.T @ delta
        g = d / np.linalg.norm(d) + gamma * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + 1e-8)
        np.testing.assert_allclose(famo.w.detach().numpy(), w, rtol=1e-5, atol=1e-9)


def test_famo_scheme_actor_is_plain_mean():
    actor, critic, la, lc, counts = _toy()
    FAMOScheme(3, torch.device("cpu")).backward(la, lc, counts, [], [])
    ours = _grads(actor)
    actor.zero_grad()
    actor, critic, la, lc, counts = _toy()
    combine_mean(la, counts).backward()
    for a, b in zip(ours, _grads(actor)):
        torch.testing.assert_close(a, b)


def test_bad_apply_to():
    with pytest.raises(ValueError, match="apply_to"):
        PCGradScheme("trunk")


def _slsqp_cagrad(GG, c=0.4):
    from scipy.optimize import minimize

    n = GG.shape[0]
    b = np.full(n, 1.0 / n)
    k = c * np.sqrt(GG.mean())
    obj = lambda w: w @ GG @ b + k * np.sqrt(w @ GG @ w + 1e-12)
    cons = ({"type": "eq", "fun": lambda w: 1.0 - w.sum()},)
    res = minimize(
        obj, b, bounds=[(0.0, 1.0)] * n, constraints=cons, method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000}
    )
    return res.x


@pytest.mark.parametrize("n", [3, 10, 50])
def test_cagrad_solver_stops_at_its_tolerance(n):
    """The solver stops when the Frank-Wolfe gap, an upper bound on F(w) - min F, is below tol (F in units of the
    mean squared task-gradient norm): checked against SLSQP's minimum, and a tighter tol takes more iterations."""
    from mtbench.mtrl.cagrad import solve_cagrad

    rng = np.random.default_rng(n)
    G = rng.normal(size=(n, 4 * n)) + rng.normal(size=(1, 4 * n))
    GG = G @ G.T
    A = GG / np.diag(GG).mean()
    b = np.full(n, 1.0 / n)
    F = lambda w: w @ A @ b + 0.4 * np.sqrt(b @ A @ b) * np.sqrt(w @ A @ w)  # noqa: E731
    best = F(_slsqp_cagrad(GG))
    loose, tight = solve_cagrad(GG, tol=1e-4), solve_cagrad(GG, tol=1e-8)
    for sol, tol in ((loose, 1e-4), (tight, 1e-8)):
        assert sol.gap <= tol and F(sol.weights) - best <= tol + 1e-9
        assert abs(sol.weights.sum() - 1) < 1e-12 and sol.weights.min() >= 0
    assert 0 < loose.iterations < tight.iterations < 2000
    capped = solve_cagrad(GG, tol=1e-14, max_iterations=5)
    assert capped.iterations == 5 and capped.gap > 1e-14  # the cap is reported, not hidden


@pytest.mark.parametrize("seed", range(6))
def test_cagrad_weights_and_update_match_scipy_slsqp(seed):
    from mtbench.mtrl.cagrad import cagrad, cagrad_weights

    rng = np.random.default_rng(seed)
    n = [2, 3, 5, 10, 20, 50][seed]
    G = rng.normal(size=(n, 3 * n + 7)) + rng.normal(size=(1, 3 * n + 7)) * rng.random() * 2
    GG = G @ G.T
    w_ref = _slsqp_cagrad(GG)
    w = cagrad_weights(torch.from_numpy(GG)).numpy()
    assert np.abs(w - w_ref).max() <= 1e-3 * np.abs(w_ref).max()
    # the update, written from the paper with scipy's weights
    g0 = G.mean(0)
    gw = w_ref @ G
    ref = n * (g0 + 0.4 * np.sqrt(GG.mean()) / np.linalg.norm(gw) * gw) / (1 + 0.4**2)
    ours = cagrad(torch.from_numpy(G)).numpy()
    assert np.linalg.norm(ours - ref) <= 1e-3 * np.linalg.norm(ref)


def test_simplex_projection_matches_brute_force():
    from scipy.optimize import minimize

    from mtbench.mtrl.cagrad import project_simplex

    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.normal(size=6) * 2
        ours = project_simplex(v)
        cons = ({"type": "eq", "fun": lambda x: x.sum() - 1.0},)
        ref = minimize(lambda x, v=v: ((x - v) ** 2).sum(), np.full(6, 1 / 6), bounds=[(0, None)] * 6,
                       constraints=cons, method="SLSQP", options={"ftol": 1e-14}).x  # fmt: skip
        np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_multihead_equals_explicit_per_task_linear_layers():
    from mtbench.nets import count_parameters, make_network

    net = make_network(13, 4, ["a", "b", "c"], "multihead", actor_units=(16, 8), critic_units=(16, 8))
    x = torch.randn(12, 13)
    task = torch.arange(12) % 3
    mu, _, v = net(x, task)
    h = net.actor_trunk(x)
    for i in range(12):
        t = int(task[i])
        torch.testing.assert_close(mu[i], h[i] @ net.actor_heads.weight[t] + net.actor_heads.bias[t])
    counts = count_parameters(net)
    trunk = (13 * 16 + 16) + (16 * 8 + 8)
    assert counts["actor"] == trunk + 3 * (8 * 4 + 4) + 4 and counts["critic"] == trunk + 3 * (8 + 1)
    assert counts["total"] == counts["actor"] + counts["critic"]


def test_conflict_stats_match_pairwise_cosines():
    from mtbench.mtrl.grads import conflict_stats

    G = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 0.0]])
    mean, low = conflict_stats(G, torch.tensor([True, True, True, False]))
    # pairs (0,1): 0, (0,2): -1, (1,2): 0
    assert float(mean) == pytest.approx(-1 / 3) and float(low) == pytest.approx(-1.0)
