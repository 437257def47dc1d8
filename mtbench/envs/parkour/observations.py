"""The parkour observation (reference §2.5): layout constants and pure, batched torch functions.

Layout of one env's observation (num_tasks = the number of selected terrain types; 233 for the 21 of the paper):

    [0:48)      proprio          PROPRIO
        [0:3)     base angular velocity, body frame, x 0.25          ANG_VEL
        [3:5)     roll, pitch (rad)                                  ROLL_PITCH
        5         yaw to the current goal minus yaw  (every 5 steps) DELTA_YAW
        6         yaw to the next goal minus yaw     (every 5 steps) DELTA_NEXT_YAW
        7         commanded forward speed (m/s, unscaled)            COMMAND
        [8:20)    joint position - default pose                      DOF_POS
        [20:32)   joint velocity x 0.05                              DOF_VEL
        [32:44)   last action (after the +-5/action_scale clip)     LAST_ACTION
        [44:48)   foot contact (|F| > 2 N now or last step) - 0.5    FOOT_CONTACT   (FL, FR, RL, RR)
    [48:180)    scandots, 12 x 11 (x-major: k = 11 i + j), clip(base_z - 0.3 - h, -1, 1); h every 5 steps   SCAN
    [180:183)   base linear velocity, body frame, x 2                PRIV_EXPLICIT
    [183:212)   privileged latent                                    PRIV_LATENT
        183       added base mass (kg)                               ADDED_MASS
        [184:187) base COM offset xyz (m)                            COM_OFFSET
        187       friction coefficient                               FRICTION
        [188:200) motor strength Kp factor - 1                       KP_FACTOR
        [200:212) motor strength Kd factor - 1                       KD_FACTOR
    [212:)      one-hot of the terrain type over the selected tasks (or all 21, env option onehot="terrains")
                                                                     ONEHOT_START

Everything is clipped to +-OBS_CLIP. Joint order: robot.JOINT_NAMES (FL, FR, RL, RR x hip, thigh, calf).

Quaternions are MuJoCo's (w, x, y, z).
"""

from __future__ import annotations

import numpy as np
import torch

N_PROPRIO = 48
N_SCAN = 132
N_PRIV_EXPLICIT = 3
N_PRIV_LATENT = 29
N_BASE = N_PROPRIO + N_SCAN + N_PRIV_EXPLICIT + N_PRIV_LATENT  # 212, then the one-hot

PROPRIO = slice(0, 48)
ANG_VEL = slice(0, 3)
ROLL_PITCH = slice(3, 5)
DELTA_YAW = 5
DELTA_NEXT_YAW = 6
COMMAND = 7
DOF_POS = slice(8, 20)
DOF_VEL = slice(20, 32)
LAST_ACTION = slice(32, 44)
FOOT_CONTACT = slice(44, 48)
SCAN = slice(48, 180)
PRIV_EXPLICIT = slice(180, 183)
PRIV_LATENT = slice(183, 212)
ADDED_MASS = 183
COM_OFFSET = slice(184, 187)
FRICTION = 187
KP_FACTOR = slice(188, 200)
KD_FACTOR = slice(200, 212)
ONEHOT_START = 212

ANG_VEL_SCALE = 0.25
DOF_VEL_SCALE = 0.05
LIN_VEL_SCALE = 2.0
OBS_CLIP = 100.0
SCAN_BASE_OFFSET = 0.3
"""The scandot value is base_z - SCAN_BASE_OFFSET - h, clipped to [-1, 1]."""
FOOT_CONTACT_FORCE = 2.0
"""Newtons: a foot is in contact when its net contact force norm exceeds this."""
REFRESH_EVERY = 5
"""Policy steps between refreshes of the scandot heights and the two yaw differences (10 Hz at 50 Hz)."""

SCAN_X = np.round(np.arange(12) * 0.15 - 0.45, 10)  # -0.45, -0.30, ..., 1.20
SCAN_Y = np.round(np.arange(11) * 0.15 - 0.75, 10)  # -0.75, ..., 0.75


