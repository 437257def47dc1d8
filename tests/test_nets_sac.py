"""The SAC forms of every network (mtbench/nets/sac.py): shapes, independent critics, the [state, action, one-hot]
input of the Q bodies, dependence on action and task, and per kind a check that would fail if the network were
silently the plain MLP (task heads, MOORE's orthonormal mixture, CARE's attention, PaCo's w, Soft-Mod's routing)."""

import inspect
import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mtbench.nets import NETWORKS, stabilizer
from mtbench.nets.bodies import BODIES as SAC_NETWORKS
from mtbench.nets.bodies import body_settings as sac_settings
from mtbench.nets.multihead import TaskHeads
from mtbench.nets.paco import CompositionalLinear
from mtbench.nets.sac import make_sac_networks

STATE, ACT, N_TASKS, B = 7, 3, 4, 16
NAMES = [f"task-{i}-v3" for i in range(N_TASKS)]

CASES = {
    "mlp": ("mlp", dict(actor_units=(16, 16), critic_units=(16, 16), activation="relu")),
    "multihead": ("multihead", dict(actor_units=(16, 16), critic_units=(16, 16), activation="relu")),
    "care": ("care", dict(units=(16, 16), n_experts=3, encoder_units=(8, 8), attention_units=(8,),
                          context_units=(8, 8))),
    "care_mh": ("care", dict(units=(16, 16), n_experts=3, encoder_units=(8, 8), attention_units=(8,),
                             context_units=(8, 8), multihead=True)),
    "moore": ("moore", dict(n_experts=3, num_layers=2, hidden_dim=12, task_encoder_units=(8,))),
    "moore_mh": ("moore", dict(n_experts=3, num_layers=2, hidden_dim=12, task_encoder_units=(8,), multihead=True)),
    "paco": ("paco", dict(K=3, D=16, num_layers=2)),
    "soft_modularization": ("soft_modularization", dict(num_experts=2, num_layers=3, D=16, state_units=(16,),
                                                        task_units=(16,))),
}  # fmt: skip
MULTIHEAD = ["multihead", "care_mh", "moore_mh"]


@pytest.fixture(scope="module")
def metadata(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("meta") / "meta.json"
    rng = np.random.default_rng(0)
    path.write_text(json.dumps({name: rng.normal(size=6).tolist() for name in NAMES}))
    return str(path)


def build(case: str, metadata: str, n_critics: int = 2, seed: int = 0, dtype=torch.float32):
    """(actor, critic) of a test case at small sizes. PaCo starts with its K parameter sets equal, so that no
    task's w matters; they are spread apart here so that task conditioning can be tested at all."""
    name, settings = CASES[case]
    settings = dict(settings, metadata=metadata) if name == "care" else settings
    torch.manual_seed(seed)
    actor, critic = make_sac_networks(STATE + N_TASKS, ACT, NAMES, name, n_critics=n_critics, **settings)
    actor, critic = actor.to(dtype), critic.to(dtype)
    if name == "paco":
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for m in [*actor.modules(), *critic.modules()]:
                if isinstance(m, CompositionalLinear):
                    m.weight.add_(0.3 * torch.randn(m.weight.shape, generator=gen, dtype=dtype))
                    m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=gen, dtype=dtype))
    return actor, critic


def batch(seed: int = 0, dtype=torch.float32):
    """Every task twice: (obs with one-hot tail, action, task)."""
    gen = torch.Generator().manual_seed(seed)
    task = torch.arange(B) % N_TASKS
    state = torch.randn(B, STATE, generator=gen, dtype=dtype)
    obs = torch.cat([state, F.one_hot(task, N_TASKS).to(dtype)], dim=1)
    return obs, torch.randn(B, ACT, generator=gen, dtype=dtype).tanh(), task


