"""MOORE and CARE networks: Gram-Schmidt is an orthonormalisation that agrees with QR, the forward passes
respect the ActorCritic interface, parameter counts at the paper's sizes match a count done by hand from the
layer sizes, CARE's task embedding stays frozen and its attention is a distribution over encoders."""

import json

import numpy as np
import pytest
import torch

from mtbench.nets import count_parameters
from mtbench.nets.care import DEFAULT_METADATA, CAREActorCritic
from mtbench.nets.moore import MOOREActorCritic, gram_schmidt

OBS, ACT = 39, 4
MT10_NAMES = [
    "button-press-topdown-v3", "door-open-v3", "drawer-close-v3", "drawer-open-v3", "peg-insert-side-v3",
    "pick-place-v3", "push-v3", "reach-v3", "window-close-v3", "window-open-v3",
]  # fmt: skip


def make_obs(task: torch.Tensor, n_tasks: int, true_obs: torch.Tensor | None = None) -> torch.Tensor:
    if true_obs is None:
        true_obs = torch.randn(len(task), OBS)
    return torch.cat([true_obs, torch.nn.functional.one_hot(task, n_tasks).float()], dim=1)


def write_metadata(path, names: list[str], dim: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    path.write_text(json.dumps({name: rng.normal(size=dim).tolist() for name in names}))
    return str(path)


def make_care(tmp_path, names: list[str], dim: int = 16, **kwargs) -> CAREActorCritic:
    meta = write_metadata(tmp_path / "meta.json", names, dim)
    return CAREActorCritic(OBS + len(names), ACT, len(names), task_names=names, metadata=meta, **kwargs)


def gram(x: torch.Tensor) -> torch.Tensor:
    """(E, B, D) -> per-sample Gram matrices (B, E, E)."""
    return torch.einsum("ebd,fbd->bef", x, x)


# ---------------------------------------------------------------- Gram-Schmidt


def test_gram_schmidt_is_orthonormal_per_sample():
    torch.manual_seed(0)
    q = gram_schmidt(torch.randn(6, 128, 400))
    assert q.shape == (6, 128, 400)
    assert (gram(q) - torch.eye(6)).abs().max() < 1e-5


def test_gram_schmidt_keeps_the_nested_spans():
    """Input k lies in the span of outputs 0..k: nothing is lost, and the order is the experts' order."""
    torch.manual_seed(1)
    x = torch.randn(5, 32, 20, dtype=torch.float64)
    q = gram_schmidt(x)
    for k in range(5):
        basis = q[: k + 1]
        coef = torch.einsum("ebd,bd->eb", basis, x[k])
        proj = torch.einsum("eb,ebd->bd", coef, basis)
        assert (x[k] - proj).norm(dim=-1).max() < 1e-10 * x[k].norm(dim=-1).max()
        if k:  # and not in the span of the outputs before it (random inputs are independent)
            prev = q[:k]
            resid = x[k] - torch.einsum("eb,ebd->bd", torch.einsum("ebd,bd->eb", prev, x[k]), prev)
            assert resid.norm(dim=-1).min() > 1e-3


def test_gram_schmidt_matches_numpy_qr_up_to_sign():
    torch.manual_seed(2)
    x = torch.randn(4, 8, 50, dtype=torch.float64)
    q = gram_schmidt(x).numpy()
    for b in range(8):
        ref, _ = np.linalg.qr(x[:, b, :].numpy().T)  # (D, E), column k spans inputs 0..k
        ours = q[:, b, :].T
        sign = np.sign((ref * ours).sum(0))
        assert np.all(np.abs(sign) == 1)
        np.testing.assert_allclose(ours * sign, ref, atol=1e-10)


def test_gram_schmidt_survives_a_duplicated_expert():
    x = torch.randn(3, 4, 10, requires_grad=True)
    y = gram_schmidt(torch.stack([x[0], x[0], x[2]]))
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


# ---------------------------------------------------------------- MOORE


@pytest.mark.parametrize("multihead", [False, True])
def test_moore_forward_shapes_and_task_conditioning(multihead):
    torch.manual_seed(3)
    net = MOOREActorCritic(OBS + 10, ACT, 10, multihead=multihead)
    task = torch.arange(10).repeat(3)
    obs = make_obs(task, 10)
    mu, log_std, value = net(obs, task)
    assert mu.shape == (30, ACT) and log_std.shape == (30, ACT) and value.shape == (30,)
    assert torch.isfinite(mu).all() and torch.isfinite(value).all()
    assert torch.equal(net.value(obs, task), value)
    true_obs = torch.randn(1, OBS).expand(2, OBS)
    two_tasks = torch.tensor([0, 1])
    mu2, _, v2 = net(make_obs(two_tasks, 10, true_obs), two_tasks)
    assert (mu2[0] - mu2[1]).abs().max() > 1e-4 and (v2[0] - v2[1]).abs() > 1e-6


def test_moore_features_are_orthonormal_in_a_real_forward_pass():
    torch.manual_seed(4)
    net = MOOREActorCritic(OBS + 50, ACT, 50)
    task = torch.randint(0, 50, (64,))
    feats = net.features(make_obs(task, 50), task)
    assert feats.shape == (6, 64, 400)  # MT50 default: 6 experts of D = 400
    assert (gram(feats) - torch.eye(6)).abs().max() < 1e-5


def test_moore_mt10_sh_parameter_count_at_paper_sizes():
    n_tasks, experts, d, enc = 10, 4, 400, 256
    expert = (OBS * d + d) + 2 * (d * d + d)  # 3 MoE layers, biased
    task_encoder = n_tasks * enc + enc * experts  # no biases
    actor = experts * expert + task_encoder + (d + n_tasks) * ACT + ACT + ACT  # head on [y, one-hot]; log-std
    critic = experts * expert + task_encoder + (d + n_tasks) * 1 + 1
    net = MOOREActorCritic(OBS + n_tasks, ACT, n_tasks, n_experts=4)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == actor + critic == 2_703_627
    assert count_parameters(net) == {"actor": actor, "critic": critic, "total": actor + critic}


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def _moore_reference(body, obs: np.ndarray, task: np.ndarray, n_tasks: int) -> np.ndarray:
    """MOORE (Hendawy et al., 2024) for one sample at a time, one expert at a time, from the raw parameters:
    h_e = MLP_e(s) (ReLU between layers, linear last); classical Gram-Schmidt u_1 = h_1 / |h_1|,
    u_e = (h_e - Σ_{j<e} <h_e, u_j> u_j) / |...|; w_c = task encoder(one-hot) (no softmax);
    y = tanh(Σ_e w_ce u_e); out = head([y, one-hot]) or task c's head(y)."""
    P = {name: p.detach().numpy() for name, p in body.named_parameters()}
    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    E, layers = P["experts.layers.0.weight"].shape[0], len(body.experts.layers)
    outs = []
    for o, c in zip(obs, task):
        s, one_hot = o[:OBS], o[OBS:]
        h = []
        for e in range(E):
            x = s
            for k in range(layers):
                x = x @ P[f"experts.layers.{k}.weight"][e] + P[f"experts.layers.{k}.bias"][e, 0]
                x = relu(x) if k < layers - 1 else x
            h.append(x)
        u = []
        for e in range(E):
            v = h[e] - sum((h[e] @ q) * q for q in u)
            u.append(v / np.linalg.norm(v))
        w = relu(one_hot @ P["task_encoder.0.weight"].T) @ P["task_encoder.2.weight"].T
        y = np.tanh(sum(w[e] * u[e] for e in range(E)))
        if body.multihead:
            outs.append(y @ P["head.weight"][c] + P["head.bias"][c])
        else:
            outs.append(np.concatenate([y, one_hot]) @ P["head.weight"].T + P["head.bias"])
    return np.stack(outs)


@pytest.mark.parametrize("multihead", [False, True])
def test_moore_matches_slow_per_sample_reference(multihead):
    net = MOOREActorCritic(OBS + 3, ACT, 3, n_experts=3, num_layers=2, hidden_dim=11, task_encoder_units=(6,),
                           multihead=multihead).double()  # fmt: skip
    _randomise(net, seed=7)
    task = torch.tensor([0, 2, 1, 1, 0, 2, 2])
    obs = make_obs(task, 3, torch.randn(7, OBS, dtype=torch.float64)).double()
    mu, _, value = net(obs, task)
    np.testing.assert_allclose(mu.detach().numpy(), _moore_reference(net.actor, obs.numpy(), task.numpy(), 3),
                               rtol=1e-9, atol=1e-10)  # fmt: skip
    ref_v = _moore_reference(net.critic, obs.numpy(), task.numpy(), 3)[:, 0]
    np.testing.assert_allclose(value.detach().numpy(), ref_v, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------- CARE


def _care_reference(body, obs: np.ndarray, task: np.ndarray) -> np.ndarray:
    """CARE (Sodhani et al., 2021) for one sample at a time, one encoder at a time, from the raw parameters:
    z_ctx = MLP(ReLU(e_c)) of the task's frozen embedding; encoder k: z_k = MLP_k(s) (ReLU between layers, linear
    last); α = softmax_k(z_ctx · z_k / temperature); z_enc = MLP_att(Σ_k α_k z_k);
    out = head(MLP_trunk([z_enc, z_ctx])), one head or task c's."""
    P = {name: p.detach().numpy() for name, p in body.named_parameters()}
    emb = body.task_embedding.numpy()
    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    lin = lambda name, x: x @ P[f"{name}.weight"].T + (P[f"{name}.bias"] if f"{name}.bias" in P else 0)  # noqa: E731

    def mlp(prefix: str, x: np.ndarray) -> np.ndarray:  # Linear + ReLU per layer, as mtbench's mlp(.., None)
        k = 0
        while f"{prefix}.{k}.weight" in P:
            x = relu(lin(f"{prefix}.{k}", x))
            k += 2
        return x

    E, layers = P["encoders.layers.0.weight"].shape[0], len(body.encoders.layers)
    outs = []
    for o, c in zip(obs, task):
        s = o[: body.true_obs_dim]
        ctx = relu(emb[c])
        ctx = relu(lin("context_encoder.3", relu(lin("context_encoder.1", ctx))))
        ctx = mlp("context_encoder.5", ctx)
        z = []
        for e in range(E):
            x = s
            for k in range(layers):
                x = x @ P[f"encoders.layers.{k}.weight"][e] + P[f"encoders.layers.{k}.bias"][e, 0]
                x = relu(x) if k < layers - 1 else x
            z.append(x)
        scores = np.array([ctx @ z[e] for e in range(E)]) / body.temperature
        alpha = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        z_enc = mlp("attention_mlp", sum(alpha[e] * z[e] for e in range(E)))
        h = mlp("trunk", np.concatenate([z_enc, ctx]))
        outs.append(h @ P["head.weight"][c] + P["head.bias"][c] if body.multihead else lin("head", h))
    return np.stack(outs)


@pytest.mark.parametrize("multihead", [False, True])
def test_care_matches_slow_per_sample_reference(tmp_path, multihead):
    names = ["reach-v3", "push-v3", "pick-place-v3"]
    net = make_care(tmp_path, names, dim=5, units=(9, 7), n_experts=3, encoder_units=(6, 4), temperature=0.7,
                    attention_units=(5,), context_units=(8, 4), multihead=multihead).double()  # fmt: skip
    _randomise(net, seed=8, scale=0.5)
    task = torch.tensor([0, 2, 1, 1, 0, 2, 2])
    obs = make_obs(task, 3, torch.randn(7, OBS, dtype=torch.float64)).double()
    mu, _, value = net(obs, task)
    np.testing.assert_allclose(mu.detach().numpy(), _care_reference(net.actor, obs.numpy(), task.numpy()),
                               rtol=1e-9, atol=1e-10)  # fmt: skip
    ref_v = _care_reference(net.critic, obs.numpy(), task.numpy())[:, 0]
    np.testing.assert_allclose(value.detach().numpy(), ref_v, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("multihead", [False, True])
def test_care_forward_shapes_frozen_embedding_and_attention(tmp_path, multihead):
    torch.manual_seed(5)
    names = ["reach-v3", "push-v3", "pick-place-v3"]
    net = make_care(tmp_path, names, multihead=multihead)
    task = torch.tensor([0, 1, 2, 2, 1, 0, 0])
    obs = make_obs(task, 3)
    mu, log_std, value = net(obs, task)
    assert mu.shape == (7, ACT) and log_std.shape == (7, ACT) and value.shape == (7,)
    assert torch.isfinite(mu).all() and torch.isfinite(value).all()

    alpha = net.attention_weights(obs, task)
    assert alpha.shape == (7, 6) and (alpha >= 0).all()
    torch.testing.assert_close(alpha.sum(-1), torch.ones(7))

    before = net.actor.task_embedding.clone()
    (mu.sum() + value.sum()).backward()
    torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1.0).step()
    for body in (net.actor, net.critic):
        assert not body.task_embedding.requires_grad and body.task_embedding.grad is None
    assert torch.equal(net.actor.task_embedding, before)
    assert all("task_embedding" not in name for name, _ in net.named_parameters())
    assert {"actor.task_embedding", "critic.task_embedding"} <= set(net.state_dict())


def test_care_context_does_not_learn_through_attention(tmp_path):
    """Upstream detaches z_ctx in the attention scores: the context is trained only through the trunk."""
    net = make_care(tmp_path, ["reach-v3", "push-v3"])
    task = torch.tensor([0, 1, 1])
    (net.attention_weights(make_obs(task, 2), task) * torch.randn(3, 6)).sum().backward()
    assert all(p.grad is None for p in net.actor.context_encoder.parameters())
    assert all(p.grad is not None for p in net.actor.encoders.parameters())


def test_care_metadata_keys_may_omit_the_version(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"reach": [1.0, 2.0], "push-v3": [3.0, 4.0]}))
    net = CAREActorCritic(OBS + 2, ACT, 2, task_names=["push-v3", "reach-v3"], metadata=str(meta))
    assert net.actor.task_embedding.tolist() == [[3.0, 4.0], [1.0, 2.0]]


