"""Shared fixtures of the real-world degradation tests: real photos, downscaled for speed."""
from __future__ import annotations

import numpy as np
import pytest


def _photo(name: str, size: int = 128) -> np.ndarray:
    import cv2
    from skimage import data

    img = getattr(data, name)()
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(cv2.resize(img[y0:y0 + s, x0:x0 + s], (size, size), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """astronaut, coffee, chelsea at 128 x 128."""
    return [_photo(n) for n in ("astronaut", "coffee", "chelsea")]


@pytest.fixture(scope="session")
def photo_of():
    """A bundled photo by name, centre-cropped square and resized: ``photo_of("rocket", 160)``.
    A fixture, not ``from conftest import``: in a whole-suite run ``conftest`` names another folder's."""
    return _photo


@pytest.fixture(scope="session")
def small_photo() -> np.ndarray:
    return _photo("rocket", 64)
