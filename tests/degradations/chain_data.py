"""Small real photos for the chain tests: random square crops of bundled scikit-image photos."""
from __future__ import annotations

import cv2
import numpy as np

_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "motorcycle_left", "camera", "brick", "grass", "gravel", "moon", "page", "coins", "clock")
_CACHE: dict = {}


def _sources() -> list[np.ndarray]:
    if "src" not in _CACHE:
        import skimage.data as d

        out = []
        for name in _NAMES:
            try:
                img = getattr(d, name)()
            except Exception:  # a photo that would need a download
                continue
            if img.ndim == 2:
                img = np.stack([img] * 3, -1)
            out.append(np.ascontiguousarray(img[..., :3]))
        _CACHE["src"] = out
    return _CACHE["src"]


def photo_crops(n: int, size: int | tuple[int, int] = 128, seed: int = 0) -> list[np.ndarray]:
    """``n`` uint8 RGB crops (``size`` square or (h, w)); each a random region of a photo shrunk with
    INTER_AREA so that crops look like whole small photos rather than flat zoomed-in patches."""
    rng = np.random.default_rng(seed)
    h, w = (size, size) if isinstance(size, int) else size
    srcs = _sources()
    out = []
    for i in range(n):
        src = srcs[i % len(srcs)]
        sh, sw = src.shape[:2]
        f = rng.uniform(0.35, 0.9)
        ch, cw = int(min(sh, sw * h / w) * f), int(min(sw, sh * w / h) * f)
        t, l = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
        out.append(cv2.resize(src[t : t + ch, l : l + cw], (w, h), interpolation=cv2.INTER_AREA))
    return out


def lq_reference(hq: np.ndarray, lq_shape: tuple[int, int]) -> np.ndarray:
    """The clean image at the LQ size (area downscale), to measure how strong a degradation was."""
    return cv2.resize(hq, (lq_shape[1], lq_shape[0]), interpolation=cv2.INTER_AREA)
