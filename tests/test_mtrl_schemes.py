"""Every scheme on every network, through the learners: one update on data whose tasks pull apart differs from the
plain-mean update exactly in the parameters the scheme acts on (those its part's losses reach, shared ones
included) and equals it elsewhere; shared parameters get both parts' gradients; the learners' recorded forward
passes give the same update as one backward pass per task; FAMO forgets across iterations; CAGrad logs its
solver."""

import copy
import functools
import json

import pytest
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from mtbench.algos import make_algorithm
from mtbench.algos.ppo import gaussian_logp
from mtbench.config import compose, resolve_config
from mtbench.mtrl import MeanScheme, PCGradScheme, _GradientScheme, combine_mean
from mtbench.mtrl.grads import autograd_task_gradients
from mtbench.mtrl.pcgrad import pcgrad_weights
from mtbench.train import build_algorithm

TASKS = "task_id=[reach-v3,push-v3,pick-place-v3,door-open-v3]"
N_TASKS, ENVS_PER_TASK, HORIZON = 4, 2, 4
SMALL_NETS = {  # Table 3's kinds narrowed: the wiring is what is tested
    "mlp": "network.actor_units=[16] network.critic_units=[16]",
    "multihead": "network.actor_units=[16] network.critic_units=[16]",
    "care": "network.units=[16,16]", "care_mh": "network.units=[16,16]",
    "moore": "network.hidden_dim=16 network.num_layers=2", "moore_mh": "network.hidden_dim=16 network.num_layers=2",
    "paco": "network.D=16 network.loss_threshold=null",
    "soft_modularization": "network.D=16 network.num_layers=2 network.state_units=[16] network.task_units=[16]",
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def small_care_metadata(tmp_path_factory):
    """CARE's task embeddings at 8 dims instead of the shipped 384 (the wiring is what is tested)."""
    path = tmp_path_factory.mktemp("care") / "meta.json"
    gen = torch.Generator().manual_seed(0)
    names = TASKS.partition("[")[2].rstrip("]").split(",")
    path.write_text(json.dumps({name: torch.randn(8, generator=gen).tolist() for name in names}))
    for name in ("care", "care_mh"):
        SMALL_NETS[name] = f"network.units=[16,16] network.metadata={path}"


SCHEMES = ["scheme=pcgrad", "scheme=cagrad", "scheme=famo", "scheme=pcgrad scheme.apply_to=actor",
           "scheme=cagrad scheme.apply_to=both"]  # fmt: skip


@functools.cache
def _config(network: str, *overrides: str) -> DictConfig:
    n_envs = N_TASKS * ENVS_PER_TASK
    return resolve_config(compose([TASKS, f"num_envs={n_envs}", f"train.ppo.horizon={HORIZON}",
                                   f"train.ppo.minibatch_size={n_envs * HORIZON}", "train.ppo.mini_epochs=1",
                                   "train.ppo.max_grad_norm=1e9", "train.ppo.normalize_value=false",
                                   "train.ppo.normalize_input=false", "sim_device=cpu", f"network={network}",
                                   *SMALL_NETS[network].split(), *overrides]))  # fmt: skip


def _ppo(network: str, *overrides: str):
    """PPO on `network` with the scheme and PPO settings of `overrides` (composed once per network and once per
    scheme: Hydra's composition is what costs here)."""
    train = [o for o in overrides if not o.startswith("scheme")]
    cfg = _config(network, *train)
    scheme = _config("mlp", *[o for o in overrides if o.startswith("scheme")]).scheme
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.scheme = copy.deepcopy(scheme)
    agent = build_algorithm(cfg, 39 + N_TASKS, 4)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # off the symmetric init (PaCo's K equal sets make its logits' gradient 0 up to rounding)
        for p in agent.net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return agent


def _conflicting_rollout(agent) -> torch.Tensor:
    """The same states and actions for every task, rewards of opposite sign (and different size) for odd and even
    tasks: the tasks' value and policy gradients point apart. Returns the env's last values."""
    task = torch.arange(N_TASKS * ENVS_PER_TASK) // ENVS_PER_TASK
    agent.start(task)
    buf, g = agent.buf, torch.Generator().manual_seed(0)
    buf.obs[..., :39] = torch.randn(HORIZON, ENVS_PER_TASK, 39, generator=g).repeat(1, N_TASKS, 1)
    buf.obs[..., 39:] = nn.functional.one_hot(task, N_TASKS).float()
    buf.actions.copy_(torch.randn(HORIZON, ENVS_PER_TASK, 4, generator=g).repeat(1, N_TASKS, 1))
    sign = torch.where(task % 2 == 0, 1.0, -1.0) * (1.0 + task)
    buf.rewards.copy_(sign * (1.0 + torch.rand(HORIZON, ENVS_PER_TASK, generator=g).repeat(1, N_TASKS)))
    with torch.no_grad():  # the behaviour policy is the current one: ratio 1, nothing clipped
        mu, log_std, v = agent.net(buf.obs.reshape(-1, 39 + N_TASKS), task.repeat(HORIZON))
        buf.mu.copy_(mu.view_as(buf.mu))
        buf.sigma.copy_(log_std.exp().view_as(buf.sigma))
        buf.logp.copy_(gaussian_logp(buf.actions.reshape(-1, 4), mu, log_std).view_as(buf.logp))
        buf.values.copy_(v.view_as(buf.values))
    return torch.zeros(N_TASKS * ENVS_PER_TASK)


def _update_gradients(agent) -> dict[str, torch.Tensor]:
    """The gradients one PPO update hands to the optimiser (not stepped: the weights stay the same)."""
    seen = {}
    names = {p: n for n, p in agent.net.named_parameters()}
    agent.optimizer.step = lambda: seen.update({names[p]: p.grad.clone() for p in names if p.grad is not None})
    last_value = _conflicting_rollout(agent)
    agent.learn(agent.buf, last_value)
    return seen


def _reached(agent, part: str) -> set[str]:
    """The parameters the part's per-task losses reach, asked of autograd on a fresh forward pass."""
    data = agent.prepare(agent.buf, torch.zeros(N_TASKS * ENVS_PER_TASK))
    losses = agent.task_losses(data)[part]
    named = list(agent.net.named_parameters())
    grads = torch.autograd.grad(losses.sum(), [p for _, p in named], allow_unused=True)
    return {n for (n, _), g in zip(named, grads) if g is not None}


_MEAN: dict[str, dict] = {}


def _mean_update(network: str) -> dict[str, torch.Tensor]:
    if network not in _MEAN:
        _MEAN[network] = _update_gradients(_ppo(network))
    return _MEAN[network]


@pytest.mark.parametrize("network", sorted(SMALL_NETS))
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_scheme_changes_the_update_exactly_where_it_acts(network, scheme):
    mean = _mean_update(network)
    agent = _ppo(network, *scheme.split())
    ours = _update_gradients(agent)
    parts = {"actor": ["actor"], "both": ["actor", "critic"]}.get(scheme.partition("apply_to=")[2], ["critic"])
    acted = set().union(*(_reached(agent, p) for p in parts))
    assert set(ours) == set(mean) and acted < set(mean) or parts == ["actor", "critic"]
    for name in mean:
        if name in acted:
            assert not torch.allclose(ours[name], mean[name], rtol=1e-3, atol=1e-7), f"{name} follows the mean"
        else:
            torch.testing.assert_close(ours[name], mean[name], rtol=1e-5, atol=1e-7, msg=f"{name} moved")


class _EqualWeights(_GradientScheme):
    """Σ_t g_t / n: with equal task counts, exactly the plain-mean gradient when the parts are combined right."""

    name = "equal"

    def weights(self, GG: torch.Tensor) -> torch.Tensor:
        return torch.full((GG.shape[0],), 1.0 / GG.shape[0], dtype=GG.dtype, device=GG.device)


@pytest.mark.parametrize("apply_to", ["critic", "actor", "both"])
def test_paco_shared_trunk_and_logits_get_both_parts_gradients(apply_to):
    """PaCo's trunk and task logits are shared by actor and critic. A scheme whose combination is the mean must give
    every parameter, shared ones included, the plain-mean gradient: the policy loss's and the value loss's."""
    mean = _mean_update("paco")
    agent = _ppo("paco")
    agent.scheme = _EqualWeights(apply_to)
    ours = _update_gradients(agent)
    assert {n for n in _reached(agent, "critic")} >= {"trunk.0.weight", "task_encoder.weight", "critic_head.weight"}
    for name in mean:
        torch.testing.assert_close(ours[name], mean[name], rtol=1e-5, atol=1e-7, msg=name)


def test_shared_parameters_by_hand():
    """A shared trunk, an actor head and a critic head: under PCGrad on the critic, the trunk's gradient is the
    actor's plain mean gradient plus PCGrad of the critic's per-task gradients over trunk and critic head."""
    torch.manual_seed(0)
    trunk, actor, critic = nn.Linear(6, 8), nn.Linear(8, 2), nn.Linear(8, 1)
    x, task = torch.randn(40, 6), torch.arange(40) % 4
    counts = torch.bincount(task).float()

    def losses():
        h = torch.tanh(trunk(x))
        per = lambda v: torch.zeros(4).index_add(0, task, v) / counts  # noqa: E731
        return per(actor(h).square().sum(1)), per((critic(h).squeeze(1) - task.float() + 1.5).square())

    scheme = PCGradScheme("critic", torch.Generator().manual_seed(3))
    with scheme.recording(nn.ModuleList([trunk, actor, critic]), task):
        la, lc = losses()
    scheme.backward(la, lc, counts, [*trunk.parameters(), *actor.parameters()], list(critic.parameters()))
    ours = {p: p.grad.clone() for m in (trunk, actor, critic) for p in m.parameters()}
    la, lc = losses()
    shared_and_critic = [*trunk.parameters(), *critic.parameters()]
    G = autograd_task_gradients(lc, shared_and_critic).matrix(shared_and_critic)
    beta = pcgrad_weights(G.double() @ G.double().T, torch.Generator().manual_seed(3))
    projected = (beta.float() @ G).split([p.numel() for p in shared_and_critic])
    plain = torch.autograd.grad(combine_mean(la, counts), [*trunk.parameters(), *actor.parameters()])
    expected = dict(zip([*trunk.parameters(), *actor.parameters()], plain))
    for p, g in zip(shared_and_critic, projected):
        expected[p] = expected.get(p, 0) + g.view_as(p)
    for p, g in expected.items():
        torch.testing.assert_close(ours[p], g, rtol=1e-5, atol=1e-7)
    assert (G[:, : trunk.weight.numel()] @ G[:, : trunk.weight.numel()].T).min() < 0  # the trunk does conflict


@pytest.mark.parametrize("network", ["paco", "moore_mh", "care"])
def test_ppo_layer_rules_equal_one_backward_pass_per_task(network):
    ours = _update_gradients(_ppo(network, "scheme=pcgrad", "scheme.apply_to=both"))
    ref = _update_gradients(_ppo(network, "scheme=pcgrad", "scheme.apply_to=both", "scheme.task_gradients=autograd"))
    for name in ref:
        torch.testing.assert_close(ours[name], ref[name], rtol=1e-4, atol=1e-6, msg=name)


def test_mean_scheme_records_nothing():
    assert MeanScheme().recording(nn.Linear(2, 2), torch.zeros(3, dtype=torch.long)).__enter__() is None


def test_famo_forgets_across_iterations_and_cagrad_logs_its_solver():
    """Two iterations of two minibatches: FAMO's previous-minibatch form steps its logits only within an iteration
    (the refit targets make the loss change across the boundary meaningless); its after-step form steps once per
    minibatch. CAGrad reports its solver's iterations and final gap."""
    for form, steps in (("previous_minibatch", 2), ("after_step", 4)):
        agent = _ppo("mlp", "scheme=famo", f"scheme.loss_change={form}",
                     f"train.ppo.minibatch_size={N_TASKS * ENVS_PER_TASK * HORIZON // 2}")  # fmt: skip
        for _ in range(2):
            last_value = _conflicting_rollout(agent)
            agent.learn(agent.buf, last_value)
        w = agent.scheme.weights
        assert int(w.opt.state[w.w]["step"]) == steps, form
    agent = _ppo("mlp", "scheme=cagrad")
    last_value = _conflicting_rollout(agent)
    out = agent.learn(agent.buf, last_value)
    assert out["cagrad/iterations"] >= 1 and out["cagrad/gap_max"] <= agent.scheme.tol


@functools.cache
def _grpo_settings() -> dict:
    settings = OmegaConf.to_container(compose(["train=grpo"]).train.grpo)
    return {**settings, "horizon": 6, "mini_epochs": 1, "minibatch_size": 24}


def _captured(optimizer: torch.optim.Optimizer, into: list) -> None:
    """Make `optimizer.step` record the gradients it would apply (and apply nothing)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    optimizer.step = lambda: into.append([p.grad.clone() if p.grad is not None else None for p in params])


def _assert_same_gradients(ours: list, ref: list) -> None:
    assert len(ours) == len(ref) > 0
    for step_ours, step_ref in zip(ours, ref):
        for a, b in zip(step_ours, step_ref):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("network", ["paco", "moore_mh", "mlp"])
def test_sac_pqn_and_grpo_record_their_whole_forward_passes(network):
    """Each learner's steps under PCGrad on both parts give the same gradients with the layer rules as with one
    backward pass per task: their recorded forward passes hold every use of the parameters."""
    from test_grpo import _conflicting_update
    from test_pqn import _built as pqn_built
    from test_pqn import _conflicting_minibatch
    from test_sac import _built as sac_built
    from test_sac import _conflicting_batch

    scheme = "scheme=pcgrad scheme.apply_to=both"
    grads: dict[str, list] = {}
    for how in ("layers", "autograd"):
        sac = sac_built(network, f"{scheme} scheme.task_gradients={how}")
        steps = grads.setdefault(f"sac {how}", [])
        _captured(sac.critic_opt, steps)
        _captured(sac.actor_opt, steps)
        sac.gradient_step(_conflicting_batch())
        pqn = pqn_built(network, f"{scheme} scheme.task_gradients={how}")
        _captured(pqn.optimizer, grads.setdefault(f"pqn {how}", []))
        pqn.gradient_step(_conflicting_minibatch())
    for how in ("layers", "autograd"):  # GRPO's toy policy is an mlp over two tasks
        grpo = make_algorithm("grpo", _grpo_settings(), {"name": "mlp", "actor_units": [16], "activation": "elu"},
                              {"name": "pcgrad", "apply_to": "actor", "task_gradients": how}, 39 + 2, 4,
                              ["reach-v3", "push-v3"], "cpu", seed=0)  # fmt: skip
        _captured(grpo.optimizer, grads.setdefault(f"grpo {how}", []))
        _conflicting_update(grpo)
    for learner in ("sac", "pqn", "grpo"):
        _assert_same_gradients(grads[f"{learner} layers"], grads[f"{learner} autograd"])
