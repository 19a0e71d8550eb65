"""The whole x4plus chain against BasicSR's own functions driving the same chain: over 64 photo crops the
degradation strength (PSNR / SSIM of the LQ against the area-downscaled HQ) has the same distribution.

Tolerances (stated): mean PSNR within 1.5 dB, mean SSIM within 0.06, and a two-sample KS test does not
reject equality (p > 0.01), for both JPEG backends. With 64 samples the standard error of a mean PSNR is
about 0.4 dB per side; a 256-sample run measured differences of 0.45 dB (DiffJPEG mode) and 0.3 dB
(libjpeg). BasicSR runs with batch size 1 (so every draw is per sample, like pairforge) and its OpenCV
USM (same formula as the model's USMSharp, which is a 51x51 grouped conv and very slow on CPUs).
"""
from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.metrics import structural_similarity as ssim

if importlib.util.find_spec("basicsr") is None:  # (importing it needs the shim, so only look it up)
    pytest.skip("BasicSR 1.4.2 (the reference) comes with the test extra", allow_module_level=True)

from basicsr_shim import BasicSRChain
from chain_data import lq_reference, photo_crops

from pairforge.degradations.chain import ChainDegradeConfig

N = 64


def _strength(hq: np.ndarray, lq: np.ndarray) -> tuple[float, float]:
    ref = lq_reference(hq, lq.shape[:2])
    return psnr(ref, lq, data_range=255), ssim(ref, lq, channel_axis=2, data_range=255)


@pytest.fixture(scope="module")
def photos():
    return photo_crops(N, 128, seed=0)


@pytest.fixture(scope="module")
def basicsr_strength(photos):
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    chain = BasicSRChain(usm="numpy")
    out = []
    for im in photos:
        gt = torch.from_numpy(im).permute(2, 0, 1)[None].float().div(255).contiguous()
        lq = (chain(gt)[0] * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        assert lq.shape == (32, 32, 3)
        out.append(_strength(im, lq))
    return np.array(out)


@pytest.mark.parametrize("backend", ["diffjpeg", "libjpeg"])
def test_x4plus_chain_strength_matches_basicsr(photos, basicsr_strength, backend):
    d = ChainDegradeConfig.model_validate(
        {"preset": "realesrgan", "device": "cpu", "jpeg_backend": backend, "resize_grid": "upstream"}).build()
    res = d.degrade(photos, list(range(N)))
    ours = np.array([_strength(im, r.lq) for im, r in zip(photos, res)])
    ref = basicsr_strength
    assert abs(ours[:, 0].mean() - ref[:, 0].mean()) < 1.5
    assert abs(ours[:, 1].mean() - ref[:, 1].mean()) < 0.06
    assert ks_2samp(ours[:, 0], ref[:, 0]).pvalue > 0.01
    assert ks_2samp(ours[:, 1], ref[:, 1]).pvalue > 0.01
    # and the chain really degrades: far from a clean downscale, not destroyed
    assert 17 < ours[:, 0].mean() < 30
