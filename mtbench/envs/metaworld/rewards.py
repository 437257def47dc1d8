"""Meta-World's v2 reward vocabulary, batched in torch.

These are the dm_control-style `tolerance` shaping, the Hamacher t-norm and the Sawyer gripper caging
reward that every v2 task composes. They are written once here; task modules only compose them.
Margins may be per-env tensors (Meta-World derives many of them from the episode's initial state).
"""

from __future__ import annotations

import math

import torch

_VALUE_AT_MARGIN = 0.1


def _sigmoid(d: torch.Tensor, value_at_1: float, kind: str) -> torch.Tensor:
    if kind == "gaussian":
        scale = math.sqrt(-2.0 * math.log(value_at_1))
        return torch.exp(-0.5 * (d * scale) ** 2)
    if kind == "long_tail":
        scale = math.sqrt(1.0 / value_at_1 - 1.0)
        return 1.0 / ((d * scale) ** 2 + 1.0)
    if kind == "reciprocal":
        scale = 1.0 / value_at_1 - 1.0
        return 1.0 / (d.abs() * scale + 1.0)
    if kind == "hyperbolic":
        scale = math.acosh(1.0 / value_at_1)
        return 1.0 / torch.cosh(d * scale)
    if kind == "tanh_squared":
        scale = math.atanh(math.sqrt(1.0 - value_at_1))
        return 1.0 - torch.tanh(d * scale) ** 2
    if kind == "linear":
        s = d * (1.0 - value_at_1)
        return torch.where(s.abs() < 1.0, 1.0 - s, torch.zeros_like(s))
    if kind == "quadratic":
        s = d * math.sqrt(1.0 - value_at_1)
        return torch.where(s.abs() < 1.0, 1.0 - s**2, torch.zeros_like(s))
    if kind == "cosine":
        s = d * math.acos(2.0 * value_at_1 - 1.0) / math.pi
        return torch.where(s.abs() < 1.0, (1.0 + torch.cos(math.pi * s)) / 2.0, torch.zeros_like(s))
    raise ValueError(f"unknown sigmoid {kind!r}")


def tolerance(
    x: torch.Tensor,
    lower: float | torch.Tensor = 0.0,
    upper: float | torch.Tensor = 0.0,
    margin: float | torch.Tensor = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = _VALUE_AT_MARGIN,
) -> torch.Tensor:
    """1 inside [lower, upper], decaying with distance / margin outside; a zero margin gives a step.
    A Python-number margin takes a shorter path (fewer tensor ops on the env's hot path), same values."""
    in_bounds = (x >= lower) & (x <= upper)
    if not isinstance(margin, torch.Tensor) and margin == 0:
        return in_bounds.to(x.dtype)
    d = torch.where(x < lower, lower - x, x - upper)
    if isinstance(margin, torch.Tensor):
        zero = margin == 0
        outside = torch.where(zero, 0.0, _sigmoid(d / torch.where(zero, 1.0, margin), value_at_margin, sigmoid))
    else:
        outside = _sigmoid(d / margin, value_at_margin, sigmoid)
    return torch.where(in_bounds, 1.0, outside)


