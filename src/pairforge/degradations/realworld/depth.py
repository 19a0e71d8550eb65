"""Scene depth for the depth-aware types (haze, rain, depth-dependent defocus).

Two providers, chosen by config and always recorded in the params (``depth_source``):

- ``transformers``: a monocular depth network (DPT / MiDaS, Depth Anything, ...) loaded with
  ``AutoModelForDepthEstimation.from_pretrained`` from a local directory or a cached hub id, offline.
- ``prior``: an explicit, weight-free fallback. Outdoor photos usually look down on near ground and up
  at far sky, so depth grows with height in the frame; flat, texture-poor regions (sky, fog, walls at a
  distance) are pushed further. It is a prior, not a measurement, which is why it is named in the
  metadata of every sample that used it.

Convention everywhere: a float32 H x W map in [0, 1], 0 = nearest, 1 = farthest.
"""
from __future__ import annotations

import abc
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import StrictModel


class DepthConfig(StrictModel):
    model: str | None = Field(
        None, description="local path or hub id of a depth-estimation model (DPT, Depth Anything); "
        "None uses the explicit prior"
    )
    output: Literal["disparity", "depth"] = Field(
        "disparity", description="what the model predicts: relative inverse depth (DPT/MiDaS/Depth "
        "Anything) or depth (metric models)"
    )
    revision: str | None = Field(None, description="hub revision of the model")
    cache_dir: str | None = Field(None, description="HF cache directory the model was pulled into")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    prior: Literal["vertical", "vertical_texture", "constant"] = Field(
        "vertical_texture", description="fallback when no model is set"
    )
    texture_weight: float = Field(0.3, ge=0.0, le=1.0, description="share of the texture cue in the prior")

    def build(self) -> DepthProvider:
        if self.model:
            return TransformersDepth(self)
        return PriorDepth(self.prior, self.texture_weight)


class DepthProvider(abc.ABC):
    source: str = "depth"

    @abc.abstractmethod
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The depth map / label map for an RGB uint8 image."""


def normalise(x: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> np.ndarray:
    """Robustly map to [0, 1] (percentile stretch): outliers do not flatten the rest of the map."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32))
    lo, hi = np.percentile(x, [lo_pct, hi_pct])
    if hi - lo < 1e-8:
        return np.full(x.shape, 0.5, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def prior_depth(image: np.ndarray, kind: str = "vertical_texture", texture_weight: float = 0.3) -> np.ndarray:
    """The weight-free fallback depth (see module docstring)."""
    h, w = image.shape[:2]
    if kind == "constant":
        return np.full((h, w), 0.5, dtype=np.float32)
    if kind == "vertical":
        return np.repeat(np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None], w, axis=1)
    # every cue is smooth: work at a short side of <= 128 px (fast at any size), then upsample
    f = min(1.0, 128.0 / min(h, w))
    sw, sh = max(8, round(w * f)), max(8, round(h * f))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA) if f < 1 else image
    s = min(sh, sw) / 64.0
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), sigmaX=4.0 * s)
    flatness = 1.0 - normalise(energy, 5, 95)
    vertical = np.repeat(np.linspace(1.0, 0.0, sh, dtype=np.float32)[:, None], sw, axis=1)
    d = cv2.GaussianBlur((1.0 - texture_weight) * vertical + texture_weight * flatness, (0, 0), sigmaX=2.0 * s)
    if (sh, sw) != (h, w):
        d = cv2.resize(d, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(d, 0.0, 1.0).astype(np.float32)


class PriorDepth(DepthProvider):
    def __init__(self, kind: str = "vertical_texture", texture_weight: float = 0.3):
        self.kind = kind
        self.texture_weight = texture_weight
        self.source = f"prior:{kind}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return prior_depth(image, self.kind, self.texture_weight)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pretrained_kwargs(config) -> dict:
    """``from_pretrained`` arguments: offline always, with the configured revision / cache."""
    kw: dict = {"local_files_only": True}
    if getattr(config, "revision", None):
        kw["revision"] = config.revision
    if getattr(config, "cache_dir", None):
        kw["cache_dir"] = config.cache_dir
    return kw


def offline_error(what: str, model: str, err: Exception) -> RuntimeError:
    return RuntimeError(
        f"{what} model {model!r} could not be loaded offline ({type(err).__name__}: {err}). Point the "
        f"config at a local directory, or fetch the weights into the cache first (`pairforge models "
        f"pull <config>`); nothing is downloaded during a run."
    )


class TransformersDepth(DepthProvider):
    """A transformers depth-estimation model, loaded once and run on one image at a time."""

    def __init__(self, config: DepthConfig):
        self.config = config
        self.source = f"transformers:{config.model}"
        self._model = None
        self._processor = None

    def load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        try:
            kw = pretrained_kwargs(self.config)
            self._processor = AutoImageProcessor.from_pretrained(self.config.model, **kw)
            model = AutoModelForDepthEstimation.from_pretrained(self.config.model, **kw)
        except (OSError, ValueError) as e:
            raise offline_error("depth", str(self.config.model), e) from None
        self.device = resolve_device(self.config.device)
        self._model = model.to(self.device).eval()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch

        self.load()
        h, w = image.shape[:2]
        inputs = self._processor(images=image, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self._model(**inputs)
        pred = out.predicted_depth
        if pred.ndim == 3:
            pred = pred[:, None]
        pred = torch.nn.functional.interpolate(pred.float(), size=(h, w), mode="bicubic", align_corners=False)
        x = normalise(pred[0, 0].cpu().numpy())
        # relative models predict disparity (large = near); the convention here is 1 = far
        return (1.0 - x if self.config.output == "disparity" else x).astype(np.float32)


def scene_depth(image: np.ndarray, aux: dict | None) -> np.ndarray:
    """The depth a type should use: ``aux["depth"]`` when given (resized if needed), else the
    default prior (the composition puts the configured provider's map and its name into aux)."""
    d = (aux or {}).get("depth")
    h, w = image.shape[:2]
    if d is None:
        return prior_depth(image)
    d = np.asarray(d, dtype=np.float32)
    if d.shape != (h, w):
        d = cv2.resize(d, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.nan_to_num(d, nan=0.5), 0.0, 1.0)
