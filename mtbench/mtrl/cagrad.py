"""CAGrad (Liu et al., 2021), conflict-averse gradient descent, as MTBench applies it (c = 0.4).

The task weights solve  min_{w in simplex} F(w) = w^T GG b + c ||g0|| sqrt(w^T GG w)  with GG = G G^T, b uniform
and g0 = G^T b. F is convex (a linear term plus a norm), so at any w the Frank-Wolfe gap
∇F(w)·w - min_j ∇F(w)_j bounds F(w) - min F from above: the solver (accelerated projected gradient, each step
trying a geometric ladder of step sizes and keeping the best) stops as soon as that bound is below `tol`, in
units of the tasks' mean squared gradient norm, or after `max_iterations`. The problem is n × n, so it is solved
on the host in float64 (one device-to-host copy of the Gram matrix per update, as upstream's scipy SLSQP): a
data-dependent stop needs the values there anyway, and a few hundred tiny steps are cheaper there than as
device kernels.

The update is g = (g0 + c ||g0|| / ||G^T w|| G^T w) / (1 + c^2), times n_tasks as upstream ("to match the sum
loss"): a weighted sum Σ_t β_t g_t whose β needs only the Gram matrix.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

LADDER = 24  # step sizes tried per iteration: 2^0 .. 2^-23 of the base step
TOLERANCE = 1e-6  # Frank-Wolfe gap, F in units of the mean squared task-gradient norm
MAX_ITERATIONS = 2000


class CAGradSolution(NamedTuple):
    weights: np.ndarray  # w on the simplex, (n,) float64
    iterations: int
    gap: float  # the Frank-Wolfe gap at w: F(w) - min F <= gap (units above)


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of v (..., n) onto the probability simplex (sort-based, batched)."""
    n = v.shape[-1]
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - 1.0
    k = np.arange(1, n + 1, dtype=v.dtype)
    rho = np.where((u - css / k) > 0, k, 0).max(axis=-1, keepdims=True)  # largest k that holds (k=1 always does)
    theta = np.take_along_axis(css, rho.astype(np.int64) - 1, axis=-1) / rho
    return np.maximum(v - theta, 0.0)


def solve_cagrad(
    GG: torch.Tensor | np.ndarray, c: float = 0.4, tol: float = TOLERANCE, max_iterations: int = MAX_ITERATIONS
) -> CAGradSolution:
    """Simplex weights minimising the CAGrad dual for the Gram matrix GG (n, n), to within `tol`. Plain numpy:
    torch's per-call overhead and thread hand-offs cost far more than the arithmetic at this size."""
    A = GG.detach().to("cpu", torch.float64).numpy() if isinstance(GG, torch.Tensor) else np.asarray(GG, np.float64)
    n = A.shape[0]
    b = np.full(n, 1.0 / n)
    scale = float(np.mean(np.diag(A)))
    if not scale > 0:  # every task gradient is zero: any weights do
        return CAGradSolution(b, 0, 0.0)
    A = A / scale  # the minimiser is invariant to scaling GG; F is now in units of the mean squared norm
    a = A @ b
    k = c * np.sqrt(max(float(b @ a), 0.0))

    def objective(W: np.ndarray) -> np.ndarray:  # (m, n) -> (m,)
        return W @ a + k * np.sqrt(np.maximum(((W @ A) * W).sum(-1), 1e-30))

    def gradient(w: np.ndarray) -> np.ndarray:
        return a + k * (A @ w) / np.sqrt(max(float(w @ A @ w), 1e-30))

    def fw_gap(w: np.ndarray) -> float:
        g = gradient(w)
        return float(g @ w - g.min())

    steps = (2.0 ** -np.arange(LADDER)) / n  # base step 1 / trace(A), a bound on the smooth part's curvature
    w, y, t = b.copy(), b.copy(), 1.0
    gap, iterations = fw_gap(w), 0
    while gap > tol and iterations < max_iterations:
        iterations += 1
        # accelerated (FISTA) step from the extrapolated point y, best of the ladder, never worse than w
        candidates = np.concatenate((project_simplex(y[None, :] - steps[:, None] * gradient(y)[None, :]), w[None, :]))
        w_prev, w = w, candidates[int(np.argmin(objective(candidates)))]
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        y = w + ((t - 1.0) / t_next) * (w - w_prev)
        t = t_next
        gap = fw_gap(w)
    return CAGradSolution(w, iterations, gap)


def cagrad_weights(GG: torch.Tensor, c: float = 0.4, tol: float = TOLERANCE) -> torch.Tensor:
    """The simplex weights w (n,) alone, in GG's dtype and device."""
    return torch.from_numpy(solve_cagrad(GG, c, tol).weights).to(device=GG.device, dtype=GG.dtype)


def cagrad_coefficients(
    GG: torch.Tensor | np.ndarray, w: np.ndarray, c: float = 0.4, rescale_to_sum: bool = True
) -> torch.Tensor:
    """β (n,) float64 on the host with CAGrad's update = Σ_t β_t g_t, for the Gram matrix GG and the solved weights
    w: g0 = mean_t g_t, ||g0|| = sqrt(mean GG), ||G^T w|| = sqrt(w^T GG w)."""
    A = GG.detach().to("cpu", torch.float64).numpy() if isinstance(GG, torch.Tensor) else np.asarray(GG, np.float64)
    n = A.shape[0]
    g0_norm = np.sqrt(max(float(A.mean()), 0.0))
    gw_norm = max(np.sqrt(max(float(w @ A @ w), 0.0)), 1e-12)
    beta = (np.full(n, 1.0 / n) + c * g0_norm / gw_norm * w) / (1.0 + c**2)
    return torch.from_numpy(beta * n if rescale_to_sum else beta)


def cagrad(G: torch.Tensor, c: float = 0.4, rescale_to_sum: bool = True) -> torch.Tensor:
    """Combine per-task gradients G (n, P) into one (P,)."""
    GG = G.to(torch.float64) @ G.to(torch.float64).T
    beta = cagrad_coefficients(GG, solve_cagrad(GG, c).weights, c, rescale_to_sum)
    return beta.to(device=G.device, dtype=G.dtype) @ G