def hamacher_product(a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """The Hamacher t-norm a*b / (a + b - a*b), 0 where both are 0."""
    ab = a * b
    den = a + b - ab
    pos = den > 0
    return torch.where(pos, ab / torch.where(pos, den, 1.0), 0.0)


def gripper_caging(
    action: torch.Tensor,
    obj_pos: torch.Tensor,
    obj_init_pos: torch.Tensor,
    init_tcp: torch.Tensor,
    tcp: torch.Tensor,
    left_pad: torch.Tensor,
    right_pad: torch.Tensor,
    obj_radius: float,
    pad_success_thresh: float,
    object_reach_radius: float,
    xz_thresh: float,
    desired_gripper_effort: float = 1.0,
    high_density: bool = False,
    medium_density: bool = False,
) -> torch.Tensor:
    """Meta-World's `_gripper_caging_reward`: the pads straddle the object in y, the fingertips meet
    it in xz, and the gripper closes once caged. Shapes: vectors (n, 3), action (n, 4)."""
    if high_density and medium_density:
        raise ValueError("caging density is either high or medium, not both")
    pad_y = torch.stack((left_pad[:, 1], right_pad[:, 1]), dim=1)
    pad_to_obj = (pad_y - obj_pos[:, 1:2]).abs()
    pad_to_obj_init = (pad_y - obj_init_pos[:, 1:2]).abs()
    lr_margin = (pad_to_obj_init - pad_success_thresh).abs()
    caging_lr = tolerance(pad_to_obj, obj_radius, pad_success_thresh, lr_margin, "long_tail")
    caging_y = hamacher_product(caging_lr[:, 0], caging_lr[:, 1])

    xz = [0, 2]
    xz_margin = torch.linalg.vector_norm(obj_init_pos[:, xz] - init_tcp[:, xz], dim=-1) - xz_thresh
    caging_xz = tolerance(
        torch.linalg.vector_norm(tcp[:, xz] - obj_pos[:, xz], dim=-1), 0.0, xz_thresh, xz_margin, "long_tail"
    )
    gripper_closed = action[:, 3].clamp(min=0.0).clamp(max=desired_gripper_effort) / desired_gripper_effort
    caging = hamacher_product(caging_y, caging_xz)
    gripping = torch.where(caging > 0.97, gripper_closed, torch.zeros_like(gripper_closed))
    caging_and_gripping = hamacher_product(caging, gripping)
    if high_density:
        caging_and_gripping = (caging_and_gripping + caging) / 2
    if medium_density:
        tcp_to_obj = torch.linalg.vector_norm(obj_pos - tcp, dim=-1)
        tcp_to_obj_init = torch.linalg.vector_norm(obj_init_pos - init_tcp, dim=-1)
        reach_margin = (tcp_to_obj_init - object_reach_radius).abs()
        reach = tolerance(tcp_to_obj, 0.0, object_reach_radius, reach_margin, "long_tail")
        caging_and_gripping = (caging_and_gripping + reach) / 2
    return caging_and_gripping


def _scipy_branch_matrix() -> torch.Tensor:
    """(10, 16) linear map from [m00..m22, 1] to scipy's four candidate (x, y, z, w) quaternions: every
    branch of `Rotation.from_matrix` is linear in the matrix entries, so all four come from one matmul."""
    w = torch.zeros(4, 4, 10, dtype=torch.float64)
    one, trace = 9, (0, 4, 8)

    def e(r: int, c: int) -> int:
        return 3 * r + c

    for i in range(3):  # branch i: component i is the large one
        j, k = (i + 1) % 3, (i + 2) % 3
        w[i, i, one] = 1.0
        for t in trace:
            w[i, i, t] -= 1.0
        w[i, i, e(i, i)] += 2.0
        w[i, j, e(j, i)] += 1.0
        w[i, j, e(i, j)] += 1.0
        w[i, k, e(k, i)] += 1.0
        w[i, k, e(i, k)] += 1.0
        w[i, 3, e(k, j)] += 1.0
        w[i, 3, e(j, k)] -= 1.0
    w[3, 0, e(2, 1)], w[3, 0, e(1, 2)] = 1.0, -1.0
    w[3, 1, e(0, 2)], w[3, 1, e(2, 0)] = 1.0, -1.0
    w[3, 2, e(1, 0)], w[3, 2, e(0, 1)] = 1.0, -1.0
    w[3, 3, one] = 1.0
    for t in trace:
        w[3, 3, t] += 1.0
    return w.reshape(16, 10).T.contiguous()


def _sparse(w: torch.Tensor, width: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The (10, 16) map as (16, width) entry indices and coefficients: gathers and sums, no BLAS call
    (a tiny float64 matmul costs milliseconds on a multi-threaded CPU build)."""
    idx = torch.zeros(16, width, dtype=torch.long)
    coef = torch.zeros(16, width, dtype=torch.float64)
    for col in range(16):
        nz = w[:, col].nonzero().squeeze(1)
        idx[col, : len(nz)], coef[col, : len(nz)] = nz, w[nz, col]
    return idx, coef


_IDX, _COEF = _sparse(_scipy_branch_matrix())


def rotmat_to_quat_xyzw(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) to (x, y, z, w) quaternions with the branch and sign convention of
    `scipy.spatial.transform.Rotation.from_matrix(...).as_quat()`, which Meta-World's observation uses:
    the largest of (m00, m11, m22, trace) picks the formula, and that component comes out positive."""
    flat = m.reshape(*m.shape[:-2], 9)
    trace = flat[..., 0] + flat[..., 4] + flat[..., 8]
    choice = torch.stack((flat[..., 0], flat[..., 4], flat[..., 8], trace), -1).argmax(dim=-1)
    aug = torch.cat((flat, torch.ones_like(flat[..., :1])), dim=-1)
    coef = _COEF.to(dtype=m.dtype, device=m.device)
    cands = (aug[..., _IDX.to(m.device)] * coef).sum(-1).reshape(*m.shape[:-2], 4, 4)
    q = torch.gather(cands, -2, choice[..., None, None].expand(*choice.shape, 1, 4)).squeeze(-2)
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


def wxyz_to_xyzw(q: torch.Tensor) -> torch.Tensor:
    return torch.cat((q[..., 1:], q[..., :1]), dim=-1)


def rect_prism_tolerance(curr: torch.Tensor, zero: torch.Tensor, one: torch.Tensor) -> torch.Tensor:
    """Meta-World's box shaping: inside the box spanned by corners `zero` and `one` the product of the
    per-axis fractions from `zero` towards `one`, and 1 outside it (sic). Points (n, 3) -> (n,)."""
    inside = ((torch.minimum(zero, one) <= curr) & (curr <= torch.maximum(zero, one))).all(dim=-1)
    diff = one - zero
    frac = (curr - zero) / torch.where(diff == 0, torch.ones_like(diff), diff)
    return torch.where(inside, frac.prod(dim=-1), torch.ones_like(frac[..., 0]))


def quat_wxyz_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Unit (w, x, y, z) quaternions (..., 4) to rotation matrices (..., 3, 3), term for term as MuJoCo's
    `mju_quat2Mat` forms a frame's xmat from its xquat."""
    w, x, y, z = q.unbind(-1)
    rows = (
        (w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z),
    )
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)
