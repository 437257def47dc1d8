"""The device the MuJoCo Warp side of the engine-agreement tests and the env-contract tests runs on.

Warp's CPU device by default, so the suite needs no GPU. `MTBENCH_TEST_DEVICE=cuda:0` runs the same tests with the
Warp engine (and the contract tests' envs) on CUDA: that is how `mtbench bench gpu` proves the CUDA path with the
tests the CPU suite already trusts. The C engine always stays on the CPU; results are compared there."""

from __future__ import annotations

import os

import torch

DEVICE = torch.device(os.environ.get("MTBENCH_TEST_DEVICE", "cpu"))
"""Where Warp-engine blocks and the contract tests' envs live."""
ON_CUDA = DEVICE.type == "cuda"
DEFAULT_BACKEND = "warp" if ON_CUDA else "cpu"
"""The engine `backend="auto"` picks on DEVICE."""


def host(x: torch.Tensor) -> torch.Tensor:
    """A tensor on the CPU, for comparing with the C engine or with numpy."""
    return x.detach().cpu()


def start_like(env, ref) -> torch.Tensor:
    """Give `env` (on DEVICE) the reset state of `ref` (an env of the same tasks and seed on the C engine, or its
    `state_dict()`) when `env` is on CUDA, and return `env`'s observation. A CUDA generator draws other numbers than
    the CPU's for the same seed, so goals, object placements and spawns would differ and the engines would not be
    compared; the state goes over as a checkpoint does, `env` keeping its own generator. On the CPU the draws are
    equal already and nothing is done. Call after both `reset()`s."""
    if env.device.type == "cpu":
        return env.obs
    state = dict(ref if isinstance(ref, dict) else ref.state_dict())
    state["gen"] = env.gen.get_state()
    env.load_state_dict(state)
    return env.obs
