"""The fast paths of the real-world types against the straightforward formulas they replace: the same
pixels to one level (float rounding), the same statistics, the same distributions. Why: speed work
(issue 13.7 / 14.4) must not change what a degradation looks like or what its record says."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from pairforge.degradations.realworld import common as C
from pairforge.degradations.realworld.lowlight import LowLight
from pairforge.degradations.realworld.moire import (
    CFA,
    Moire,
    camera_mtf,
    screen_capture,
)
from pairforge.degradations.realworld.reflection import Reflection
from pairforge.degradations.realworld.strength import linear_noise_fit


@pytest.mark.parametrize("shape", [(33, 47, 3), (20, 21, 1), (20, 21), (7,), (2, 3, 4, 3), (0, 3), (9, 9, 6)])
def test_uint8_float_conversions_match_the_formulas(shape):
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32) * 1.4 - 0.2
    if x.size > 3:
        x.flat[:3] = [np.nan, np.inf, -np.inf]
    ref = np.clip(np.rint(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0) * 255.0), 0, 255).astype(np.uint8)
    out = C.to_uint8(x)
    assert out.shape == ref.shape and out.dtype == np.uint8
    assert np.array_equal(out, ref)
    u = (rng.random(shape) * 256).astype(np.uint8)
    assert np.array_equal(C.to_float(u), u.astype(np.float32) / 255.0)
    assert np.array_equal(C.image_to_linear(u), C._LINEAR_LUT[u])
    lin = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0), 0, 1)
    idx = (lin * C._Q + 0.5).astype(np.uint16)
    assert np.array_equal(C.linear_to_uint8(x), C._TO_SRGB_U8[idx])


def test_normal_draw_is_standard_normal_and_seeded():
    z = C.normal(np.random.default_rng(3), (700, 700))
    assert z.dtype == np.float32 and z.shape == (700, 700)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((z ** 4).mean() - 3.0) < 0.05  # Gaussian kurtosis
    assert abs((np.abs(z) > 2).mean() - 0.0455) < 0.002
    assert np.array_equal(z, C.normal(np.random.default_rng(3), (700, 700)))
    assert C.normal(np.random.default_rng(3), 5).shape == (5,)


def _screen_reference(image: np.ndarray, p: dict) -> np.ndarray:
    """The screen lattice as first written: float64 coordinates, all three sub-pixel stripes everywhere,
    one kept per photosite; no sensor noise."""
    h, w = image.shape[:2]
    s = float(min(h, w))
    lin = C.image_to_linear(image)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    X, Y = (xx - (w - 1) / 2) / s, (yy - (h - 1) / 2) / s
    den = 1.0 + p["perspective"][0] * X + p["perspective"][1] * Y
    th = np.deg2rad(p["rotation"])
    u = p["pitch"] * s * (np.cos(th) * X - np.sin(th) * Y) / den + p["phase"][0]
    v = p["pitch"] * s * (np.sin(th) * X + np.cos(th) * Y) / den + p["phase"][1]
    atten = [camera_mtf(k * p["pitch"], p["blur_sigma"], p["aperture"]) for k in (1, 2, 3)]

    def box(t, duty, start):
        t = np.mod(t - (start + duty / 2), 1.0)
        out = np.full(t.shape, duty)
        for k, a in enumerate(atten, start=1):
            out += 2.0 * np.sin(np.pi * k * duty) / (np.pi * k) * a * np.cos(2 * np.pi * k * t)
        return out

    du, dv, c = p["fill"] / 3.0, p["matrix_fill"], p["contrast"]
    rows = box(v, dv, 0.0)
    lattice = np.stack([(1 - c) + box(u, du, ch / 3.0) * c / (du * dv) * rows for ch in range(3)], -1)
    layout = CFA[p["cfa"]]
    chan = np.empty((h, w), dtype=np.intp)
    chan[0::2, 0::2], chan[0::2, 1::2] = layout[0]
    chan[1::2, 0::2], chan[1::2, 1::2] = layout[1]
    sensed = np.take_along_axis(lin * lattice, chan[..., None], axis=2)[..., 0]
    mosaic = np.clip(np.rint(np.clip(sensed, 0, 1) * 65535), 0, 65535).astype(np.uint16)
    rgb = cv2.cvtColor(mosaic, layout[2] if p["demosaic"] == "bilinear" else layout[3])
    return C.to_uint8(C.linear_to_srgb(rgb / 65535.0))


def test_screen_capture_matches_the_full_lattice(photos):
    t = Moire()
    for i, img in enumerate(photos):
        img = C.fit_to(img, (61, 90))  # odd size: every CFA sub-grid has its own shape
        for s in range(4):
            p = t.sample(np.random.default_rng(10 * i + s))
            layer = next((x for x in p["layers"] if x["kind"] == "screen"), None)
            if layer is None:
                continue
            layer = {**layer, "noise": 0.0, "demosaic": "bilinear"}
            out = C.to_uint8(screen_capture(img, layer, np.random.default_rng(0)))
            ref = _screen_reference(img, layer)
            assert np.abs(out.astype(int) - ref).max() <= 1


def test_low_light_fast_pipeline_matches_the_float_pipeline(photos):
    t = LowLight()
    for i, img in enumerate(photos):
        p = t.sample(np.random.default_rng(i))
        p.update(t.bind(img, p, {}))
        p.update(shot=0.0, read=0.0, bits=16, demosaic="bilinear")  # no noise, no ADC steps
        out = t.apply(img, p)
        # reference: unprocess all channels, keep one per photosite, demosaic, process in float
        raw = t.unprocess(img, p) * np.float32(p["exposure"])
        layout = CFA[p["cfa"]]
        h, w = img.shape[:2]
        mosaic = np.empty((h, w), np.float32)
        for r0, c0 in itertools.product((0, 1), (0, 1)):
            mosaic[r0::2, c0::2] = raw[r0::2, c0::2, layout[r0][c0]]
        m16 = (np.rint(np.clip(mosaic, 0, 1) * 65535)).astype(np.uint16)
        rgb = cv2.cvtColor(m16, layout[2]).astype(np.float32) / 65535.0
        ref = C.to_uint8(t.process(rgb, p))
        assert np.abs(out.astype(int) - ref).max() <= 1


def test_low_light_exposure_is_the_bisection_root(photos):
    t = LowLight()
    for i, img in enumerate(photos):
        p = t.sample(np.random.default_rng(100 + i))
        e = t.exposure(img, p)
        small = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
        raw = t.unprocess(small, p)
        luma = lambda x, raw=raw, p=p: float(C.luminance(t.process(raw * x, p)).mean())
        lo, hi = 1e-4, 1.0
        for _ in range(30):
            mid = float(np.sqrt(lo * hi))
            lo, hi = (mid, hi) if luma(mid) < p["brightness"] else (lo, mid)
        ref = 1.0 if luma(1.0) <= p["brightness"] else np.sqrt(lo * hi)
        assert e == pytest.approx(ref, rel=1e-5)


def test_reflection_ramp_matches_the_grid_formula():
    t = Reflection()
    for s in range(6):
        p = t.sample(np.random.default_rng(s))
        for h, w in ((37, 52), (1, 9), (64, 64)):
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
            a = np.deg2rad(p["ramp_angle"])
            proj = ((xx / max(w - 1, 1) - 0.5) * np.cos(a) + (yy / max(h - 1, 1) - 0.5) * np.sin(a)) * 2.0
            proj = np.clip(proj / max(np.abs(proj).max(), 1e-6), -1, 1)
            ref = np.clip(p["alpha"] * (1.0 + p["alpha_variation"] * proj), 0.0, 0.95)
            got = t.alpha_map((h, w), p)
            assert got.shape == (h, w, 1)
            np.testing.assert_allclose(got[..., 0], ref, atol=1e-6)


def test_linear_noise_fit_matches_per_bin_masks(photos):
    rng = np.random.default_rng(0)
    hq = photos[0]
    lin = C.srgb_to_linear(C.to_float(hq))
    lq = C.to_uint8(C.linear_to_srgb(np.clip(lin + rng.normal(size=lin.shape) * np.sqrt(lin / 200 + 1e-5), 0, 1)))
    got = linear_noise_fit(hq, lq)
    x = C.srgb_to_linear(C.to_float(hq)).ravel().astype(np.float64)
    y = C.srgb_to_linear(C.to_float(lq)).ravel().astype(np.float64) - x
    xs, vs = [], []
    for lo, hi in itertools.pairwise(np.linspace(0.02, 0.8, 13)):
        m = (x >= lo) & (x < hi)
        if m.sum() >= 50:
            xs.append(x[m].mean())
            vs.append(y[m].var())
    a, b = np.polyfit(xs, vs, 1)
    assert got["a"] == pytest.approx(a, rel=1e-3) and got["b"] == pytest.approx(b, rel=1e-2, abs=1e-7)


def test_ssim_agrees_with_scikit_image(photos):
    from skimage.metrics import structural_similarity

    from pairforge.degradations.fidelity import ssim

    rng = np.random.default_rng(1)
    for hq in photos:
        lq = np.clip(hq + rng.normal(0, 12, hq.shape), 0, 255).astype(np.uint8)
        g0, g1 = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (hq, lq))
        assert ssim(hq, lq) == pytest.approx(structural_similarity(g0, g1, data_range=255), abs=2e-5)
        ref = structural_similarity(hq, lq, data_range=255, channel_axis=2)
        assert ssim(hq, lq, luma=False) == pytest.approx(ref, abs=2e-5)
        f0, f1 = g0.astype(np.float32), g1.astype(np.float32)  # float planes take the same path
        assert ssim(f0, f1) == pytest.approx(ssim(g0, g1), abs=1e-5)


def test_pair_strength_of_images_smaller_than_the_ssim_window_is_psnr_only():
    """SSIM's 7 x 7 window does not fit a 2 x 2 LQ (an 8 px HQ at x4): the record keeps PSNR and no NaN."""
    import json

    from pairforge.degradations.fidelity import pair_strength

    rng = np.random.default_rng(0)
    hq = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    lq = rng.integers(0, 256, (2, 2, 3), dtype=np.uint8)
    s = pair_strength(hq, lq)
    assert set(s) == {"psnr"} and np.isfinite(s["psnr"])
    json.loads(json.dumps(s, allow_nan=False))
    big = pair_strength(np.repeat(np.repeat(hq, 4, 0), 4, 1), hq)  # 32 px HQ vs its 8 px LQ
    assert set(big) == {"psnr", "ssim"} and np.isfinite(big["ssim"])
