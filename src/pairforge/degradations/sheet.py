"""A contact sheet of what any ``degrade:`` config does (``pairforge gallery --degrade-config FILE``).

Why: before a large run you want to see a config's pairs, whatever its kind (a chain preset, the
real-world types, a mix). Each photo is centre-cropped to a square tile, degraded ``columns`` times
with different seeds (the seeds a run with the same seed would give samples 0, 1, ...), and drawn as
HQ | LQ | LQ ... with each LQ captioned by what was done (type and severity, or the preset) and its
PSNR to the HQ at the LQ size. LQs are upscaled with nearest neighbour so their pixels stay visible.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pairforge.seeding import sample_seed


def degrade_section(data: dict, origin: str) -> Any:
    """The validated degrade config of a YAML mapping: a run config (with ``degrade:``) or a bare
    degrade section (with ``kind:``)."""
    from pairforge.config import ConfigError, PipelineConfig, validate_model

    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping, got {type(data).__name__}")
    if "degrade" in data:
        return validate_model(PipelineConfig, data, origin).degrade
    if "kind" not in data:
        raise ConfigError(f"{origin}: holds neither a degrade: section nor a degrade kind: (e.g. kind: chain)")
    return validate_model(PipelineConfig, {"degrade": data}, origin).degrade


def _square(img: np.ndarray, tile: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    s = min(h, w)
    c = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return c if s == tile else cv2.resize(c, (tile, tile), interpolation=cv2.INTER_AREA)


def _psnr_at_lq_size(hq: np.ndarray, lq: np.ndarray) -> float:
    from pairforge.degradations.resize import resize_image

    ref = resize_image(hq, lq.shape[:2], "area") if hq.shape != lq.shape else hq
    mse = float(np.mean((ref.astype(np.float64) - lq.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def degrade_sheet(images: Sequence[np.ndarray], config: Any, out: str | Path, columns: int = 4, seed: int = 0,
                  tile: int = 192, cell: int = 192) -> Path:
    """Write one PNG: a row per photo, HQ then ``columns`` LQs of ``config``; returns its path."""
    from pairforge.degradations.base import build_degrader
    from pairforge.io.provenance import describe_degradation
    from pairforge.preview import Item, Tile, render

    if not images:
        raise ValueError("the sheet needs at least one photo")
    tiles = [_square(np.asarray(im)[..., :3].astype(np.uint8), tile) for im in images]
    degrader = build_degrader(config)
    n = len(tiles)
    rows = []
    for i, hq in enumerate(tiles):
        indices = [i + n * c for c in range(columns)]
        seeds = [sample_seed(seed, j, "degrade") for j in indices]
        aux = [{"index": j, "key": f"{j:010d}", "num_samples": n * columns,
                "load_image": lambda k: tiles[k % n]} for j in indices]
        results = degrader.degrade([hq] * columns, seeds, aux)
        cells = [Tile(hq, [f"photo {i}", f"HQ {hq.shape[1]}x{hq.shape[0]}"])]
        for r in results:
            ref = r.hq if r.hq is not None else hq
            d = describe_degradation(r.params)
            cells.append(Tile(r.lq, [f"{d.label}, {_psnr_at_lq_size(ref, r.lq):.1f} dB", f"LQ {r.lq.shape[1]}x{r.lq.shape[0]}"]))
        rows.append((None, [Item(f"photo {i}", cells)]))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    render(rows, cell).save(out)
    return out
