"""Per-task gradients from one backward pass (mtbench.mtrl.recording) equal those of one backward pass per task, for
every network of every learner, in both layouts of the task-segmented products; a layer no rule covers, a parameter
used outside its layer and a forward pass outside the recording are errors, never a silently wrong gradient.

Exactness: in float64 the two agree to 1e-12 of the largest entry (only the summation order differs); in float32
to 1e-5 of it."""

import json

import pytest
import torch
from torch import nn

from mtbench.mtrl import layer_rules
from mtbench.mtrl.grads import autograd_task_gradients
from mtbench.mtrl.layer_rules import UncoveredLayerError
from mtbench.mtrl.recording import LayerTape
from mtbench.nets import make_network
from mtbench.nets.paco import CompositionalLinear
from mtbench.nets.policy import make_policy_network
from mtbench.nets.pqn import make_q_network
from mtbench.nets.sac import make_sac_networks

TASKS = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3"]
T, OBS, ACT = len(TASKS), 39, 4
SMALL = {  # every network kind at toy sizes (PPO-form keys; the bodies take the same minus init_log_std)
    "mlp": dict(actor_units=(16, 8), critic_units=(16, 8), activation="elu"),
    "multihead": dict(actor_units=(16, 8), critic_units=(16, 8), activation="elu"),
    "care": dict(units=(16, 16), encoder_units=(8, 8), context_units=(8, 8), attention_units=(8,)),
    "care_mh": dict(units=(16, 16), encoder_units=(8, 8), context_units=(8, 8), attention_units=(8,), multihead=True),
    "moore": dict(hidden_dim=16, num_layers=2, task_encoder_units=(8,)),
    "moore_mh": dict(hidden_dim=16, num_layers=2, task_encoder_units=(8,), multihead=True),
    "paco": dict(D=16, K=3),
    "soft_modularization": dict(D=16, num_layers=3, state_units=(16,), task_units=(16,)),
}
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(scope="module", autouse=True)
def small_care_metadata(tmp_path_factory):
    """CARE's task embeddings at 8 dims instead of the shipped 384 (the layers are what is tested)."""
    path = tmp_path_factory.mktemp("care") / "meta.json"
    gen = torch.Generator().manual_seed(0)
    path.write_text(json.dumps({name: torch.randn(8, generator=gen).tolist() for name in TASKS}))
    for name in ("care", "care_mh"):
        SMALL[name]["metadata"] = str(path)


def _kind(name: str) -> str:
    return name.removesuffix("_mh")


def _batch(B: int = 41, seed: int = 0, dtype=torch.float64, obs: int = OBS):
    """Tasks of unequal sizes, one task absent, samples in no particular order."""
    gen = torch.Generator().manual_seed(seed)
    task = torch.tensor([0, 1, 1, 3, 4, 4, 4])[torch.randint(7, (B,), generator=gen)]
    x = torch.cat([torch.randn(B, obs, generator=gen, dtype=dtype), nn.functional.one_hot(task, T).to(dtype)], 1)
    return x, task


