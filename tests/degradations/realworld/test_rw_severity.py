"""Severity names mean measured strengths: each type's median PSNR / SSIM on the fixed photo set falls in
its documented band, ordered light > medium > heavy (the table of docs/degradations.md)."""
from __future__ import annotations

import itertools

import pytest

from pairforge.degradations.realworld import NAMES, SEVERITIES
from pairforge.degradations.realworld.severity import BANDS, measure, photo_set


@pytest.fixture(scope="module")
def measured():
    return measure(NAMES, photo_set())


@pytest.mark.parametrize("name", NAMES)
def test_levels_fall_in_their_bands_and_are_ordered(name, measured):
    m = measured[name]
    for sev in SEVERITIES:
        for key in ("psnr", "ssim"):
            lo, hi = BANDS[name][sev][key]
            assert lo <= m[sev][key] <= hi, (name, sev, key, m[sev][key], (lo, hi))
    for key in ("psnr", "ssim"):
        vals = [m[s][key] for s in SEVERITIES]
        assert all(a > b for a, b in itertools.pairwise(vals)), (name, key, vals)


def test_bands_are_ordered_and_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "degradations.md").read_text()
    for name in NAMES:
        assert f"| {name} |" in doc
        for key in ("psnr", "ssim"):
            lows = [BANDS[name][s][key][0] for s in SEVERITIES]
            assert all(a > b for a, b in itertools.pairwise(lows)), (name, key, lows)
