"""What the eye checks in the galleries, as tests: flare comes from a genuine light (or from outside
the frame), never from a glint; haze leaves no clear band in a sky; blur moves the whole subject.

Synthetic scenes are built in linear light from a real texture (scikit-image's grass photo): a
daylight scene with the sun in the sky, a night scene with a sodium lamp, and the night scene with a
glint (a small clipped highlight without any glow) instead of the lamp.
"""
from __future__ import annotations

import numpy as np

from pairforge.degradations.realworld.common import linear_to_uint8
from pairforge.degradations.realworld.flare import FlareConfig, find_source
from pairforge.degradations.realworld.haze import HazeConfig
from pairforge.degradations.realworld.registry import make_type
from pairforge.sources.bundled import load_bundled_photo

SIZE = 192


def _grass() -> np.ndarray:
    import cv2

    g = load_bundled_photo("grass")
    g = g if g.ndim == 2 else cv2.cvtColor(g[..., :3], cv2.COLOR_RGB2GRAY)
    g = cv2.resize(g, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return np.repeat(g[..., None], 3, axis=2) ** 2.2


def _grid():
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def daylight_sun() -> np.ndarray:
    yy, xx = _grid()
    img = _grass() * np.array([0.5, 0.8, 0.3], np.float32)
    sky = yy < 0.43 * SIZE
    blue = np.array([0.25, 0.45, 0.9], np.float32) * (0.6 + 0.4 * yy / (0.43 * SIZE))[..., None]
    img = np.where(sky[..., None], blue, img)
    r = np.hypot(xx - 0.7 * SIZE, yy - 0.2 * SIZE)
    sun = 4.0 * np.exp(-((r / (0.03 * SIZE)) ** 2)) + 0.9 * np.exp(-r / (0.1 * SIZE))
    return linear_to_uint8((img + sun[..., None] * np.array([1.0, 0.95, 0.85], np.float32)).astype(np.float32))


def night(lamp: bool) -> np.ndarray:
    yy, xx = _grid()
    img = _grass() * 0.05
    if lamp:  # a sodium lamp: a clipped core in an orange glow
        r = np.hypot(xx - 0.3 * SIZE, yy - 0.6 * SIZE)
        glow = 3.0 * np.exp(-((r / (0.016 * SIZE)) ** 2)) + 0.3 * np.exp(-r / (0.04 * SIZE))
        img = img + glow[..., None] * np.array([1.0, 0.6, 0.25], np.float32)
    else:  # a glint: as bright, as big, but no glow around it
        y0, x0 = int(0.6 * SIZE), int(0.3 * SIZE)
        img[y0 - 3:y0 + 3, x0 - 3:x0 + 3] = 1.0
    return linear_to_uint8(img.astype(np.float32))


def _rgb(name: str, size: int = 256) -> np.ndarray:
    from pairforge.degradations.realworld.common import fit_to

    im = load_bundled_photo(name)
    im = np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im[..., :3]
    return fit_to(im, (size, size))


def test_flare_source_is_a_light_that_glows_not_a_glint():
    sun = find_source(daylight_sun())
    assert sun is not None and abs(sun["position"][0] - 0.7) < 0.04 and abs(sun["position"][1] - 0.2) < 0.04
    r, g, b = sun["tint"]
    assert r >= g >= b  # the sun's colour, not the blue sky around it
    lamp = find_source(night(lamp=True))
    assert lamp is not None and abs(lamp["position"][0] - 0.3) < 0.04 and abs(lamp["position"][1] - 0.6) < 0.04
    r, g, b = lamp["tint"]
    assert r == 1.0 and r > g + 0.15 > b + 0.3  # orange, as its glow
    assert find_source(night(lamp=False)) is None
    # the bundled photos: glints on a helmet, a cup rim, a spoon, the camera's metal are no lights; the
    # launch pad's floodlights at dusk are
    for name in ("astronaut", "coffee", "chelsea", "camera"):
        assert find_source(_rgb(name)) is None, name
    pad = find_source(_rgb("rocket"))
    assert pad is not None and pad["position"][1] > 0.8


def test_flare_without_a_source_comes_from_outside_the_frame_and_is_neutral_on_monochrome():
    t = make_type("flare", FlareConfig(inside_probability=1.0, severity="medium"))
    cam = _rgb("camera", 128)
    for seed in range(4):
        lq, p = t(cam, np.random.default_rng(seed), {})
        assert p["anchor"] == "outside_frame"
        assert not (0 <= p["position"][0] <= 1 and 0 <= p["position"][1] <= 1)
        assert p["tint"] == [1.0, 1.0, 1.0] and all(g["tint"] == [1.0, 1.0, 1.0] for g in p["ghosts"])
        assert np.array_equal(lq[..., 0], lq[..., 1]) and np.array_equal(lq[..., 1], lq[..., 2])


def test_haze_leaves_no_clear_band_in_the_sky():
    """The rocket photo's dusk sky is graded and noisy down to the horizon; all of it is sky, so the
    haze over it is one transmission (the heterogeneity field switched off), not a clear band under a
    hazed top."""
    img = _rgb("rocket", 256)
    t = make_type("haze", HazeConfig(heterogeneity=(0.0, 0.0), severity="heavy"))
    _lq, p = t(img, np.random.default_rng(0), {})
    assert p["depth_form"] == "layout"
    tr = t.transmission(img, p, {})
    h = img.shape[0]
    cols = np.r_[0:64, 192:256]  # sky beside the rocket and away from the towers' base
    top, low = float(tr[int(0.1 * h):int(0.3 * h), cols].mean()), float(tr[int(0.6 * h):int(0.75 * h), cols].mean())
    assert abs(top - low) < 0.03, (top, low)