def _per_task_mean(per_sample: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
    counts = torch.bincount(task, minlength=T).clamp_min(1).to(per_sample.dtype)
    return per_sample.new_zeros(T).index_add(0, task, per_sample) / counts


def _randomise(net: nn.Module, seed: int = 1) -> nn.Module:
    """Random parameters everywhere (PaCo's K copies and zero biases would hide mistakes)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.4)
    return net


def _compare(net: nn.Module, loss_fn, task: torch.Tensor, dtype) -> None:
    """`loss_fn()` gives per-task losses from a forward pass of `net`: recorded vs one backward pass per task."""
    tape = LayerTape()
    with tape.record(net, task):
        losses = loss_fn()
    params = list(net.parameters())
    fast = tape.task_gradients(losses, params)
    ref = autograd_task_gradients(losses, params)
    assert set(fast.blocks) == set(ref.blocks)  # the same parameters are reached
    A, R = fast.matrix(params), ref.matrix(params)
    assert A.shape == (T, sum(p.numel() for p in params))
    torch.testing.assert_close(A, R, rtol=0, atol=TOL[dtype] * float(R.abs().max()))
    assert R[2].abs().max() == 0  # the absent task's gradient is zero


LAYOUTS = [(torch.float64, "padded"), (torch.float64, "loop"), (torch.float32, "padded")]


@pytest.mark.parametrize("dtype,layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(SMALL))
def test_ppo_networks(name, dtype, layout, monkeypatch):
    """Both ways of running the task-segmented products: one batched product over the padded layout, or a loop of
    one product per task."""
    if layout == "loop":
        monkeypatch.setattr(layer_rules, "PADDING_LIMIT", 0.0)
    net = _randomise(make_network(OBS + T, ACT, TASKS, _kind(name), **SMALL[name]).to(dtype))
    x, task = _batch(dtype=dtype)

    def losses():
        mu, log_std, v = net(x, task)  # the log-std is a parameter broadcast to the samples
        return _per_task_mean((mu - 0.3).square().sum(1) * log_std.exp().sum(1) + (v - 1.0).square(), task)

    _compare(net, losses, task, dtype)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_policy_q_and_sac_forms(name):
    settings = dict(SMALL[name])
    x, task = _batch()
    p_settings = {k: v for k, v in settings.items() if k != "critic_units"}
    policy = _randomise(make_policy_network(OBS + T, ACT, TASKS, _kind(name), **p_settings).double())
    _compare(policy, lambda: _per_task_mean(policy(x, task)[0].tanh().sum(1) * policy(x, task)[1].sum(1), task),
             task, torch.float64)  # fmt: skip
    q_settings = dict(settings)
    if name in ("mlp", "multihead"):  # PQN's mlp: residual LayerNorm blocks of one width
        q_settings.update(actor_units=None, critic_units=(16, 16))
    q = _randomise(make_q_network(OBS + T, ACT, TASKS, 3, _kind(name), **q_settings).double())
    _compare(q, lambda: _per_task_mean(q(x, task).square().mean((1, 2)), task), task, torch.float64)
    actor, critic = make_sac_networks(OBS + T, ACT, TASKS, _kind(name), **settings)
    critic = _randomise(critic.double())
    a = torch.randn(x.shape[0], ACT, dtype=torch.float64)
    _compare(critic, lambda: _per_task_mean(critic(x, a, task).square().sum(0), task), task, torch.float64)


def test_layer_norm_and_embedding_rules():
    """BroNet-style blocks: LayerNorm with its affine parameters, a learned task embedding looked up by task."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(T, 6)
            self.inp = nn.Linear(OBS + T + 6, 12)
            self.norm = nn.LayerNorm(12)
            self.out = nn.Linear(12, 1)

        def forward(self, x, task):
            return self.out(torch.relu(self.norm(self.inp(torch.cat([x, self.emb(task)], 1))))).squeeze(1)

    net = _randomise(Net().double())
    x, task = _batch()
    _compare(net, lambda: _per_task_mean(net(x, task).square(), task), task, torch.float64)


@pytest.mark.parametrize("in_dim,out_dim", [(7, 13), (13, 7)])
def test_compositional_layer_with_a_mix_per_sample(in_dim, out_dim):
    """PaCo mixes by task (one w per task, the fast path); a mix that varies within a task takes the general one."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = nn.Linear(OBS + T, 3)
            self.inp = nn.Linear(OBS + T, in_dim)
            self.layer = CompositionalLinear(in_dim, out_dim, 3)

        def forward(self, x):
            return self.layer(torch.tanh(self.inp(x)), torch.softmax(self.mix(x), -1)).square().sum(1)

    net = _randomise(Net().double())
    x, task = _batch()
    _compare(net, lambda: _per_task_mean(net(x), task), task, torch.float64)


def test_the_memory_is_tasks_by_parameters():
    net = make_network(OBS + T, ACT, TASKS, "moore", **SMALL["moore"])
    x, task = _batch(B=200, dtype=torch.float32)
    tape = LayerTape()
    with tape.record(net, task):
        losses = _per_task_mean(net(x, task)[2].square(), task)
    G = tape.task_gradients(losses, list(net.parameters()))
    assert sum(g.numel() for g in G.blocks.values()) == T * sum(p.numel() for p in net.critic_parameters())


class _Scaled(nn.Module):
    """A layer type no rule covers."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(OBS + T))

    def forward(self, x):
        return x * self.scale


def test_a_layer_without_a_rule_is_an_error():
    net = nn.Sequential(_Scaled(), nn.Linear(OBS + T, 1))
    x, task = _batch(dtype=torch.float32)
    with pytest.raises(UncoveredLayerError, match=r"parameter '0.scale' \(of _Scaled\) is used by"):
        with LayerTape().record(net, task):
            net(x)
    conv = nn.Sequential(nn.Unflatten(1, (1, OBS + T)), nn.Conv1d(1, 2, 3), nn.Flatten())
    with pytest.raises(UncoveredLayerError, match="of Conv1d"):
        with LayerTape().record(conv, task):
            conv(x)


def test_a_parameter_used_outside_its_layer_is_an_error():
    lin = nn.Linear(OBS + T, 1)
    x, task = _batch(dtype=torch.float32)
    with pytest.raises(UncoveredLayerError, match="'weight' .* is used by"):
        with LayerTape().record(lin, task):
            lin(x) + lin.weight.sum()


def test_an_output_changed_in_place_is_an_error():
    lin = nn.Linear(OBS + T, 3)
    x, task = _batch(dtype=torch.float32)
    tape = LayerTape()
    with tape.record(lin, task):
        y = torch.relu_(lin(x)).sum(1)
    with pytest.raises(UncoveredLayerError, match="modified in place"):
        tape.task_gradients(_per_task_mean(y, task), list(lin.parameters()))


def test_a_forward_pass_outside_the_recording_is_an_error():
    lin = nn.Linear(OBS + T, 1)
    x, task = _batch(dtype=torch.float32)
    y = lin(x).squeeze(1)  # not recorded
    tape = LayerTape()
    with tape.record(lin, task):
        pass
    with pytest.raises(UncoveredLayerError, match="not recorded"):
        tape.task_gradients(_per_task_mean(y.square(), task), list(lin.parameters()))
