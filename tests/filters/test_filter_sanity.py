"""Sanity checks: every rule fires on the image it is meant for, and a real photo passes all of them."""
import numpy as np
import pytest
from conftest import photo

from pairforge.batch import new_batch
from pairforge.filters.config import SanityFilterConfig
from pairforge.filters.sanity import check_image
from pairforge.stage import RunContext
from pairforge.stages.filters import SanityStage

CFG = SanityFilterConfig(min_size=32, max_pixels=300 * 300, max_aspect=3.0, max_channel_clipped=0.3)


def _bad_images():
    a = photo("astronaut", 128)
    nan = a.astype(np.float32)
    nan[3, 4, 1] = np.nan
    inf = a.astype(np.float32)
    inf[0, 0, 0] = np.inf
    saturated = a.copy()
    saturated[:100] = 255
    oversat = a.copy()
    oversat[:60, :, 0] = 255  # red channel blown in the top half: colour clipping, not white
    return {
        "missing": None,
        "not_an_array": [[1, 2, 3]],
        "nan": nan,
        "nan_inf": inf,
        "channels": a[..., 0],
        "dtype": a.astype(np.uint16),
        "too_small": a[:20, :20],
        "too_large": np.tile(a, (3, 3, 1)),
        "aspect": np.ascontiguousarray(np.tile(a, (1, 4, 1))[:40]),
        "flat": np.full((128, 128, 3), 200, np.uint8),
        "flat_black_from_nan_cast": np.zeros((128, 128, 3), np.uint8),
        "saturated": saturated,
        "oversaturated": oversat,
    }


@pytest.mark.parametrize("case", list(_bad_images()))
def test_each_rule_rejects_its_image(case):
    img = _bad_images()[case]
    rej, _stats = check_image(img, CFG)
    expected = {"nan_inf": "nan", "flat_black_from_nan_cast": "flat"}.get(case, case)
    assert rej is not None and rej.rule == expected
    assert rej.stage == "sanity" and rej.reason


def test_real_photos_pass_and_stats_are_recorded():
    for name in ("astronaut", "coffee", "rocket", "chelsea"):
        rej, stats = check_image(photo(name, 128), CFG)
        assert rej is None, (name, rej)
        assert stats["size"] == [128, 128] and stats["luma_std"] > 10
        assert 0 <= stats["channel_clipped_fraction"] <= 1


def test_stage_marks_rows_with_stage_rule_value_and_keeps_every_row():
    imgs = [photo("coffee", 96), np.full((96, 96, 3), 7, np.uint8), photo("rocket", 96)[:20]]
    batch = new_batch([10, 11, 12])
    batch["hq"] = imgs
    st = SanityStage(SanityFilterConfig(name="sane", min_size=32), RunContext())
    out = st(batch)
    assert out["index"] == [10, 11, 12]
    assert out["reject"][0] is None and "sane" in out["meta"][0]["filters"]
    assert out["reject"][1]["stage"] == "sane" and out["reject"][1]["rule"] == "flat"
    assert out["reject"][1]["value"] < 3.0
    assert out["reject"][2]["rule"] == "too_small" and out["reject"][2]["value"] == 20
    assert out["hq"][1] is None  # rejected rows drop their pixels