def test_care_metadata_errors_name_the_problem(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"reach-v3": [1.0, 2.0], "push-v3": [3.0, 4.0]}))
    with pytest.raises(ValueError, match="door-open-v3") as err:
        CAREActorCritic(OBS + 2, ACT, 2, task_names=["reach-v3", "door-open-v3"], metadata=str(meta))
    assert str(meta) in str(err.value) and "reach-v3" not in str(err.value).split(":")[-1]
    meta.write_text(json.dumps({"reach-v3": [1.0, 2.0], "push-v3": [3.0, 4.0, 5.0]}))
    with pytest.raises(ValueError, match="differing lengths"):
        CAREActorCritic(OBS + 2, ACT, 2, task_names=["reach-v3", "push-v3"], metadata=str(meta))


def test_care_mt10_sh_parameter_count_at_paper_sizes(tmp_path):
    d, experts, enc, ctx, att, units = 384, 6, 50, 50, 50, 400  # SH CARE never sees the one-hot columns
    context = (d * 2 * d + 2 * d) + (2 * d * d + d) + (d * ctx + ctx) + (ctx * ctx + ctx)
    encoders = experts * ((OBS * enc + enc) + (enc * enc + enc))
    attention = (enc * att + att) + (att * att + att)
    trunk = ((att + ctx) * units + units) + 2 * (units * units + units)
    body = context + encoders + attention + trunk
    actor = body + units * ACT + ACT + ACT  # head; log-std
    critic = body + units * 1 + 1
    net = make_care(tmp_path, MT10_NAMES, dim=d)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == actor + critic == 2_014_761
    assert count_parameters(net) == {"actor": actor, "critic": critic, "total": actor + critic}


