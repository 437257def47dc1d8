"""The shared reward vocabulary equals Meta-World's own numpy functions and scipy's quaternions."""

import numpy as np
import pytest
import torch
from metaworld.utils import reward_utils as mw
from scipy.spatial.transform import Rotation

from mtbench.envs.metaworld.rewards import hamacher_product, rotmat_to_quat_xyzw, tolerance

SIGMOIDS = ["gaussian", "hyperbolic", "long_tail", "reciprocal", "cosine", "linear", "quadratic", "tanh_squared"]


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
@pytest.mark.parametrize("bounds", [(0.0, 0.0), (0.0, 0.05), (0.015, 0.05)])
@pytest.mark.parametrize("margin", [0.0, 0.02, 0.3])
def test_tolerance_matches_metaworld(sigmoid, bounds, margin):
    x = np.random.default_rng(0).uniform(-0.5, 0.8, 500)
    ref = np.array([mw.tolerance(float(v), bounds=bounds, margin=margin, sigmoid=sigmoid) for v in x])
    ours = tolerance(torch.from_numpy(x), *bounds, margin, sigmoid).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)


def test_tolerance_per_env_margin():
    rng = np.random.default_rng(1)
    x, margin = rng.uniform(0, 1, 200), rng.uniform(0, 0.5, 200)
    margin[::7] = 0.0
    ref = np.array([mw.tolerance(a, bounds=(0.0, 0.05), margin=m, sigmoid="long_tail") for a, m in zip(x, margin)])
    ours = tolerance(torch.from_numpy(x), 0.0, 0.05, torch.from_numpy(margin), "long_tail").numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_hamacher_matches_metaworld():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1, 300), rng.uniform(0, 1, 300)
    a[:5] = 0.0
    b[:3] = 0.0
    ref = np.array([mw.hamacher_product(x, y) for x, y in zip(a, b)])
    np.testing.assert_allclose(hamacher_product(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ref, rtol=1e-12)


def test_quaternion_convention_matches_scipy():
    mats = Rotation.random(3000, random_state=3).as_matrix()
    flips = Rotation.from_euler("z", [[179.999], [180.0], [-90.0], [0.0]], degrees=True).as_matrix()
    mats = np.concatenate([mats, flips])
    ref = np.stack([Rotation.from_matrix(m).as_quat() for m in mats])
    np.testing.assert_allclose(rotmat_to_quat_xyzw(torch.from_numpy(mats)).numpy(), ref, atol=1e-12)
