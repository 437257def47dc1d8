"""CARE (Sodhani et al., 2021; MTBench `care_a2c`): a mixture of observation encoders whose experts are
weighted by attention from a context vector built on a frozen language embedding of each task's name or
description, so related tasks share encoders. Separate actor and critic, one shared log-std."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from mtbench.nets.actor_critic import SeparateActorCritic
from mtbench.nets.experts import ExpertMLP
from mtbench.nets.mlp import mlp
from mtbench.nets.moore import xavier_init
from mtbench.nets.multihead import TaskHeads
from mtbench.validation import PosFloat, PosInt

DEFAULT_METADATA = Path(__file__).parent / "metadata" / "metaworld_minilm.json"


def _base_name(name: str) -> str:
    return re.sub(r"-v\d+$", "", name)


def load_task_embeddings(path: str | Path, task_names: list[str]) -> torch.Tensor:
    """One vector per task, in `task_names` order: (n_tasks, d). Keys may carry a version suffix or not
    ("reach-v3" and "reach" both match task "reach-v3"); an exact key wins."""
    path = Path(path)
    with open(path) as f:
        metadata: dict[str, list[float]] = json.load(f)
    by_base = {_base_name(k): v for k, v in metadata.items()}
    vectors = {name: metadata.get(name, by_base.get(_base_name(name))) for name in task_names}
    missing = [name for name, v in vectors.items() if v is None]
    if missing:
        raise ValueError(f"task embedding file {path} has no vector for task(s): {', '.join(missing)}")
    lengths = {name: len(v) for name, v in vectors.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"task embedding file {path} has vectors of differing lengths: {lengths}")
    return torch.tensor([vectors[name] for name in task_names], dtype=torch.float32)


class CAREBody(nn.Module):
    """One CARE actor or critic.

    The expert encoders end with a linear layer (ReLU only between layers), as upstream's MoE FeedForward
    does, so the encodings that are scored and mixed are signed; the attention MLP after the mixture adds
    the non-linearity.

    The task embedding is a buffer, not a frozen parameter: it is saved in the state dict and follows
    `.to(device)`, yet never reaches `parameters()`, so optimisers, gradient clipping and parameter counts
    see only what trains."""

    def __init__(
        self,
        obs_dim: int,
        out_dim: int,
        n_tasks: int,
        embedding: torch.Tensor,
        units: tuple[int, ...],
        n_experts: int,
        encoder_units: tuple[int, ...],
        temperature: float,
        attention_units: tuple[int, ...],
        context_units: tuple[int, ...],
        multihead: bool,
    ):
        super().__init__()
        self.true_obs_dim = obs_dim - n_tasks
        self.temperature = temperature
        d = embedding.shape[1]
        self.register_buffer("task_embedding", embedding.clone())
        self.context_encoder = nn.Sequential(
            nn.ReLU(),  # upstream applies ReLU to the raw pretrained vector too
            nn.Linear(d, 2 * d),
            nn.ReLU(),
            nn.Linear(2 * d, d),
            nn.ReLU(),
            mlp(d, list(context_units), None, "relu"),
        )
        self.encoders = ExpertMLP(
            n_experts, self.true_obs_dim, list(encoder_units), "relu", out_activation=False, bias_init="uniform"
        )
        self.attention_mlp = mlp(encoder_units[-1], list(attention_units), None, "relu")
        self.trunk = mlp(attention_units[-1] + context_units[-1], list(units), None, "relu")
        self.multihead = multihead
        self.head = TaskHeads(n_tasks, units[-1], out_dim) if multihead else nn.Linear(units[-1], out_dim)
        xavier_init(self)

    def context(self, task: torch.Tensor) -> torch.Tensor:
        """z_ctx (B, context_units[-1])."""
        return self.context_encoder(self.task_embedding[task])

    def attend(self, obs: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z_ctx (B, C), expert encodings (E, B, C), attention weights (B, E))."""
        z_ctx = self.context(task)
        experts = self.encoders(obs[:, : self.true_obs_dim])
        # detached: the context is trained by the policy/value loss through the trunk, not to steer attention
        scores = torch.einsum("bc,ebc->be", z_ctx.detach(), experts)
        return z_ctx, experts, torch.softmax(scores / self.temperature, dim=-1)

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        z_ctx, experts, alpha = self.attend(obs, task)
        z_enc = self.attention_mlp(torch.einsum("be,ebc->bc", alpha, experts))
        h = self.trunk(torch.cat([z_enc, z_ctx], dim=-1))
        return self.head(h, task) if self.multihead else self.head(h)


class CAREActorCritic(SeparateActorCritic):
    """Actor and critic are separate CARE networks (upstream `separate: True`), each with its own context
    encoder over the same frozen task embeddings."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_tasks: int,
        *,
        task_names: list[str],
        metadata: str | None = None,
        units: tuple[PosInt, ...] = (400, 400, 400),
        n_experts: PosInt = 6,
        encoder_units: tuple[PosInt, ...] = (50, 50),
        temperature: PosFloat = 1.0,
        attention_units: tuple[PosInt, ...] = (50, 50),
        context_units: tuple[PosInt, ...] = (50, 50),
        init_log_std: float = 0.0,
        multihead: bool = False,
    ):
        super().__init__()
        if len(task_names) != n_tasks:
            raise ValueError(f"got {len(task_names)} task names for {n_tasks} tasks")
        if context_units[-1] != encoder_units[-1]:
            raise ValueError(
                f"attention compares the context ({context_units[-1]}) with the encoders ({encoder_units[-1]}); "
                "their last sizes must match"
            )
        self.n_tasks = n_tasks
        embedding = load_task_embeddings(DEFAULT_METADATA if metadata is None else metadata, list(task_names))
        body = dict(
            obs_dim=obs_dim,
            n_tasks=n_tasks,
            embedding=embedding,
            units=tuple(units),
            n_experts=n_experts,
            encoder_units=tuple(encoder_units),
            temperature=float(temperature),
            attention_units=tuple(attention_units),
            context_units=tuple(context_units),
            multihead=multihead,
        )
        self.actor = CAREBody(out_dim=action_dim, **body)
        self.critic = CAREBody(out_dim=1, **body)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def attention_weights(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The actor's attention over its encoders (B, E), for diagnostics and tests."""
        return self.actor.attend(obs, task)[2]
