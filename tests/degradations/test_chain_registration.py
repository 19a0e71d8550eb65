"""Registered pairs (issue 13.4): every preset keeps HQ and LQ on one grid.

Measured as a restorer would see it: the LQ is resized back onto the HQ grid and the sub-pixel shift of
each textured tile is found by phase correlation (``registration.py``). The photos are 299x397 (no side a
multiple of 2 or 4) and band-limited a little (Gaussian sigma 2), so that aliasing of the non-antialiased
downscales does not read as a shift. Noise and JPEG are switched off in the geometry test: they move no
pixel, they only add estimator noise (with them on, the same medians stay within ~0.2 px).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from chain_data import photo_crops
from pairforge.degradations.chain import ChainDegradeConfig
from pairforge.degradations.chain.presets import preset_dict, preset_names
from pairforge.degradations.resize import mod_crop, registered_size, resize, resize_image
from pairforge.degradations.simple import SimpleDegradeConfig
from registration import drift, tile_shifts, worst_drift

SIZE = (299, 397)


def _photos(n: int = 12) -> list[np.ndarray]:
    return [cv2.GaussianBlur(x, (0, 0), 2.0) for x in photo_crops(n, SIZE, seed=3)]


def _quiet(ops: list[dict]) -> None:
    for o in ops:
        if o["op"] in ("gaussian_noise", "poisson_noise", "jpeg"):
            o["prob"] = 0.0
        _quiet(o.get("ops", []))


def _shifts(degrader, photos) -> np.ndarray:
    results = degrader.degrade(photos, list(range(100, 100 + len(photos))))
    return np.concatenate([tile_shifts(r.hq if r.hq is not None else p, r.lq) for p, r in zip(photos, results)])


@pytest.mark.parametrize("preset", preset_names() + ["simple"])
def test_every_preset_keeps_hq_and_lq_on_one_grid(preset):
    photos = _photos()
    if preset == "simple":
        d = SimpleDegradeConfig(noise_sigma=(0.0, 0.0), jpeg_quality=(100.0, 100.0)).build()
    else:
        cfg = preset_dict(preset)
        _quiet(cfg["ops"])
        d = ChainDegradeConfig.model_validate({**cfg, "device": "cpu"}).build()
        assert d.config.resize_grid == "registered"  # the default
    sh = _shifts(d, photos)
    assert len(sh) >= 100
    assert worst_drift(sh) < 0.1, drift(sh)


def test_upstream_grid_drifts_and_the_registered_grid_does_not():
    """The measurement can see the drift the registered grid removes: a scale-factor downscale then a
    resize to an exact size (web's pattern) stretches the frame on upstream's grid."""
    photos = _photos(6)
    ops = [{"op": "resize", "updown_prob": [0, 1, 0], "down_range": [0.5, 0.9], "modes": ["bilinear", "bicubic"]},
           {"op": "resize_to", "target": "hq", "modes": ["bicubic"]}]
    out = {}
    for grid in ("registered", "upstream"):
        d = ChainDegradeConfig.model_validate({"ops": ops, "scale": 1, "resize_grid": grid, "device": "cpu"}).build()
        out[grid] = drift(_shifts(d, photos))
    assert max(abs(out["registered"][k]) for k in ("dx_right", "dy_bottom")) < 0.05, out
    assert max(abs(out["upstream"][k]) for k in ("dx_right", "dy_bottom")) > 0.2, out


def test_registered_resize_maps_sizes_by_ratio():
    import torch

    x = torch.rand(1, 3, 37, 53)
    for mode in ("area", "bilinear", "bicubic", "nearest"):
        y = resize(x, scale=0.37, mode=mode, grid="registered")
        assert tuple(y.shape[-2:]) == registered_size(37, 53, 0.37) == (13, 19)
        # size-ratio mapping: the same as asking for that size
        assert torch.allclose(y, resize(x, size=(13, 19), mode=mode, grid="registered"), atol=1e-5)
    up = resize(x, scale=0.37, mode="bilinear", grid="upstream")
    assert tuple(up.shape[-2:]) == (13, 19)
    assert not torch.allclose(up, resize(x, size=(13, 19), mode="bilinear"), atol=1e-3)
    with pytest.raises(ValueError, match="grid"):
        resize(x, scale=0.5, grid="bogus")


def test_numpy_helpers_for_other_degraders():
    img = (np.arange(30 * 42 * 3) % 251).astype(np.uint8).reshape(30, 42, 3)
    assert mod_crop(img, 4).shape == (28, 40, 3)
    assert mod_crop(img[:3, :3], 4).shape == (3, 3, 3)
    small = resize_image(img, (7, 10), "area")
    assert small.shape == (7, 10, 3) and small.dtype == np.uint8
    assert resize_image(img, (30, 42), "bicubic") is img
    gray = resize_image(img[..., :1], (15, 21), "bilinear")
    assert gray.shape == (15, 21, 1)
    with pytest.raises(ValueError, match="resize mode"):
        resize_image(img, (7, 10), "cubic")


def _bsrgan_plans(n: int, size: tuple[int, int]):
    d = ChainDegradeConfig.model_validate({"preset": "bsrgan", "device": "cpu"}).build()
    return [d.plan(size, seed)[0] for seed in range(n)]


def test_bsrgan_switches_to_x2_ranges_after_the_pre_shrink():
    seen = 0
    for ctx in _bsrgan_plans(200, (256, 256)):
        steps = {s.params["name"]: s.params for s in ctx.steps}
        pre = steps["prescale"]["applied"]
        for name in ("blur1", "blur2", "downsample_resize", "downsample_shifted"):
            p = steps.get(name)
            if p is None or not p["applied"]:
                continue
            assert p.get("at_scale") == (2 if pre else None), (name, p)
            if name == "downsample_shifted":
                assert p["factor"] == (2 if pre else 4)
            if name == "downsample_resize":
                assert p["scale"] >= (0.25 if pre else 0.125) - 1e-9
            if name.startswith("blur") and p["kernel"]["type"] == "iso":
                assert p["kernel"]["sigma_x"] <= (2.4 if pre else 2.8)
        seen += pre
    assert 25 < seen < 75  # p = 0.25


def test_bsrgan_never_goes_below_its_minimum_lq_size():
    d = ChainDegradeConfig.model_validate({"preset": "bsrgan", "device": "cpu"}).build()
    photos = photo_crops(24, 256, seed=1)
    for r in d.degrade(photos, list(range(24))):
        assert r.params["lq_size"] == [64, 64]
        for op in r.params["ops"]:
            if op.get("applied") and "out_size" in op and op["op"] != "resize_to":
                assert min(op["out_size"]) >= 32, op  # half the LQ: 1/8 of the HQ


def test_chain_records_its_grid_and_upstream_stays_selectable():
    d = ChainDegradeConfig.model_validate({"preset": "realesrgan", "resize_grid": "upstream", "device": "cpu"}).build()
    r = d.degrade(photo_crops(1, (101, 133)), [5])[0]
    assert r.params["resize_grid"] == "upstream"
    assert r.lq.shape[:2] == (25, 33) and r.hq.shape[:2] == (100, 132)
    with pytest.raises(ValueError, match="resize_grid"):
        ChainDegradeConfig.model_validate({"preset": "realesrgan", "resize_grid": "exact"})


def test_simple_degrader_crops_the_hq_to_the_scale():
    d = SimpleDegradeConfig().build()
    r = d.degrade(photo_crops(1, (101, 133)), [5])[0]
    assert r.hq.shape[:2] == (100, 132) and r.lq.shape[:2] == (25, 33)
    up = SimpleDegradeConfig(resize_grid="upstream").build().degrade(photo_crops(1, (101, 133)), [5])[0]
    assert up.hq is None and up.lq.shape[:2] == (25, 33)
