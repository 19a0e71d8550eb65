"""Property tests (hypothesis): any image size, seed and preset gives a well-formed pair and record;
kernels and single ops keep their invariants over their whole parameter ranges."""
from __future__ import annotations

import json
import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pairforge.degradations import kernels, noise
from pairforge.degradations.chain import ChainDegradeConfig, preset_names
from pairforge.degradations.filtering import filter2d, usm_sharpen
from pairforge.degradations.resize import resize

_DEGRADERS = {name: ChainDegradeConfig.model_validate({"preset": name, "device": "cpu"}).build() for name in preset_names()}


def _finite(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite(v) for v in obj)
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    preset=st.sampled_from(sorted(_DEGRADERS)),
    h=st.integers(8, 80),
    w=st.integers(8, 80),
    seed=st.integers(0, 2**63 - 1),
    pixel_seed=st.integers(0, 1000),
)
def test_any_image_gives_a_well_formed_pair(preset, h, w, seed, pixel_seed):
    img = np.random.default_rng(pixel_seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    d = _DEGRADERS[preset]
    r = d.degrade([img], [seed])[0]
    s = d.config.scale
    hq = img if r.hq is None else r.hq
    assert r.lq.dtype == np.uint8 and r.lq.ndim == 3 and r.lq.shape[2] == 3
    assert r.lq.shape[:2] == (max(1, hq.shape[0] // s), max(1, hq.shape[1] // s))
    assert hq.shape[0] <= h and hq.shape[1] <= w and hq.dtype == np.uint8
    assert r.params["lq_size"] == list(r.lq.shape[:2]) and r.params["hq_size"] == list(hq.shape[:2])
    assert _finite(json.loads(json.dumps(r.params)))
    again = d.degrade([img], [seed])[0]
    assert np.array_equal(r.lq, again.lq)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(kernels.KERNEL_TYPES),
    size=st.sampled_from([3, 5, 7, 13, 21, 25]),
    sx=st.floats(0.0, 6.0),
    sy=st.floats(0.0, 6.0),
    theta=st.floats(-math.pi, math.pi),
    beta=st.floats(0.3, 8.0),
)
def test_kernels_are_normalised_and_finite(kind, size, sx, sy, theta, beta):
    p = {"type": kind, "size": size, "sigma_x": sx, "sigma_y": sy, "theta": theta, "beta": beta}
    k = kernels.kernel_from_params(p)
    assert k.shape == (size, size) and np.all(np.isfinite(k)) and np.all(k >= 0)
    assert abs(k.sum() - 1) < 1e-9
    assert np.allclose(k, k[::-1, ::-1])  # point-symmetric about the centre


@settings(max_examples=25, deadline=None)
@given(size=st.sampled_from(range(7, 22, 2)), omega=st.floats(math.pi / 5, math.pi), h=st.integers(4, 40), w=st.integers(4, 40))
def test_filtering_keeps_shape_and_mean_of_constant_images(size, omega, h, w):
    x = torch.full((1, 3, h, w), 0.3)
    y = filter2d(x, [kernels.sinc_kernel(size, omega)])
    assert y.shape == x.shape and torch.allclose(y, x, atol=1e-5)
    assert torch.allclose(usm_sharpen(x), x, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(2, 60),
    w=st.integers(2, 60),
    scale=st.floats(0.1, 2.0),
    mode=st.sampled_from(["area", "bilinear", "bicubic"]),
)
def test_resize_sizes_match_torch(h, w, scale, mode):
    x = torch.rand(1, 3, h, w)
    y = resize(x, scale=scale, mode=mode)
    assert y.shape[-2:] == (max(1, int(h * scale)), max(1, int(w * scale)))
    assert torch.isfinite(y).all()


@settings(max_examples=30, deadline=None)
@given(
    sigma=st.floats(0.0, 60.0),
    kind=st.sampled_from(["color", "gray", "correlated"]),
    multiplicative=st.booleans(),
    scale=st.floats(0.0, 4.0),
    gray=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
)
def test_noise_stays_in_range(sigma, kind, multiplicative, scale, gray, seed):
    x = torch.rand(1, 3, 17, 23)
    cov = [kernels.correlated_noise_cov(np.random.default_rng(seed % 1000), sigma)] if kind == "correlated" else None
    y = noise.gaussian_noise(x, [sigma], [kind], [seed], cov, multiplicative=multiplicative)
    z, vals = noise.poisson_noise(x, [scale], [gray], [seed])
    for t in (y, z):
        assert t.shape == x.shape and torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    assert vals[0] >= 1
