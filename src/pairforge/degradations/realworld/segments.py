"""Segment masks for the segment-aware types (object motion blur, region-wise noise).

Two providers, chosen by config and recorded in the params (``segments_source``):

- ``transformers``: SAM / SAM-HQ / SAM-2 (``SamModel`` and friends) prompted with a regular grid of
  points, loaded offline with ``from_pretrained``; each point's best mask (by predicted IoU) becomes a
  segment, smaller masks painted over larger ones.
- ``classical``: weight-free: superpixels of the scene model merged to exactly the requested count
  (``merge``, the default), or scikit-image's Felzenszwalb / SLIC over-segmentation merged down to it.

Output everywhere: an int32 H x W label map, 0..K-1 (label 0 may be "unassigned" for SAM).
"""
from __future__ import annotations

import abc
from typing import Literal

import numpy as np
from pydantic import Field

from pairforge.configbase import StrictModel
from pairforge.degradations.realworld.depth import (
    offline_error,
    pretrained_kwargs,
)
from pairforge.devices import resolve_device


class SegmentsConfig(StrictModel):
    model: str | None = Field(
        None, description="local path or hub id of a SAM / SAM-2 checkpoint; None uses over-segmentation"
    )
    revision: str | None = Field(None, description="hub revision of the model")
    cache_dir: str | None = Field(None, description="HF cache directory the model was pulled into")
    points_per_side: int = Field(6, ge=1, le=32, description="SAM prompt grid (n x n points)")
    batch_size: int = Field(4, ge=1, le=64, description="images per forward pass")
    min_iou: float = Field(0.5, ge=0.0, le=1.0, description="drop SAM masks with lower predicted IoU")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    method: Literal["merge", "felzenszwalb", "slic"] = Field("merge", description="classical fallback")
    segments: int = Field(12, ge=2, le=64, description="number of classical segments (exact unless the image "
                          "has fewer distinct regions)")

    def build(self) -> SegmentProvider:
        if self.model:
            return SamSegments(self)
        return ClassicalSegments(self.method, self.segments)


class SegmentProvider(abc.ABC):
    source: str = "segments"

    @abc.abstractmethod
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The label map for an RGB uint8 image."""

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Label maps of several images (providers with a network run them together)."""
        return [self(im) for im in images]


