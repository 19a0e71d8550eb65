"""Parity of pairforge's degradation ops with BasicSR 1.4.2 itself (the Real-ESRGAN reference code)."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

if importlib.util.find_spec("basicsr") is None:  # (importing it needs the shim, so only look it up)
    pytest.skip("BasicSR 1.4.2 (the reference) comes with the test extra", allow_module_level=True)

from basicsr_shim import import_basicsr
from chain_data import photo_crops

from pairforge.degradations import filtering, jpeg, kernels, noise
from pairforge.degradations.resize import resize

D, IPU, DJ = import_basicsr()


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    imgs = photo_crops(4, (96, 80), seed=3)
    return torch.stack([torch.from_numpy(i).permute(2, 0, 1).float() / 255.0 for i in imgs]).contiguous()


def test_kernels_equal_basicsr_for_same_params():
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(60):
        k = int(rng.choice(range(7, 22, 2)))
        sx, sy = rng.uniform(0.2, 3.0, 2)
        th = rng.uniform(-math.pi, math.pi)
        beta = rng.uniform(0.5, 4.0)
        pairs = [
            (kernels.gaussian_kernel(k, sx), D.bivariate_Gaussian(k, sx, sy, th, isotropic=True)),
            (kernels.gaussian_kernel(k, sx, sy, th, False), D.bivariate_Gaussian(k, sx, sy, th, isotropic=False)),
            (kernels.generalized_gaussian_kernel(k, sx, sy, th, beta, True), D.bivariate_generalized_Gaussian(k, sx, sy, th, beta, isotropic=True)),
            (kernels.generalized_gaussian_kernel(k, sx, sy, th, beta, False), D.bivariate_generalized_Gaussian(k, sx, sy, th, beta, isotropic=False)),
            (kernels.plateau_kernel(k, sx, sy, th, beta, True), D.bivariate_plateau(k, sx, sy, th, beta, isotropic=True)),
            (kernels.plateau_kernel(k, sx, sy, th, beta, False), D.bivariate_plateau(k, sx, sy, th, beta, isotropic=False)),
        ]
        omega = rng.uniform(math.pi / 5, math.pi)
        pairs.append((kernels.sinc_kernel(k, omega, pad_to=21), D.circular_lowpass_kernel(omega, k, pad_to=21)))
        for mine, ref in pairs:
            assert mine.shape == ref.shape
            worst = max(worst, float(np.abs(mine - ref).max()))
            assert abs(mine.sum() - 1) < 1e-9
    assert worst < 1e-6


def test_scipy_free_bessel_and_poisson_cdf_match_scipy():
    """J1 (sinc kernels) and the Poisson CDF (shot-noise tables) are computed without scipy (start-up);
    both agree with scipy.special to float64 rounding over the ranges the chain uses and beyond."""
    from scipy import special

    x = np.linspace(0, 300, 30001)
    assert np.abs(kernels.bessel_j1(x) - special.j1(x)).max() < 1e-12
    assert np.abs(kernels.bessel_j1(-x) + special.j1(x)).max() < 1e-12  # odd
    for vals in (2.0, 64.0, 256.0, 1024.0):
        lam = np.arange(256) / 255 * vals
        k = np.arange(int(vals + 12 * math.sqrt(vals) + 17))
        assert np.abs(noise._poisson_cdf(len(k), lam) - special.pdtr(k[None, :], lam[:, None])).max() < 1e-10


def test_recorded_kernel_params_rebuild_the_kernel():
    from pairforge.degradations.chain import ChainDegradeConfig

    ks = ChainDegradeConfig.model_validate({"preset": "realesrgan"}).op_by_name("blur1").kernel
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        p = ks.draw(rng)
        seen.add(p["type"])
        k = kernels.kernel_from_params(p)
        if p["type"] == "sinc":
            ref = D.circular_lowpass_kernel(p["omega"], p["size"], pad_to=False)
        elif p["type"] in ("iso", "aniso"):
            ref = D.bivariate_Gaussian(p["size"], p["sigma_x"], p["sigma_y"], p["theta"], isotropic=p["type"] == "iso")
        elif p["type"].startswith("generalized"):
            ref = D.bivariate_generalized_Gaussian(p["size"], p["sigma_x"], p["sigma_y"], p["theta"], p["beta"],
                                                   isotropic=p["type"].endswith("_iso"))
        else:
            ref = D.bivariate_plateau(p["size"], p["sigma_x"], p["sigma_y"], p["theta"], p["beta"],
                                      isotropic=p["type"].endswith("_iso"))
        assert np.abs(k - ref).max() < 1e-6
    assert seen == {"sinc", *kernels.KERNEL_TYPES}


def _mixed_kernels(b: int) -> list[np.ndarray]:
    return [
        kernels.gaussian_kernel(21, 2.5),
        kernels.sinc_kernel(13, 1.1),
        kernels.plateau_kernel(9, 1.0, 2.0, 0.3, 1.5, False),
        kernels.generalized_gaussian_kernel(17, 2.0, 0.7, -1.0, 0.8, False),
    ][:b]


def test_filter2d_matches_basicsr(batch):
    ks = _mixed_kernels(batch.shape[0])
    ref = IPU.filter2D(batch, torch.from_numpy(np.stack([kernels.pad_kernel(k, 21) for k in ks])).float())
    torch_path = filtering.filter2d_torch(batch, torch.from_numpy(np.stack([kernels.pad_kernel(k, 21) for k in ks])).float())
    assert torch.equal(torch_path, ref)  # the grouped-conv path is BasicSR's computation
    cpu_path = filtering.filter2d(batch, ks)  # OpenCV, separable where the kernel allows
    assert (cpu_path - ref).abs().max() < 2e-5


def test_usm_matches_basicsr(batch):
    ref = IPU.USMSharp()(batch)
    mine = filtering.usm_sharpen(batch)
    d = (mine - ref).abs()
    # identical formula; a threshold-borderline pixel may flip its mask bit through float rounding
    assert d.mean() < 1e-6 and d.max() < 1e-3


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
@pytest.mark.parametrize("scale", [0.15, 0.5, 0.77, 1.0, 1.31, 1.5])
def test_resize_by_scale_matches_torch_interpolate(batch, mode, scale):
    ref = F.interpolate(batch, scale_factor=scale, mode=mode) if scale != 1.0 else batch
    mine = resize(batch.contiguous(memory_format=torch.channels_last), scale=scale, mode=mode)
    assert mine.shape == ref.shape
    assert (mine - ref).abs().max() < 1e-4


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(24, 20), (31, 17), (130, 90)])
def test_resize_to_size_matches_torch_interpolate(batch, mode, size):
    ref = F.interpolate(batch, size=size, mode=mode)
    assert (resize(batch, size=size, mode=mode) - ref).abs().max() < 1e-4


@pytest.mark.parametrize("size", [(24, 20), (31, 17), (130, 90), (96, 80), (48, 40), (200, 41)])
def test_nearest_resizes_match_torch_interpolate(batch, size):
    assert torch.equal(resize(batch, size=size, mode="nearest"), F.interpolate(batch, size=size, mode="nearest"))
    assert torch.equal(resize(batch, size=size, mode="nearest", grid="registered"),
                       F.interpolate(batch, size=size, mode="nearest-exact"))
    for s in (0.37, 0.5, 1.5):
        assert torch.equal(resize(batch, scale=s, mode="nearest"), F.interpolate(batch, scale_factor=s, mode="nearest"))


def test_diffjpeg_mode_matches_basicsr_diffjpeg(batch):
    q = [30.0, 47.5, 71.2, 95.0]
    x = batch[:, :, :90, :77]  # not a multiple of 16: exercises the padding
    ref = DJ.DiffJPEG(differentiable=False)(x.contiguous(), quality=torch.tensor(q))
    mine = jpeg.diffjpeg(x, q)
    d = (mine - ref).abs()
    assert d.mean() < 1e-5 and d.max() < 0.02  # float rounding may flip a rare coefficient's rounding


def test_libjpeg_within_documented_tolerance_of_diffjpeg(batch):
    """A real encoder is not DiffJPEG (integer tables, rounding, chroma filtering), but at the same quality
    the damage is similar: PSNR to the input within 2.5 dB per image, mean within 1.5 dB."""
    from skimage.metrics import peak_signal_noise_ratio as psnr

    diffs = []
    for q in (30, 50, 70, 90):
        a = jpeg.jpeg_libjpeg(batch, [q] * 4)
        b = jpeg.diffjpeg(batch, [float(q)] * 4)
        for i in range(4):
            x = batch[i].numpy()
            diffs.append(psnr(x, a[i].numpy(), data_range=1) - psnr(x, b[i].numpy(), data_range=1))
    diffs = np.array(diffs)
    assert np.abs(diffs).max() < 2.5 and abs(diffs.mean()) < 1.5


def test_gaussian_noise_statistics_match_basicsr():
    x = torch.full((1, 3, 128, 128), 0.5)
    for sigma in (3.0, 12.0, 30.0):
        torch.manual_seed(0)
        ref = D.add_gaussian_noise_pt(x, sigma=sigma, gray_noise=0, clip=True) - x
        mine = noise.gaussian_noise(x, [sigma], ["color"], [7]) - x
        assert abs(mine.std().item() - ref.std().item()) < 0.04 * sigma / 255
        assert abs(mine.std().item() - sigma / 255) < 0.03 * sigma / 255
        assert abs(mine.mean().item()) < 0.05 * sigma / 255
    gray = noise.gaussian_noise(x, [10.0], ["gray"], [3]) - x
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    color = noise.gaussian_noise(x, [10.0], ["color"], [3]) - x
    assert not torch.equal(color[:, 0], color[:, 1])


def test_poisson_noise_statistics_match_basicsr(batch):
    x = batch[:1]
    for scale, gray in ((1.0, False), (2.5, False), (1.5, True)):
        torch.manual_seed(0)
        ref = D.add_poisson_noise_pt(x, scale=scale, gray_noise=1 if gray else 0, clip=False) - x
        mine, vals = noise.poisson_noise(x, [scale], [gray], [11], clip=False)
        mine = mine - x
        # same photon scale rule (next power of two above the number of distinct 8-bit values)
        q = noise.quantize8(noise._luma(x) if gray else x)
        assert vals[0] == 2 ** math.ceil(math.log2(len(torch.unique(q))))
        # the variance of scale*(Poisson(q*v)/v - q) is scale^2 q/v: both implementations follow it overall
        # and per brightness band (tolerance ~3 standard errors of a std over >= 1000 independent values)
        assert abs(mine.std().item() / ref.std().item() - 1) < 0.05
        qq = q.expand_as(x)
        for lo, hi in ((0.05, 0.3), (0.3, 0.6), (0.6, 0.95)):
            m = (qq >= lo) & (qq < hi)
            if m.sum() > 3000:
                theory = (scale * torch.sqrt(qq[m] / vals[0])).pow(2).mean().sqrt().item()
                assert abs(mine[m].std().item() / theory - 1) < 0.07
                assert abs(ref[m].std().item() / theory - 1) < 0.07
        if gray:
            assert torch.allclose(mine[:, 0], mine[:, 1], atol=1e-6)  # one luma noise field for all channels


def test_table_poisson_sampler_is_exact():
    """The CPU table-inversion sampler draws from the exact Poisson pmf (chi-square goodness of fit on
    bins with >= 20 expected draws, tails merged; fixed seeds, so the p-values are fixed numbers)."""
    from scipy import special, stats

    vals, n = 256.0, 200_000
    for level in (1, 9, 128, 255):
        lam = level / 255 * vals
        draws = noise.poisson_levels_cpu(np.full(n, level, np.uint8), vals, seed=level).astype(np.int64)
        j = np.arange(int(lam + 20 * math.sqrt(lam) + 30))
        pmf = np.exp(j * np.log(lam) - lam - special.gammaln(j + 1))
        keep = np.flatnonzero(pmf * n >= 20)
        lo, hi = keep[0], keep[-1]
        obs = np.bincount(np.clip(draws, lo, hi) - lo, minlength=hi - lo + 1).astype(float)
        exp = pmf[lo : hi + 1].copy()
        exp[0] += pmf[:lo].sum()
        exp[-1] = 1.0 - exp[:-1].sum()
        assert stats.chisquare(obs, exp * n).pvalue > 1e-3
        assert abs(draws.mean() - lam) < 5 * math.sqrt(lam / n)


def test_wide_images_filter_like_basicsr():
    """Wide images (OpenCV's filter engine over long rows) give BasicSR's result too."""
    img = photo_crops(1, (40, 1000), seed=5)[0].astype(np.float32) / 255.0
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    for k in (kernels.gaussian_kernel(21, 2.0), kernels.sinc_kernel(15, 1.3), kernels.plateau_kernel(11, 1.2, 0.5, 0.7, 1.3, False)):
        ref = IPU.filter2D(x, torch.from_numpy(kernels.pad_kernel(k, 21))[None].float())
        mine = filtering.filter2d(x, [k])
        assert (mine - ref).abs().max() < 2e-5
    usm = filtering.usm_hwc(img, filtering.usm_gaussian_1d(50).astype(np.float32), 0.5, 10)
    d = np.abs(usm - IPU.USMSharp()(x)[0].permute(1, 2, 0).numpy())
    assert d.mean() < 1e-6 and d.max() < 1e-3


def test_torch_paths_that_cuda_runs_agree_with_the_cpu_paths(batch):
    """CUDA runs torch implementations of USM, noise, resizes and DiffJPEG; the CPU runs numpy/OpenCV ones.
    On this CPU the torch ones are checked against BasicSR and against the numpy ones (the same noise
    field gives the same result; the generators differ, so Poisson draws are compared in distribution)."""
    assert (filtering.usm_sharpen_torch(batch) - IPU.USMSharp()(batch)).abs().max() < 1e-5
    x = batch[:1].contiguous()
    img = x[0].permute(1, 2, 0).numpy().copy()
    for kind, cov in (("color", None), ("gray", None), ("correlated", kernels.correlated_noise_cov(np.random.default_rng(0), 12.0))):
        for mult in (False, True):
            z = noise.standard_normal_hwc(42, img.shape[0], img.shape[1], 1 if kind == "gray" else 3)
            a = noise.add_noise_hwc(img, z, 12.0, kind, cov, mult, True)
            zt = torch.from_numpy(z).permute(2, 0, 1)[None]
            b = noise.add_noise_torch(x, zt, 12.0, kind, cov, mult, True)[0].permute(1, 2, 0).numpy()
            assert np.abs(a - b).max() < 1e-5
    for gray in (False, True):
        a, va = noise.poisson_noise_hwc(img, 2.0, gray, 3, None, True)
        b, vb = noise.poisson_torch(x, 2.0, gray, 3, None, True)
        assert va == vb
        b = b[0].permute(1, 2, 0).numpy()
        assert abs((a - img).std() / (b - img).std() - 1) < 0.05
    q = [30.0, 47.5, 71.2, 95.0]
    xs = batch[:, :, :90, :77].contiguous()
    assert (jpeg.diffjpeg_torch(xs, q) - jpeg.diffjpeg(xs, q)).abs().max() < 1e-4


def test_cpu_noise_is_numpys_and_per_sample():
    """The CPU noise comes from numpy's generator seeded with the sample's noise seed (a CUDA run draws
    its own field from torch's generator on the device): same seed, same field, whatever else runs."""
    img = np.full((40, 30, 3), 0.5, np.float32)
    a = noise.gaussian_noise_hwc(img, 10.0, "color", 5, clip=False)
    z = np.random.Generator(np.random.PCG64(5)).standard_normal((40, 30, 3), dtype=np.float32)
    assert np.allclose(a - img, z * np.float32(10.0 / 255.0), atol=1e-7)
    b, v = noise.poisson_noise_hwc(img, 1.0, False, 5, vals=1000.0)  # not a power of two: numpy's sampler
    assert v == 1000.0 and abs(float((b - img).std()) - math.sqrt(0.5 / 1000)) < 0.003


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialiased_resize_matches_torch(batch, mode):
    for kw in ({"scale": 0.3}, {"scale": 0.77}, {"scale": 1.31}, {"size": (40, 33)}):
        ref = F.interpolate(batch, **({"scale_factor": kw["scale"]} if "scale" in kw else kw), mode=mode,
                            antialias=True, align_corners=False)
        assert (resize(batch, **kw, mode=mode, antialias=True) - ref).abs().max() < 1e-4