def with_task(x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
    """The same features (state, or state and action) under another task's one-hot."""
    return torch.cat([x[:, :-N_TASKS], F.one_hot(task, N_TASKS).to(x.dtype)], dim=1)


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


# ---------------------------------------------------------------- every kind


@pytest.mark.parametrize("n_critics", [1, 2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_shapes(case, n_critics, metadata):
    actor, critic = build(case, metadata, n_critics)
    obs, action, task = batch()
    mu, log_std = actor(obs, task)
    assert mu.shape == log_std.shape == (B, ACT)
    assert critic(obs, action, task).shape == (n_critics, B)


@pytest.mark.parametrize("case", sorted(CASES))
def test_critics_are_independent(case, metadata):
    _, critic = build(case, metadata)
    q0, q1 = critic.qs
    assert [n for n, _ in q0.named_parameters()] == [n for n, _ in q1.named_parameters()]
    assert not torch.equal(flat(q0), flat(q1))
    assert not set(map(id, q0.parameters())) & set(map(id, q1.parameters()))
    obs, action, task = batch()
    q = critic(obs, action, task)
    assert (q[0] - q[1]).abs().min() > 1e-6
    q[0].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in q0.parameters())
    assert all(p.grad is None or not p.grad.any() for p in q1.parameters())


@pytest.mark.parametrize("case", sorted(CASES))
def test_q_bodies_read_state_then_action_then_one_hot(case, metadata):
    _, critic = build(case, metadata)
    obs, action, task = batch()
    x = torch.cat([obs[:, :STATE], action, obs[:, STATE:]], dim=1)
    q = critic(obs, action, task)
    for i, body in enumerate(critic.qs):
        torch.testing.assert_close(q[i], body(x, task).squeeze(-1), rtol=0, atol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_q_depends_on_action_and_task_and_the_actor_on_task(case, metadata):
    actor, critic = build(case, metadata)
    obs, action, task = batch()
    q = critic(obs, action, task)
    assert ((critic(obs, -action, task) - q).abs() > 1e-6).all()
    other = (task + 1) % N_TASKS
    assert ((critic(with_task(obs, other), action, other) - q).abs() > 1e-6).all()
    assert ((actor(with_task(obs, other), other)[0] - actor(obs, task)[0]).abs().amax(-1) > 1e-6).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_log_std_depends_on_the_state(case, metadata):
    """SAC's log-std is an output of the actor, not one learned vector as in the PPO forms."""
    actor, _ = build(case, metadata)
    obs, _, task = batch(seed=0)
    other, _, _ = batch(seed=1)
    delta = actor(obs, task)[1] - actor(other, task)[1]
    assert (delta.abs().amax(-1) > 1e-6).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_parameter_gets_a_finite_nonzero_gradient(case, metadata):
    actor, critic = build(case, metadata)
    obs, action, task = batch()
    mu, log_std = actor(obs, task)
    (mu.sum() + log_std.sum() + critic(obs, action, task).sum()).backward()
    for part in (actor, critic):
        for name, p in part.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_settings_are_the_ppo_forms_without_init_log_std():
    assert set(SAC_NETWORKS) == set(NETWORKS)
    for name, cls in NETWORKS.items():
        ppo = set(inspect.signature(cls.__init__).parameters) - {"self", "obs_dim", "action_dim", "n_tasks"}
        assert set(sac_settings(name)) == ppo - {"init_log_std", "task_names"}, name


@pytest.mark.parametrize(
    "name,settings,match",
    [
        ("bronet", {}, "unknown network 'bronet'"),
        ("mlp", {"init_log_std": 0.0}, r"no settings \['init_log_std'\]; valid: \['activation'"),
        ("moore", {"D": 3}, r"no settings \['D'\]"),
    ],
)
def test_unknown_network_or_setting_is_a_one_line_error(name, settings, match):
    with pytest.raises(ValueError, match=match) as err:
        make_sac_networks(STATE + N_TASKS, ACT, NAMES, name, **settings)
    assert "\n" not in str(err.value)


def test_mlp_defaults_are_upstream_mt_sac():
    """The values live in mtbench/conf/network/mlp.yaml (by_algo.sac), the factory has no defaults of its own."""
    from mtbench.config import compose, resolve_config

    network = dict(resolve_config(compose(["train=sac", "sim_device=cpu"])).network)
    network.pop("init_log_std")
    actor, critic = make_sac_networks(39 + 10, 4, [f"t{i}" for i in range(10)], **network)
    widths = [m.out_features for m in actor.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [512, 256, 128, 8]
    assert all(isinstance(m, torch.nn.ReLU) for m in actor.body.net[1::2])
    first = critic.qs[0].net[0]
    assert (first.in_features, first.out_features) == (39 + 4 + 10, 512)


# ---------------------------------------------------------------- per kind: not the plain MLP


def outputs(actor, critic, obs, action, task) -> list[torch.Tensor]:
    mu, log_std = actor(obs, task)
    return [torch.cat([mu, log_std], -1), *critic(obs, action, task).unsqueeze(-1)]


@pytest.mark.parametrize("case", MULTIHEAD)
def test_task_heads_touch_only_their_task(case, metadata):
    actor, critic = build(case, metadata)
    obs, action, task = batch()
    before = outputs(actor, critic, obs, action, task)
    j = 2
    heads = [m for m in [*actor.modules(), *critic.modules()] if isinstance(m, TaskHeads)]
    assert len(heads) == 3  # the actor's and each Q's
    with torch.no_grad():
        for h in heads:
            h.weight[j] += 0.5
    for b, a in zip(before, outputs(actor, critic, obs, action, task)):
        changed = (a - b).abs().amax(-1) > 1e-6
        assert torch.equal(changed, task == j)


def _gram_schmidt_reference(v: np.ndarray) -> np.ndarray:
    """Orthonormalise the rows of v (E, D) in order, via QR with R's diagonal made positive."""
    q, r = np.linalg.qr(v.T)
    return (q * np.sign(np.diag(r))).T


@pytest.mark.parametrize("case", ["moore", "moore_mh"])
def test_moore_is_a_task_weighted_orthonormal_mixture(case, metadata):
    actor, critic = build(case, metadata, dtype=torch.float64)
    obs, action, task = batch(dtype=torch.float64)
    x_q = torch.cat([obs[:, :STATE], action, obs[:, STATE:]], dim=1)
    mu, log_std = actor(obs, task)
    nets = [(actor.body, obs, torch.cat([mu, log_std], -1))]
    nets += [(body, x_q, q.unsqueeze(-1)) for body, q in zip(critic.qs, critic(obs, action, task))]
    with torch.no_grad():
        for body, x, out in nets:
            for b in range(B):
                state, one_hot, t = x[b : b + 1, :-N_TASKS], x[b : b + 1, -N_TASKS:], task[b : b + 1]
                basis = _gram_schmidt_reference(body.experts(state)[:, 0].numpy())  # (E, D)
                w = body.task_encoder(one_hot)[0].numpy()
                y = torch.from_numpy(np.tanh(w @ basis))[None]
                ref = body.head(y, t) if body.multihead else body.head(torch.cat([y, one_hot], -1))
                torch.testing.assert_close(out[b], ref[0], atol=1e-9, rtol=0)


@pytest.mark.parametrize("case", ["care", "care_mh"])
def test_care_attention_differs_across_tasks(case, metadata):
    actor, critic = build(case, metadata)
    obs, action, _ = batch()
    x_q = torch.cat([obs[:, :STATE], action, obs[:, STATE:]], dim=1)
    for body, x in [(actor.body, obs), *((q, x_q) for q in critic.qs)]:
        alphas = [body.attend(x, torch.full((B,), t))[2] for t in range(N_TASKS)]
        for a in alphas:
            torch.testing.assert_close(a.sum(-1), torch.ones(B))
        for s in range(N_TASKS):
            for t in range(s + 1, N_TASKS):
                assert ((alphas[s] - alphas[t]).abs().amax(-1) > 1e-6).all()


def test_paco_output_of_a_task_depends_only_on_its_own_w(metadata):
    actor, critic = build("paco", metadata)
    obs, action, task = batch()
    before = outputs(actor, critic, obs, action, task)
    j = 1
    logits = actor.task_logits() + critic.task_logits()
    assert len(logits) == 3 and len(set(map(id, logits))) == 3  # the actor and each Q own their w
    with torch.no_grad():
        for table in logits:
            table[j] += torch.tensor([1.0, -1.0, 0.5])
    for b, a in zip(before, outputs(actor, critic, obs, action, task)):
        changed = (a - b).abs().amax(-1) > 1e-6
        assert torch.equal(changed, task == j)


def test_paco_stabilisation_hooks_on_actor_and_critic(metadata):
    """Mask-out and w-reset as PaCoActorCritic's: the failing task's w of every PaCo net (actor, each Q) becomes a
    convex mix of the healthy tasks' vectors, the others stay, and Adam's moments of the reset rows restart."""
    actor, critic = build("paco", metadata)
    assert actor.task_encoder.weight is actor.task_logits()[0]
    obs, action, task = batch()
    failing = torch.tensor([False, True, False, False])
    losses = torch.tensor([1.0, 500.0, float("nan"), 3.0])
    for part in (actor, critic):
        assert part.loss_threshold == 100.0 and stabilizer(part) is part
        assert part.keep_tasks(losses, torch.tensor([5, 5, 5, 0])).tolist() == [True, False, False, True]
        opt = torch.optim.Adam(part.parameters())
        out = part(obs, task) if part is actor else (part(obs, action, task),)
        sum(o.sum() for o in out).backward()
        opt.step()
        before = [t.detach().clone() for t in part.task_logits()]
        part.reset_tasks(failing, opt, torch.Generator().manual_seed(0))
        for old, new in zip(before, part.task_logits()):
            assert torch.equal(old[~failing], new[~failing]) and not torch.equal(old[failing], new[failing])
            beta = torch.linalg.lstsq(torch.softmax(old[~failing], -1).T, torch.softmax(new[1], -1)[:, None]).solution
            assert (beta > -1e-5).all() and abs(beta.sum() - 1) < 1e-4
            for key in ("exp_avg", "exp_avg_sq"):
                moment = opt.state[new][key]
                assert not moment[failing].any() and moment[~failing].any()


def test_stabilisation_is_off_without_a_threshold_and_for_other_networks(metadata):
    off = make_sac_networks(STATE + N_TASKS, ACT, NAMES, "paco", K=2, D=8, num_layers=1, loss_threshold=None)
    assert [stabilizer(part) for part in off] == [None, None]
    assert [stabilizer(part) for part in build("moore", metadata)] == [None, None]


def test_soft_modularization_routes_by_task_and_uses_the_routing(metadata):
    actor, critic = build("soft_modularization", metadata)
    obs, action, task = batch()
    x_q = torch.cat([obs[:, :STATE], action, obs[:, STATE:]], dim=1)
    for body, x in [(actor.body, obs), *((q, x_q) for q in critic.qs)]:
        p = [body.routing(body.embed(with_task(x, torch.full((B,), t)))) for t in range(N_TASKS)]
        assert p[0].shape == (2, B, 2, 2)
        for s in range(N_TASKS):
            for t in range(s + 1, N_TASKS):
                assert ((p[s] - p[t]).abs().flatten(2).amax(-1) > 1e-6).all()
    before = outputs(actor, critic, obs, action, task)
    with torch.no_grad():
        for body in [actor.body, *critic.qs]:
            body.route_down[-1].bias += torch.linspace(-1.0, 1.0, 4)
    for b, a in zip(before, outputs(actor, critic, obs, action, task)):
        assert ((a - b).abs().amax(-1) > 1e-6).all()