@pytest.mark.skipif(not DEFAULT_METADATA.exists(), reason="default task-embedding file not written yet")
def test_care_default_metadata_covers_mt50():
    from mtbench.envs.metaworld.registry import METAWORLD_NAMES

    net = CAREActorCritic(OBS + 50, ACT, 50, task_names=list(METAWORLD_NAMES), units=(8,))
    assert net.actor.task_embedding.shape == (50, 384)


# ---------------------------------------------------------------- both


def small_nets(tmp_path):
    names = ["reach-v3", "push-v3", "pick-place-v3"]
    for multihead in (False, True):
        yield MOOREActorCritic(OBS + 3, ACT, 3, n_experts=3, hidden_dim=32, multihead=multihead)
        yield make_care(tmp_path, names, units=(32, 32), multihead=multihead)


def test_gradients_reach_every_trainable_parameter(tmp_path):
    torch.manual_seed(6)
    for net in small_nets(tmp_path):
        task = torch.tensor([0, 1, 2, 1])
        mu, log_std, value = net(make_obs(task, 3), task)
        (mu.sum() + log_std.sum() + value.sum()).backward()
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{type(net).__name__}: {name}"
            assert p.grad.abs().sum() > 0, f"{type(net).__name__}: {name} got an all-zero gradient"


