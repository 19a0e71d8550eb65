"""The real photographs that ship inside scikit-image, tiled: a dataset that exists on every machine."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from pairforge.sources.base import ImageSource, tile_origins
from pairforge.sources.config import BundledSourceConfig


@lru_cache(maxsize=None)
def load_bundled_photo(name: str) -> np.ndarray:
    """A bundled photo as uint8 RGB (gray photos are replicated to three channels)."""
    import skimage.data as data

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _disp = data.stereo_motorcycle()
        img = left if name == "motorcycle_left" else right
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img * (255.0 if img.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    img.setflags(write=False)
    return img


class BundledSource(ImageSource):
    kind = "bundled"

    def __init__(self, config: BundledSourceConfig):
        self.config = config
        crop = config.crop
        self._items: list[tuple[str, int, int]] = []  # (photo, y, x); y = x = -1 for whole photo
        for photo in config.photos:
            h, w = load_bundled_photo(photo).shape[:2]
            if crop.mode == "tiles":
                for y, x in tile_origins(h, w, crop.size, crop.stride or crop.size):
                    self._items.append((photo, y, x))
            else:
                self._items.append((photo, -1, -1))

    def __len__(self) -> int:
        return len(self._items)

    def load(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        from pairforge.sources.base import crop_image

        photo, y, x = self._items[index]
        img = load_bundled_photo(photo)
        meta = {"kind": "bundled", "photo": photo, "origin": f"skimage.data.{photo}", "original_size": list(img.shape[:2])}
        if y >= 0:
            s = self.config.crop.size
            out = np.ascontiguousarray(img[y : y + s, x : x + s])
            meta["crop"] = [y, x, s, s]
        else:
            out, box = crop_image(img, self.config.crop, rng, photo)
            if box is not None:
                meta["crop"] = box
            out = np.array(out)  # writable copy
        return out, meta
