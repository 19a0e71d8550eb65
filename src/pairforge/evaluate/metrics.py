"""The metrics of ``pairforge evaluate``, computed the way super-resolution papers report them.

PSNR and SSIM on RGB and on the luma channel Y (ITU-R BT.601, 16..235, as BasicSR's ``test_y_channel``
and the MATLAB code the SR literature inherited), after cropping ``border`` pixels from every side (the
usual SR crop equals the scale). SSIM is Wang et al.'s: an 11x11 Gaussian window with sigma 1.5,
population covariances, averaged over channels for RGB. LPIPS (v0.1, AlexNet) only when its weight files
are on disk; no-reference pyiqa metrics only when they need no download (see :func:`load_nr_metrics`).
"""
from __future__ import annotations

import logging
import math

import cv2
import numpy as np

log = logging.getLogger("pairforge.evaluate")

#: no-reference metrics tried by default; each is used only if it loads offline (PIQE needs no weights)
DEFAULT_NR = ("piqe", "niqe", "brisque")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float64 Y in [16, 235] (BT.601 studio swing)."""
    x = img.astype(np.float64) / 255.0
    return 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    if border <= 0 or img.shape[0] <= 2 * border or img.shape[1] <= 2 * border:
        return img
    return img[border:-border, border:-border]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    w = np.outer(k, k.transpose())

    def filt(x):  # "valid" part only, as MATLAB's filter2(..., 'valid')
        return cv2.filter2D(x, -1, w)[5:-5, 5:-5]

    mu1, mu2 = filt(a), filt(b)
    s11 = filt(a * a) - mu1 ** 2
    s22 = filt(b * b) - mu2 ** 2
    s12 = filt(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) as BasicSR's ``calculate_ssim``: 11x11 Gaussian window (sigma 1.5), valid
    region only, on a 0..255 scale, averaged over channels; OpenCV filters in float64 (skimage's
    implementation gives the same numbers several times slower)."""
    if min(a.shape[0], a.shape[1]) < 11:
        return float("nan")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 2:
        return _ssim_channel(a64, b64)
    return float(np.mean([_ssim_channel(a64[..., c], b64[..., c]) for c in range(a.shape[2])]))


def full_reference(out: np.ndarray, hq: np.ndarray, border: int = 0) -> dict[str, float]:
    """psnr / psnr_y / ssim / ssim_y of ``out`` against ``hq`` (uint8 RGB, same shape)."""
    if out.shape != hq.shape:
        raise ValueError(f"output {out.shape} and HQ {hq.shape} differ in shape")
    o, h = crop_border(out, border), crop_border(hq, border)
    oy, hy = rgb_to_y(o), rgb_to_y(h)
    return {"psnr": psnr(o, h), "psnr_y": psnr(oy, hy), "ssim": ssim(o, h), "ssim_y": ssim(oy, hy)}


class LPIPS:
    """LPIPS from local files only (the trainer's loader); ``available`` says whether it loaded."""

    def __init__(self, mode: str = "auto", device=None):
        from pairforge.train.losses import build_lpips, lpips_missing

        self.model = None
        self.missing = [] if mode == "off" else lpips_missing()
        if mode == "off":
            return
        if self.missing and mode == "auto":
            return
        import torch

        self.device = device or torch.device("cpu")
        self.model = build_lpips().to(self.device)

    @property
    def available(self) -> bool:
        return self.model is not None

    def __call__(self, out: np.ndarray, hq: np.ndarray) -> float:
        import torch

        def t(a):
            return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float().div(255).to(self.device)

        with torch.no_grad():
            return float(self.model(t(out), t(hq), normalize=True).mean())


def load_nr_metrics(names: list[str] | None, device: str = "cpu") -> tuple[dict, dict[str, str]]:
    """({name: pyiqa metric}, {name: why it was skipped}). ``names`` None: :data:`DEFAULT_NR`, skipping the
    ones whose weights are not on this machine; names given explicitly must load (one clear error)."""
    from pairforge.filters.iqa import MissingWeightsError, load_metric

    explicit = names is not None
    metrics, skipped = {}, {}
    for name in (names if explicit else DEFAULT_NR):
        try:
            metrics[name] = load_metric(name, device)
        except (MissingWeightsError, RuntimeError) as e:
            if explicit:
                raise
            skipped[name] = str(e).split(". ")[0]
    return metrics, skipped


def no_reference(metrics: dict, img: np.ndarray, device: str = "cpu") -> dict[str, float]:
    """Every loaded no-reference metric of one uint8 RGB image (NaN where a metric fails on it)."""
    import torch

    x = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1)[None].float().div(255).to(device)
    out = {}
    with torch.inference_mode():
        for name, m in metrics.items():
            try:
                out[name] = float(m(x).reshape(-1)[0])
            except Exception as e:  # noqa: BLE001 - e.g. an image too small for the metric's patches
                log.debug("no-reference %s failed: %s", name, e)
                out[name] = float("nan")
    return out


def lower_is_better(metrics: dict) -> dict[str, bool]:
    return {n: bool(getattr(m, "lower_better", False)) for n, m in metrics.items()}
