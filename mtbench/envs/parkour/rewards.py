"""Parkour rules as pure functions of tensors: rewards (§2.7), waypoints (§2.4), curriculum (§2.4), terminations
(§2.8). The env calls these; tests call them directly on constructed states.
"""

from __future__ import annotations

import torch

POLICY_DT = 0.02
"""Seconds per policy step (sim dt 0.005 x decimation 4); upstream multiplies every reward scale by it."""
REWARD_SCALES = {"tracking_goal_vel": 4.0, "tracking_yaw": 1.0, "energy": -0.0005, "collision": -10.0}
"""Config scales (§2.7); the effective ones are these x POLICY_DT: 0.08, 0.02, -1e-5, -0.2."""
EFFECTIVE_SCALES = {k: v * POLICY_DT for k, v in REWARD_SCALES.items()}
COLLISION_FORCE = 0.1
"""Newtons: a thigh or calf with a net contact force norm above this counts as a collision."""

N_GOALS = 8
GOAL_PAD = 2
"""The goal list is padded with 2 copies of the last goal (so 'next goal' exists at the last one)."""
GOAL_THRESHOLD = 0.3
"""Metres (xy) from the current goal that count as being at it (`next_goal_threshold`)."""
GOAL_DELAY_STEPS = 1
"""`reach_goal_delay / dt` = 0.02 / 0.02: a goal is reached after more than this many steps at it, i.e. 2."""

MAX_ROLL = 2.5
MAX_PITCH = 1.5
MIN_BASE_Z = -0.25
"""Metres, absolute: a base below this fell into a pit."""

CURRICULUM_UP = 0.8
CURRICULUM_DOWN = 0.4
CURRICULUM_RANDOM_LOWER = 0.25


# ---------------------------------------------------------------------------------------------------------
# rewards


def goal_velocity(vel_xy: torch.Tensor, base_xy: torch.Tensor, goal_xy: torch.Tensor) -> torch.Tensor:
    """v . g_hat (m/s): world-frame base xy velocity along the unit vector to the current goal."""
    d = goal_xy - base_xy
    g = d / (torch.linalg.vector_norm(d, dim=-1, keepdim=True) + 1e-5)
    return (g * vel_xy).sum(-1)


def tracking_goal_vel(vel_xy: torch.Tensor, base_xy: torch.Tensor, goal_xy: torch.Tensor, cmd: torch.Tensor):
    """min(v . g_hat, v_cmd) / v_cmd, capped at the commanded speed. Commands are >= 0.3 m/s here, so upstream's
    v_cmd = 0 branch never applies."""
    return torch.minimum(goal_velocity(vel_xy, base_xy, goal_xy), cmd) / (cmd + 1e-5)


def tracking_yaw(target_yaw: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """exp(-|target_yaw - yaw|), without angle wrapping (as upstream)."""
    return torch.exp(-(target_yaw - yaw).abs())


def energy(tau: torch.Tensor, dof_vel: torch.Tensor) -> torch.Tensor:
    """Sum over joints of max(tau * qd, 0): positive mechanical power (W)."""
    return torch.clamp(tau * dof_vel, min=0.0).sum(-1)


def collision(force_norm: torch.Tensor) -> torch.Tensor:
    """Number of bodies (thighs, calves: force_norm (N, 8)) with a contact force norm above 0.1 N."""
    return (force_norm > COLLISION_FORCE).sum(-1).to(force_norm.dtype)


def total_reward(terms: dict[str, torch.Tensor], scales: dict[str, float] = EFFECTIVE_SCALES) -> torch.Tensor:
    """Sum of scale x term, clipped at >= 0 (`only_positive_rewards`); no termination penalty."""
    r = sum(scales[k] * terms[k] for k in scales)
    return torch.clamp(r, min=0.0)


# ---------------------------------------------------------------------------------------------------------
# waypoints


def pad_goals(goals: torch.Tensor, pad: int = GOAL_PAD) -> torch.Tensor:
    """(..., 8, 2) -> (..., 8 + pad, 2), the last goal repeated."""
    return torch.cat([goals, goals[..., -1:, :].expand(*goals.shape[:-2], pad, goals.shape[-1])], dim=-2)


def current_goals(goals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The current and next goal (N, 2) of each env from its padded goals (N, G, 2) and goal index (N,)."""
    last = goals.shape[1] - 1
    ar = torch.arange(goals.shape[0], device=goals.device)
    return goals[ar, idx.clamp(max=last)], goals[ar, (idx + 1).clamp(max=last)]


def advance_goals(
    dist: torch.Tensor,
    timer: torch.Tensor,
    idx: torch.Tensor,
    threshold: float = GOAL_THRESHOLD,
    delay_steps: int = GOAL_DELAY_STEPS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of waypoint following: `dist` (N,) xy distance to the current goal after this step, `timer` (N,)
    consecutive steps at it so far, `idx` (N,) goal index. An env within `threshold` adds a step to its timer, any
    other restarts at 0; more than `delay_steps` consecutive steps (2 here) reach the goal: the index advances and
    the timer restarts. Returns (idx, timer, reached)."""
    timer = torch.where(dist < threshold, timer + 1, torch.zeros_like(timer))
    reached = timer > delay_steps
    return idx + reached.to(idx.dtype), torch.where(reached, torch.zeros_like(timer), timer), reached


def progress(goals_reached: torch.Tensor, n_goals: int = N_GOALS) -> torch.Tensor:
    """The parkour success metric: goals reached / 8, in [0, 1]."""
    return goals_reached.clamp(max=n_goals).to(torch.float32) / n_goals


# ---------------------------------------------------------------------------------------------------------
# terminations and curriculum


def failed(roll: torch.Tensor, pitch: torch.Tensor, base_z: torch.Tensor) -> torch.Tensor:
    """|roll| > 2.5, |pitch| > 1.5 or base z < -0.25 m (absolute): the episode terminates."""
    return (roll.abs() > MAX_ROLL) | (pitch.abs() > MAX_PITCH) | (base_z < MIN_BASE_Z)


def timed_out(ep_length: torch.Tensor, episode_length: int, goal_idx: torch.Tensor, n_goals: int = N_GOALS):
    """The episode is truncated (no penalty): its length reached `episode_length`, or all 8 goals were reached."""
    return (ep_length >= episode_length) | (goal_idx >= n_goals)


def curriculum_update(
    level: torch.Tensor,
    goals_reached: torch.Tensor,
    n_rows: int,
    gen: torch.Generator | None = None,
    n_goals: int = N_GOALS,
) -> torch.Tensor:
    """The goal-based terrain curriculum, applied to the envs that reset (all rows of `level` here):

    * up a row if goals reached >= 0.8 x 8 (i.e. >= 7);
    * down a row if goals reached < 0.4 x 8 (i.e. <= 3);
    * otherwise, with probability 0.25, to a random row in [0, level) (stays at 0 from row 0);
    * an env that ends at or above the top (n_rows) goes to a random row in [0, n_rows);
    * clipped at >= 0.
    """
    up = goals_reached >= CURRICULUM_UP * n_goals
    down = goals_reached < CURRICULUM_DOWN * n_goals
    u = torch.rand(level.shape, generator=gen, device=level.device)
    lower = (torch.rand(level.shape, generator=gen, device=level.device) * level).floor().long()
    top = torch.randint(0, n_rows, level.shape, generator=gen, device=level.device)
    stay = ~up & ~down
    new = level + up.long() - down.long()
    new = torch.where(stay & (u < CURRICULUM_RANDOM_LOWER), lower, new)
    new = torch.where(new >= n_rows, top, new)
    return new.clamp(min=0)