def scan_offsets() -> np.ndarray:
    """(132, 2) scandot points in the yaw-aligned base frame, x-major (point 11 i + j is (SCAN_X[i], SCAN_Y[j]))."""
    gx, gy = np.meshgrid(SCAN_X, SCAN_Y, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def obs_layout(num_tasks: int) -> dict[str, slice]:
    """Named slices of the whole observation (for logging, networks with privileged encoders, tests)."""
    return {
        "proprio": PROPRIO,
        "scandots": SCAN,
        "priv_explicit": PRIV_EXPLICIT,
        "priv_latent": PRIV_LATENT,
        "onehot": slice(ONEHOT_START, ONEHOT_START + num_tasks),
    }


# ---------------------------------------------------------------------------------------------------------
# rotations


def quat_rpy(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Roll, pitch, yaw (rad, in [-pi, pi], pitch in [-pi/2, pi/2]) of (w, x, y, z) quaternions (..., 4): the
    x-y-z Euler angles Isaac Gym's get_euler_xyz returns, wrapped to [-pi, pi]."""
    w, x, y, z = q.unbind(-1)
    roll = torch.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = torch.asin(torch.clamp(2 * (w * y - z * x), -1.0, 1.0))
    yaw = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def heading(q: torch.Tensor) -> torch.Tensor:
    """Yaw of the quaternion with its x and y parts dropped (how upstream turns scan points with the base):
    2 atan2(z, w). Equal to quat_rpy's yaw when roll and pitch are 0."""
    return 2 * torch.atan2(q[..., 3], q[..., 0])


def rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """World vectors v (..., 3) expressed in the frame of (w, x, y, z) quaternions q (..., 4): R(q)^T v."""
    w, u = q[..., :1], q[..., 1:]
    t = 2 * torch.cross(u, v, dim=-1)
    return v - w * t + torch.cross(u, t, dim=-1)


# ---------------------------------------------------------------------------------------------------------
# scandots


def scan_points(base_xy: torch.Tensor, yaw: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """World xy (N, P, 2) of the scan points `offsets` (P, 2), turned by `yaw` (N,) about each base (N, 2)."""
    c, s = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    ox, oy = offsets[:, 0][None], offsets[:, 1][None]
    return torch.stack((base_xy[:, :1] + c * ox - s * oy, base_xy[:, 1:2] + s * ox + c * oy), dim=-1)


def scan_heights(
    heights: torch.Tensor, block: torch.Tensor, xy: torch.Tensor, x0: float, y0: float, scale: float
) -> torch.Tensor:
    """Terrain height under each scan point, all columns in one gather.

    heights: (B, nx, ny) stacked column grids (sample (a, b) of column k at world (x0 + a scale, y0 + b scale));
    block: (N,) long, the column of each env; xy: (N, P, 2) world points. As terrains.scan_height: with (i, j) the
    floor of the sample coordinates, clamped to the grid so that i + 1 and j + 1 exist, the minimum of the
    samples (i, j), (i + 1, j), (i, j + 1). Returns (N, P) in heights' dtype."""
    _, nx, ny = heights.shape
    flat = heights.reshape(-1)
    fx = ((xy[..., 0] - x0) / scale).clamp(0, nx - 1)
    fy = ((xy[..., 1] - y0) / scale).clamp(0, ny - 1)
    i = fx.floor().long().clamp(max=nx - 2)
    j = fy.floor().long().clamp(max=ny - 2)
    base = (block * (nx * ny))[:, None] + i * ny + j
    h = torch.minimum(flat[base], flat[base + ny])
    return torch.minimum(h, flat[base + 1])


def scandots(base_z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """clip(base_z - 0.3 - h, -1, 1): base_z (N,), h (N, P)."""
    return torch.clamp(base_z[:, None] - SCAN_BASE_OFFSET - h, -1.0, 1.0)


def goal_yaw(base_xy: torch.Tensor, goal_xy: torch.Tensor) -> torch.Tensor:
    """Heading (rad) from each base to its goal: atan2 of the xy difference."""
    d = goal_xy - base_xy
    return torch.atan2(d[..., 1], d[..., 0])
