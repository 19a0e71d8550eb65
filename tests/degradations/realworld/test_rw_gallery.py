"""The contact sheets: one PNG per type, photos x (clean + severities)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pairforge.degradations.realworld import NAMES
from pairforge.degradations.realworld.gallery import LABEL_H, make_gallery


def test_make_gallery_writes_one_sheet_per_type(tmp_path, photos):
    tile = 64
    paths = make_gallery(photos[:2], tmp_path / "g", tile=tile, seed=3)
    assert [p.stem for p in paths] == list(NAMES)
    for p in paths:
        img = cv2.imread(str(p))
        assert img.shape == (LABEL_H + 2 * (tile + 4), 4 * tile + 3 * 4, 3)
        clean = img[LABEL_H + 4:LABEL_H + 4 + tile, :tile]
        cells = [img[LABEL_H + 4:LABEL_H + 4 + tile, k * (tile + 4):k * (tile + 4) + tile] for k in (1, 2, 3)]
        # every severity column differs from the clean photo, and the levels differ from each other
        assert all(np.abs(c.astype(int) - clean.astype(int)).mean() > 0.5 for c in cells), p.stem
        assert not np.array_equal(cells[0], cells[2]), p.stem
    # deterministic
    again = make_gallery(photos[:2], tmp_path / "h", tile=tile, seed=3, types=["rain"])
    assert np.array_equal(cv2.imread(str(again[0])), cv2.imread(str(tmp_path / "g" / "rain.png")))


def test_make_gallery_arguments(tmp_path, photos):
    p = make_gallery(photos[:1], tmp_path, severities=["heavy"], types=["reflection", "haze"], tile=48)
    assert [x.name for x in p] == ["reflection.png", "haze.png"]
    assert cv2.imread(str(p[0])).shape[1] == 2 * 48 + 4
    with pytest.raises(ValueError, match="allowed"):
        make_gallery(photos, tmp_path, types=["fog"])
    with pytest.raises(ValueError, match="severities"):
        make_gallery(photos, tmp_path, severities=["extreme"])
    with pytest.raises(ValueError, match="at least one"):
        make_gallery([], tmp_path)
