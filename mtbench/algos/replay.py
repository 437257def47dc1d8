"""Off-policy storage on the learner's device: an n-step window per env and a ring replay buffer of
preallocated tensors. Nothing here leaves the device or waits for it; the fill level is a host-side count.

An n-step transition (s_t, a_t, R, s', d) has R = Σ_{k<m} γ^k r_{t+k} over the m ≤ n steps that stay in
s_t's episode, s' the observation after step t+m-1 of that episode (the final observation when the episode
ended there) and d = γ^m, or 0 when the episode truly terminated at that step: a time-out still bootstraps
from its final observation with the discount of the steps actually taken.
"""

from __future__ import annotations

import torch


class NStepWindow:
    """The last n vector steps of every env; once full, each step emits the n-step transition of the step
    that leaves the window (so every transition reaches the buffer n-1 steps after it happened)."""

    def __init__(self, n: int, num_envs: int, obs_dim: int, action_dim: int, gamma: float, device: torch.device):
        if n < 1:
            raise ValueError(f"nstep must be >= 1, got {n}")
        self.n, self.gamma, self.count = n, gamma, 0
        z = lambda *s, dtype=torch.float32: torch.zeros(*s, dtype=dtype, device=device)
        self.obs, self.after = z(n, num_envs, obs_dim), z(n, num_envs, obs_dim)
        self.action, self.reward = z(n, num_envs, action_dim), z(n, num_envs)
        self.ended = z(n, num_envs, dtype=torch.bool)
        self.terminated = z(n, num_envs, dtype=torch.bool)
        self.powers = gamma ** torch.arange(n + 1, dtype=torch.float32, device=device)  # γ^0 .. γ^n
        self.envs = torch.arange(num_envs, device=device)

    def push(self, obs, action, reward, after, terminated, truncated) -> dict[str, torch.Tensor] | None:
        """Add one vector step: the observation acted on, the action, the reward, the observation after the step
        within the same episode (`info["final_obs"]`), and how the episode ended. Returns the n-step transitions
        of the oldest step once the window is full."""
        i = self.count % self.n
        self.obs[i], self.action[i], self.reward[i], self.after[i] = obs, action, reward, after
        self.terminated[i] = terminated
        self.ended[i] = terminated | truncated
        self.count += 1
        if self.count < self.n:
            return None
        order = (torch.arange(self.n, device=self.obs.device) + self.count) % self.n  # oldest first
        ended = self.ended[order]
        # alive[k]: step k of the window is still in the oldest step's episode (no end strictly before it)
        alive = torch.ones_like(ended)
        alive[1:] = torch.cumsum(ended[:-1].int(), 0) == 0
        alive = alive.float()
        reward = (self.powers[: self.n, None] * alive * self.reward[order]).sum(0)
        m = alive.sum(0).long()  # steps taken, 1..n
        last = order[m - 1]
        term = self.terminated[last, self.envs]
        discount = torch.where(term, 0.0, self.powers[m])
        first = order[0]
        return {
            "obs": self.obs[first].clone(), "action": self.action[first].clone(), "reward": reward,
            "next_obs": self.after[last, self.envs], "discount": discount,
        }  # fmt: skip

    def state_dict(self) -> dict:
        keys = ("obs", "after", "action", "reward", "ended", "terminated")
        return {"count": self.count, **{k: getattr(self, k).clone() for k in keys}}

    def load_state_dict(self, state: dict) -> None:
        self.count = state["count"]
        for k, v in state.items():
            if k != "count":
                getattr(self, k).copy_(v)


class ReplayBuffer:
    """A ring of `capacity` n-step transitions; the oldest are overwritten once it is full."""

    FIELDS = ("obs", "action", "reward", "next_obs", "discount", "task")

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device):
        if capacity < 1:
            raise ValueError(f"replay_buffer_size must be >= 1, got {capacity}")
        self.capacity, self.pos, self.size = capacity, 0, 0
        z = lambda *s, dtype=torch.float32: torch.zeros(*s, dtype=dtype, device=device)
        self.obs, self.next_obs = z(capacity, obs_dim), z(capacity, obs_dim)
        self.action, self.reward, self.discount = z(capacity, action_dim), z(capacity), z(capacity)
        self.task = z(capacity, dtype=torch.long)

    def add(self, batch: dict[str, torch.Tensor]) -> None:
        n = batch["obs"].shape[0]
        if n > self.capacity:
            raise ValueError(f"{n} transitions per step exceed replay_buffer_size={self.capacity}; raise it")
        idx = (self.pos + torch.arange(n, device=self.obs.device)) % self.capacity
        for k in self.FIELDS:
            getattr(self, k).index_copy_(0, idx, batch[k])
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.obs.device)
        return {k: getattr(self, k)[idx] for k in self.FIELDS}

    def state_dict(self) -> dict:
        return {"pos": self.pos, "size": self.size, **{k: getattr(self, k)[: self.size].clone() for k in self.FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] > self.capacity:
            raise ValueError(f"the saved buffer holds {state['size']} transitions; raise replay_buffer_size")
        self.pos, self.size = state["pos"], state["size"]
        for k in self.FIELDS:
            getattr(self, k)[: self.size].copy_(state[k])


def replay_updates(algo, ready: bool, metrics: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """One iteration's learning of an off-policy learner (SAC, BRC): `gradient_steps_per_itr` gradient steps, each on
    a fresh batch of `batch_size` from `algo.buffer`, and their mean metrics. Until `ready` (the buffer holds a batch,
    the warm-up is over), NaN metrics and `algo.learned` False. The scheme forgets earlier losses first: the learner's
    normalisers (input statistics, return scales) moved since its last update, so they are no reference."""
    algo.learned = ready
    buffer = torch.tensor(float(algo.buffer.size))
    if not ready:
        nan = torch.tensor(float("nan"), device=algo.device)
        return {**{k: nan for k in metrics}, "buffer": buffer}
    algo.scheme.forget()
    steps = algo.cfg.gradient_steps_per_itr
    sums: dict[str, torch.Tensor] = {}
    for _ in range(steps):
        for k, v in algo.gradient_step(algo.buffer.sample(algo.cfg.batch_size, algo.gen)).items():
            sums[k] = sums.get(k, 0.0) + v
    algo.updates += steps
    return {**{k: sums[k] / steps for k in metrics}, "buffer": buffer, **algo.scheme.metrics()}
