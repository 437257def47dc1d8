"""PaCo (Sun et al., 2022; MTBench `paco_a2c`, shared actor-critic): every layer holds K parameter sets Φ,
and task τ uses the layer θ_τ = Φ w_τ, a convex combination picked by a learned compositional vector
w_τ = softmax(logits_τ). Φ is shared by all tasks and w_τ belongs to task τ alone, which is what makes the
paper's stabilisation possible: a task whose loss explodes is masked out of the loss, and its w is reset
to a random mix of the healthy tasks' vectors without touching anything another task uses."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from mtbench.validation import PosFloat, PosInt


class CompositionalLinear(nn.Module):
    """K linear layers mixed per sample: y = Σ_k w_k (x V_k + b_k) = x (Σ_k w_k V_k) + Σ_k w_k b_k.

    Composing a weight matrix per sample would cost B·in·out memory; instead all K layers are applied in one
    matmul and mixed. The mix can go on either side of the matmul, and the cheaper side is taken (fixed by
    the layer's shape, not by data): mixing the inputs, [w ⊗ x] (B, K·in) @ V (K·in, out), keeps a (B, K·in)
    intermediate; mixing the outputs, x (B, in) @ V (in, K·out) then w-weighted, keeps a (B, K·out) one.
    Both cost B·K·in·out multiply-adds, so the network's cost grows with K, not with the number of tasks."""

    def __init__(self, in_dim: int, out_dim: int, K: int, gain: float = 1.0):
        super().__init__()
        self.in_dim, self.out_dim, self.K = in_dim, out_dim, K
        # one orthogonal matrix copied to all K sets (upstream): at init every task sees the same layer, and
        # the sets only drift apart through the tasks' different w
        base = nn.init.orthogonal_(torch.empty(out_dim, in_dim), gain=gain).T
        self.weight = nn.Parameter(base.expand(K, in_dim, out_dim).clone())  # (K, in, out)
        self.bias = nn.Parameter(torch.zeros(K, out_dim))
        self.mix_inputs = in_dim <= out_dim

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x (B, in), w (B, K) -> (B, out)."""
        B = x.shape[0]
        if self.mix_inputs:
            xw = (w.unsqueeze(-1) * x.unsqueeze(1)).reshape(B, self.K * self.in_dim)
            y = xw @ self.weight.reshape(self.K * self.in_dim, self.out_dim)
        else:
            v = self.weight.transpose(0, 1).reshape(self.in_dim, self.K * self.out_dim)
            y = torch.bmm(w.unsqueeze(1), (x @ v).view(B, self.K, self.out_dim)).squeeze(1)
        return y + w @ self.bias


def task_vectors(logits: nn.Embedding, task: torch.Tensor) -> torch.Tensor:
    """Each sample's compositional vector w = softmax(logits[task]), (B, K). Looked up through the embedding's own
    call, so that the logit table is an ordinary layer to the per-task gradients of the MTRL schemes."""
    return F.softmax(logits(task), dim=-1)


class PaCoActorCritic(nn.Module):
    """Shared trunk of `num_layers` CompositionalLinear layers (width D, ReLU), then compositional actor and
    critic heads; all use the sample's task vector w.

    The trunk sees the observation WITHOUT its one-hot (as upstream): the task enters only through w, so
    all task-specific parameters sit in the task encoder and w-reset really does reset a task. (With the
    one-hot in the input, the first layer's one-hot columns would be task-specific parameters hidden in Φ.)

    Parameter groups follow upstream's split by name (a name containing "critic" is critic): actor = trunk + task
    encoder + actor head + log-std, critic = critic head only. The trunk and the task encoder are shared: the value
    loss shapes them as much as the policy loss. An MTRL scheme acts on a part's per-task *losses* (mtbench.mtrl),
    over every parameter those losses reach: with the PCGrad/CAGrad default (critic), the per-task value-loss
    gradients of critic head, trunk and task encoder are combined by the scheme, and the shared parameters also
    get the plain mean gradient of the policy loss."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        *,
        K: PosInt | None = None,
        D: PosInt = 400,
        num_layers: PosInt = 3,
        loss_threshold: PosFloat | None = 100.0,
        init_log_std: float = 0.0,
    ):
        super().__init__()
        # per-task loss above which the learner masks the task out and w-resets it; None turns both off
        self.loss_threshold = loss_threshold
        if K is None:
            K = 5 if n_tasks <= 10 else 20  # MTBench Table 3: MT10 / MT50
        self.n_tasks, self.K = n_tasks, K
        self.state_dim = obs_dim - n_tasks
        # the task encoder is just the logits table: Embedding(n_tasks, K), orthogonal, no bias, softmax
        self.task_encoder = nn.Embedding(n_tasks, K)
        nn.init.orthogonal_(self.task_encoder.weight)
        dims = [self.state_dim] + [D] * num_layers
        self.trunk = nn.ModuleList(CompositionalLinear(a, b, K, gain=math.sqrt(2.0)) for a, b in zip(dims, dims[1:]))
        self.actor_head = CompositionalLinear(D, action_dim, K, gain=1.0)
        self.critic_head = CompositionalLinear(D, 1, K, gain=1.0)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def compositional_vectors(self) -> torch.Tensor:
        """w for every task, (n_tasks, K); each row lies on the probability simplex."""
        return F.softmax(self.task_encoder.weight, dim=-1)

    def features(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trunk output (B, D) and the samples' task vectors w (B, K)."""
        w = task_vectors(self.task_encoder, task)
        h = obs[:, : self.state_dim]
        for layer in self.trunk:
            h = F.relu(layer(h, w))
        return h, w

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action mean, log-std broadcast to the batch, normalised value (B,)); one trunk pass for both."""
        h, w = self.features(obs, task)
        mu = self.actor_head(h, w)
        return mu, self.log_std.expand_as(mu), self.critic_head(h, w).squeeze(-1)

    def value(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        h, w = self.features(obs, task)
        return self.critic_head(h, w).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        return [*self.trunk.parameters(), *self.task_encoder.parameters(), *self.actor_head.parameters(), self.log_std]

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic_head.parameters())

    @staticmethod
    def loss_mask(task_losses: torch.Tensor, threshold: float) -> torch.Tensor:
        """Loss maskout (Algorithm 1, step 1): 1.0 for tasks whose loss is ≤ threshold, 0.0 for tasks above it
        or with a NaN/inf loss. Apply it with torch.where(mask.bool(), task_losses, 0), not by multiplying:
        0 · NaN is NaN. Returned as a tensor so the learner never waits on the device to branch."""
        return (torch.isfinite(task_losses) & (task_losses <= threshold)).to(task_losses.dtype)

    @torch.no_grad()
    def w_reset(self, failing: torch.Tensor, generator: torch.Generator) -> None:
        """w-reset (Algorithm 1, step 2; Eq. 3): each failing task η gets w_η = Σ_{j healthy} β_j w_j, with its
        own β drawn uniformly from the simplex over the healthy tasks (normalised Exp(1) draws = Dirichlet(1)).

        The parameter is the logit row, so log(w_η) is stored and softmax gives w_η back. Healthy rows are
        copied through torch.where untouched; with no healthy task nothing changes. No host-device sync.
        `reset_tasks` also clears the optimiser's moments of a reset row."""
        logits = self.task_encoder.weight
        failing = failing.to(device=logits.device, dtype=torch.bool)
        healthy = ~failing
        n = self.n_tasks
        draws = torch.empty(n, n, device=generator.device, dtype=logits.dtype).exponential_(generator=generator)
        draws = draws.to(logits.device) * healthy  # row η: weights over source tasks j, zero for failing j
        beta = draws / draws.sum(-1, keepdim=True).clamp_min(torch.finfo(logits.dtype).tiny)
        new_logits = torch.log((beta @ self.compositional_vectors()).clamp_min(1e-12))
        reset = failing.unsqueeze(-1) & healthy.any()
        logits.copy_(torch.where(reset, new_logits, logits))

    # -- the learner's stabilisation hooks (see `mtbench.nets.stabilizer`) --------------------------
    def keep_tasks(self, task_losses: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Loss mask-out as a (n_tasks,) bool: False for tasks whose total loss exceeds `loss_threshold` or is
        not finite. Tasks absent from the minibatch (count 0) are kept."""
        return self.loss_mask(task_losses, self.loss_threshold).bool() | (counts == 0)

    @torch.no_grad()
    def reset_tasks(self, failing: torch.Tensor, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        """w-reset of the failing tasks, plus a fresh start of the optimiser's moments for the reset rows, so the
        re-initialised vector is not pushed on by the momentum that made its loss explode."""
        self.w_reset(failing, generator)
        state = optimizer.state.get(self.task_encoder.weight, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key].masked_fill_(failing[:, None], 0.0)


class PaCoNet(nn.Module):
    """One PaCo network with its own compositional vectors: `num_layers` CompositionalLinear layers (width D,
    ReLU) over the input without its one-hot, then a compositional head; the task enters only through w, as in
    PaCoActorCritic, whose w-reset it borrows (with `compositional_vectors`, it reads only `task_encoder`
    and `n_tasks`)."""

    compositional_vectors = PaCoActorCritic.compositional_vectors
    w_reset = PaCoActorCritic.w_reset

    def __init__(self, in_dim: int, out_dim: int, n_tasks: int, K: int, D: int, num_layers: int):
        super().__init__()
        self.n_tasks, self.K = n_tasks, K
        self.state_dim = in_dim - n_tasks
        self.task_encoder = nn.Embedding(n_tasks, K)
        nn.init.orthogonal_(self.task_encoder.weight)
        dims = [self.state_dim] + [D] * num_layers
        self.trunk = nn.ModuleList(CompositionalLinear(a, b, K, gain=math.sqrt(2.0)) for a, b in zip(dims, dims[1:]))
        self.head = CompositionalLinear(D, out_dim, K, gain=1.0)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        w = task_vectors(self.task_encoder, task)
        h = x[:, : self.state_dim]
        for layer in self.trunk:
            h = F.relu(layer(h, w))
        return self.head(h, w)


class PaCoHooks:
    """PaCo's loss mask-out and w-reset for a network built of PaCoNets (a SAC actor or critic, a GRPO policy, a
    PQN Q-function), with the learner's hooks of PaCoActorCritic
    (`loss_threshold`, `loss_mask`, `w_reset`, and `keep_tasks` / `reset_tasks`, see `mtbench.nets.stabilizer`).
    Every PaCo net inside (the actor's one, each Q's own) has its own w; a reset resets them all, each with its
    own draws, and clears the optimiser's moments of every reset row."""

    loss_threshold: float | None
    loss_mask = staticmethod(PaCoActorCritic.loss_mask)

    def paco_nets(self) -> list[PaCoNet]:
        raise NotImplementedError

    def task_logits(self) -> list[nn.Parameter]:
        """The logit tables (n_tasks, K), one per PaCo net."""
        return [net.task_encoder.weight for net in self.paco_nets()]

    def keep_tasks(self, task_losses: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """(n_tasks,) bool: False for tasks whose loss exceeds `loss_threshold` or is not finite; absent tasks
        (count 0) are kept."""
        return self.loss_mask(task_losses, self.loss_threshold).bool() | (counts == 0)

    @torch.no_grad()
    def w_reset(self, failing: torch.Tensor, generator: torch.Generator) -> None:
        for net in self.paco_nets():
            net.w_reset(failing, generator)

    @torch.no_grad()
    def reset_tasks(self, failing: torch.Tensor, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        self.w_reset(failing, generator)
        for logits in self.task_logits():
            state = optimizer.state.get(logits, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key].masked_fill_(failing.to(logits.device)[:, None], 0.0)