def test_actor_and_critic_parameters_partition_the_trainable_parameters(tmp_path):
    for net in small_nets(tmp_path):
        actor = {id(p) for p in net.actor_parameters()}
        critic = {id(p) for p in net.critic_parameters()}
        trainable = {id(p) for p in net.parameters() if p.requires_grad}
        assert not actor & critic
        assert actor | critic == trainable
        assert id(net.log_std) in actor


@pytest.mark.parametrize("agg", ["tanh", "linear"])
def test_moore_aggregation_activation(agg: str):
    """Table 3's [Linear, Tanh] squashes the task-weighted expert sum before the head; Table 7's [Linear, Linear]
    passes it on as it is."""
    from mtbench.nets.moore import MOOREBody

    torch.manual_seed(0)
    body = MOOREBody(7 + 3, 2, 3, n_experts=2, num_layers=2, hidden_dim=16, task_encoder_units=(8,),
                     multihead=False, agg_activation=agg)  # fmt: skip
    with torch.no_grad():  # make the sums large, where tanh and identity differ
        body.task_encoder[-1].weight.mul_(50.0)
    obs = torch.cat([torch.randn(5, 7), torch.eye(3)[torch.tensor([0, 1, 2, 0, 1])]], dim=1)
    seen = {}
    body.head.register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0]))
    body(obs, torch.tensor([0, 1, 2, 0, 1]))
    raw = torch.einsum("be,ebd->bd", body.task_encoder(obs[:, 7:]), body.features(obs))
    expected = torch.tanh(raw) if agg == "tanh" else raw
    torch.testing.assert_close(seen["x"][:, :16], expected)
    assert raw.abs().max() > 2.0  # the two choices really differ on this input
    with pytest.raises(ValueError, match="agg_activation"):
        MOOREBody(10, 2, 3, n_experts=2, num_layers=1, hidden_dim=8, task_encoder_units=(), multihead=False,
                  agg_activation="relu")  # fmt: skip
