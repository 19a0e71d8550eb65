"""Scene depth for the depth-aware types (haze, rain, depth-dependent defocus).

Two sources, chosen by config and always recorded in the params (``depth_source``, ``depth_form``):

- ``transformers``: a monocular depth network (Depth Anything V2, DPT / MiDaS, ...) loaded with
  ``AutoModelForDepthEstimation.from_pretrained`` from a local directory or a cached hub id, offline,
  run once per batch on the images that need depth.
- no model: the weight-free scene model (:mod:`.scene`), which gives a depth only when the photo has a
  usable layout cue and otherwise says so (the depth-dependent types then take scene-neutral forms).

Convention everywhere: a float32 H x W map in [0, 1], 0 = nearest, 1 = farthest.
"""
from __future__ import annotations

import abc
from typing import Literal

import numpy as np
from pydantic import Field

from pairforge.configbase import StrictModel
from pairforge.devices import resolve_device
from pairforge.errors import ModelLoadError


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
    batch_size: int = Field(8, ge=1, le=256, description="images per forward pass")

    def build(self) -> DepthProvider:
        if not self.model:
            raise ValueError("depth.model is not set: without a model the scene model gives depth "
                             "(pairforge.degradations.realworld.scene)")
        return TransformersDepth(self)


class DepthProvider(abc.ABC):
    source: str = "depth"

    @abc.abstractmethod
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The depth map for an RGB uint8 image."""

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Depth maps of several images (providers with a network run them together)."""
        return [self(im) for im in images]


def normalise(x: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> np.ndarray:
    """Robustly map to [0, 1] (percentile stretch): outliers do not flatten the rest of the map."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32))
    lo, hi = np.percentile(x, [lo_pct, hi_pct])
    if hi - lo < 1e-8:
        return np.full(x.shape, 0.5, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)




def pretrained_kwargs(config) -> dict:
    """``from_pretrained`` arguments: offline always, with the configured revision / cache."""
    kw: dict = {"local_files_only": True}
    if getattr(config, "revision", None):
        kw["revision"] = config.revision
    if getattr(config, "cache_dir", None):
        kw["cache_dir"] = config.cache_dir
    return kw


def offline_error(what: str, model: str, err: Exception) -> ModelLoadError:
    reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
    return ModelLoadError(
        f"{what} model {model!r} could not be loaded offline ({reason}). Point the config at a local "
        f"directory, or fetch the weights into the cache first (`pairforge models pull CONFIG --cache DIR`); "
        f"nothing is downloaded during a run."
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
        return self.batch([image])[0]

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One forward pass per group of same-size images (``batch_size`` at most), on the GPU when
        configured; each map resized back to its image and normalised to 0 near .. 1 far."""
        import torch

        self.load()
        out: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape[:2], []).append(i)
        bs = max(1, self.config.batch_size)
        for (h, w), idx in groups.items():
            for k in range(0, len(idx), bs):
                part = idx[k:k + bs]
                inputs = self._processor(images=[images[i] for i in part], return_tensors="pt").to(self.device)
                with torch.no_grad():
                    pred = self._model(**inputs).predicted_depth
                if pred.ndim == 3:
                    pred = pred[:, None]
                pred = torch.nn.functional.interpolate(pred.float(), size=(h, w), mode="bicubic", align_corners=False)
                for j, i in enumerate(part):
                    x = normalise(pred[j, 0].cpu().numpy())
                    # relative models predict disparity (large = near); the convention here is 1 = far
                    out[i] = (1.0 - x if self.config.output == "disparity" else x).astype(np.float32)
        return out