def classical_segments(image: np.ndarray, method: str = "merge", n: int = 12, max_side: int = 128) -> np.ndarray:
    """Weight-free segmentation with ``n`` regions: the scene model's superpixels merged by colour
    (``merge``), or scikit-image's over-segmentation at a short side of <= ``max_side`` px merged down
    to ``n``; labels are upsampled to the image size."""
    import cv2

    from pairforge.degradations.realworld.scene import analyse, merge_to

    if method == "merge":
        return analyse(image, superpixel_count=max(64, 4 * n)).segments(n)
    from skimage.segmentation import felzenszwalb, slic

    h, w = image.shape[:2]
    f = min(1.0, max_side / min(h, w))
    small = cv2.resize(image, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA) \
        if f < 1 else image
    sh, sw = small.shape[:2]
    if method == "slic":
        labels = slic(small, n_segments=max(32, 4 * n), compactness=10.0, start_label=0, channel_axis=2)
    else:
        labels = felzenszwalb(small, scale=float(sh * sw) / max(1, n) / 8.0, sigma=0.8,
                              min_size=max(16, sh * sw // (n * 8)))
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    labels = merge_to(relabel(labels), lab, n)
    if (sh, sw) != (h, w):
        labels = cv2.resize(labels.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    return relabel(labels)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 0..K-1 in order of first appearance (stable across runs)."""
    _, inv = np.unique(labels.ravel(), return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32)


class ClassicalSegments(SegmentProvider):
    def __init__(self, method: str = "felzenszwalb", n: int = 12):
        self.method = method
        self.n = n
        self.source = f"classical:{method}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return classical_segments(image, self.method, self.n)


class SamSegments(SegmentProvider):
    """SAM-family promptable segmentation, prompted by a point grid (automatic-mask style)."""

    def __init__(self, config: SegmentsConfig):
        self.config = config
        self.source = f"transformers:{config.model}"
        self._model = None

    def load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoConfig, AutoProcessor

        try:
            kw = pretrained_kwargs(self.config)
            cfg = AutoConfig.from_pretrained(self.config.model, **kw)
        except (OSError, ValueError) as e:
            raise offline_error("segmentation", str(self.config.model), e) from None
        model_cls = _sam_class(cfg.model_type)
        try:
            self._processor = AutoProcessor.from_pretrained(self.config.model, **kw)
            model = model_cls.from_pretrained(self.config.model, **kw)
        except (OSError, ValueError) as e:
            raise offline_error("segmentation", str(self.config.model), e) from None
        self.device = resolve_device(self.config.device)
        self._model = model.to(self.device).eval()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.batch([image])[0]

    def batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Automatic masks for several images in one forward pass each ``batch_size`` images (the
        same point grid, scaled to each image)."""
        import torch

        self.load()
        n = self.config.points_per_side
        out = []
        bs = max(1, self.config.batch_size)
        for k in range(0, len(images), bs):
            part = images[k:k + bs]
            points = []
            for im in part:
                h, w = im.shape[:2]
                ys = (np.arange(n) + 0.5) * h / n
                xs = (np.arange(n) + 0.5) * w / n
                points.append([[[float(x), float(y)]] for y in ys for x in xs])  # point batch, points, xy
            inputs = self._processor(images=list(part), input_points=points, return_tensors="pt").to(self.device)
            with torch.no_grad():
                res = self._model(**inputs, multimask_output=True)
            sizes = inputs["original_sizes"].cpu()
            if "reshaped_input_sizes" in inputs:
                masks = self._processor.post_process_masks(res.pred_masks.cpu(), sizes,
                                                           inputs["reshaped_input_sizes"].cpu())
            else:
                masks = self._processor.post_process_masks(res.pred_masks.cpu(), sizes)
            for j in range(len(part)):
                m = masks[j].numpy().astype(bool)  # point batch x multimask x H x W
                iou = res.iou_scores[j].float().cpu().numpy()  # point batch x multimask
                out.append(masks_to_labels(m, iou, self.config.min_iou))
        return out


def _sam_class(model_type: str):
    import transformers

    classes = {"sam": "SamModel", "sam_hq": "SamHQModel", "sam2": "Sam2Model"}
    if model_type not in classes:
        raise ValueError(f"not a SAM-family checkpoint (model_type={model_type!r}; allowed: {sorted(classes)})")
    return getattr(transformers, classes[model_type])


def masks_to_labels(masks: np.ndarray, iou: np.ndarray, min_iou: float) -> np.ndarray:
    """Best mask per prompt point -> one label map; duplicates (IoU > 0.8) are merged, small masks win."""
    h, w = masks.shape[-2:]
    chosen: list[np.ndarray] = []
    for p in range(masks.shape[0]):
        k = int(np.argmax(iou[p]))
        m = masks[p, k]
        if iou[p, k] < min_iou or m.sum() < 16:
            continue
        if any((m & c).sum() / max(1, (m | c).sum()) > 0.8 for c in chosen):
            continue
        chosen.append(m)
    labels = np.zeros((h, w), dtype=np.int32)
    for i, m in sorted(enumerate(chosen), key=lambda t: -int(t[1].sum())):
        labels[m] = i + 1
    return relabel(labels)


def scene_segments(image: np.ndarray, aux: dict | None, n: int = 12) -> np.ndarray:
    """The label map a type should use: ``aux["segments"]`` when given (a model's, or the caller's),
    else the scene model's ``n`` segments."""
    s = (aux or {}).get("segments")
    h, w = image.shape[:2]
    if s is None:
        from pairforge.degradations.realworld.scene import scene_of

        return scene_of(image, aux).segments(n, (h, w))
    s = np.asarray(s)
    if s.shape != (h, w):
        import cv2

        s = cv2.resize(s.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    return s.astype(np.int32)


def pick_segment(labels: np.ndarray, u: float, min_frac: float = 0.03, max_frac: float = 0.5) -> np.ndarray:
    """A deterministic choice of one segment from a uniform number ``u`` in [0, 1): among segments
    covering ``min_frac``..``max_frac`` of the image (sorted by label), else the one closest to it."""
    ids, counts = np.unique(labels, return_counts=True)
    frac = counts / labels.size
    ok = ids[(frac >= min_frac) & (frac <= max_frac)]
    if ok.size == 0:
        target = np.sqrt(min_frac * max_frac)
        ok = ids[[int(np.argmin(np.abs(np.log(frac / target))))]]
    return labels == ok[min(int(u * ok.size), ok.size - 1)]
