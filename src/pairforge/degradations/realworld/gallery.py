"""Contact sheets: one PNG per type showing a few photos at several severities, to see at a glance
that every type looks like the real thing (and to tune a config before a large run).

Each photo is centre-cropped to a square tile first and degraded at that size, so what the sheet shows
are the real pixels (no resampling hides noise, moire or blocking). The same seed is used across the
severities of a photo, so a row differs only by level.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from pairforge.degradations.realworld.common import SEVERITIES, fit_to
from pairforge.degradations.realworld.registry import NAMES
from pairforge.seeding import sample_seed

LABEL_H = 22


def _label(width: int, text: str, height: int = LABEL_H) -> np.ndarray:
    bar = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (4, height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def make_gallery(
    images: Sequence[np.ndarray],
    out_dir: str | Path,
    severities: Sequence[str] = SEVERITIES,
    types: Sequence[str] | None = None,
    seed: int = 0,
    tile: int = 192,
    config=None,
) -> list[Path]:
    """Write ``<out_dir>/<type>.png`` for each type (default: all nine); returns the paths.

    ``images``: uint8 RGB arrays (two or more, so reflection can use the next photo as its second
    image); ``severities``: columns after the clean one; ``config``: a ``RealWorldDegradeConfig`` whose
    per-type sections and depth / segment providers are used (default config otherwise).
    """
    from pairforge.degradations.realworld.degrader import (
        RealWorldDegradeConfig,
        RealWorldDegrader,
    )

    if not images:
        raise ValueError("make_gallery needs at least one image")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"unknown severities {bad} (allowed: {', '.join(SEVERITIES)})")
    types = list(types) if types is not None else list(NAMES)
    unknown = [t for t in types if t not in NAMES]
    if unknown:
        raise ValueError(f"unknown types {unknown} (allowed: {', '.join(NAMES)})")
    base = config if config is not None else RealWorldDegradeConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tiles = [fit_to(np.asarray(im)[..., :3].astype(np.uint8), (tile, tile)) for im in images]
    degraders = {}
    for sev in severities:
        degraders[sev] = RealWorldDegrader(base.model_copy(update={"severity": sev}))
    paths = []
    for name in types:
        rows = []
        for i, hq in enumerate(tiles):
            aux = {"index": i, "second_image": tiles[(i + 1) % len(tiles)] if len(tiles) > 1 else hq[::-1]}
            s = sample_seed(seed, i, f"gallery:{name}")
            cells = [hq]
            for sev in severities:
                d = degraders[sev]
                t = d.types[name]
                rng = np.random.Generator(np.random.PCG64(s))
                params = t.sample(rng)
                local = dict(aux)
                d.prepare_scene(hq, t.needs(params), local)
                params.update(t.bind(hq, params, local))
                cells.append(t.apply(hq, params, local))
            gap = np.full((tile, 4, 3), 255, np.uint8)
            row = cells[0]
            for c in cells[1:]:
                row = np.concatenate([row, gap, c], axis=1)
            rows.append(row)
        width = rows[0].shape[1]
        parts = []
        for j, text in enumerate([f"{name}: clean", *severities]):
            if j:
                parts.append(np.full((LABEL_H, 4, 3), 255, np.uint8))
            parts.append(_label(tile, text))
        header = np.concatenate(parts, axis=1)
        sheet = [header]
        for r in rows:
            sheet += [np.full((4, width, 3), 255, np.uint8), r]
        img = np.concatenate(sheet, axis=0)
        path = out / f"{name}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths
