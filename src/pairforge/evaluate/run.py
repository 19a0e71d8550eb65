"""The evaluation loop: restore every item, score it and its do-nothing baseline, one row per item.

The baseline is what a model that does nothing delivers: the LQ itself for same-size pairs, its bicubic
upsampling for SR pairs (scored the same way, same border crop). A scale-1 model given SR pairs sees the
bicubic-upsampled LQ (as the trainer's ``data.lq_upsample``); an SR model given same-size pairs cannot be
evaluated on them and the item is skipped with its reason.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from pairforge.evaluate.data import EvalItem, iter_items
from pairforge.evaluate.metrics import (
    LPIPS,
    full_reference,
    load_nr_metrics,
    lower_is_better,
    no_reference,
)
from pairforge.io.provenance import degradations, source_label
from pairforge.train.restore import Restorer, restore_array

log = logging.getLogger("pairforge.evaluate")


@dataclass
class EvalResult:
    model: dict
    data: list[str]
    rows: list[dict]
    skipped: Counter = field(default_factory=Counter)
    lpips: bool = False
    nr_metrics: list[str] = field(default_factory=list)
    nr_lower_better: dict[str, bool] = field(default_factory=dict)
    nr_skipped: dict[str, str] = field(default_factory=dict)


def upsample(lq: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if lq.shape[:2] == shape[:2]:
        return lq
    return cv2.resize(lq, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def data_scale(lq: np.ndarray, hq: np.ndarray) -> int | None:
    """The integer HQ/LQ size ratio of a pair, or None when the sizes are not an integer ratio apart."""
    s = max(1, round(hq.shape[0] / lq.shape[0]))
    if abs(lq.shape[0] * s - hq.shape[0]) >= s or abs(lq.shape[1] * s - hq.shape[1]) >= s:
        return None
    return s


def groups_of(meta: dict, variant: int) -> dict:
    """The breakdown keys of an item: its degradation types, type+severity, and source."""
    degs = degradations(meta)
    d = degs[variant] if variant < len(degs) else None
    if d is None or (not d.components and d.model == "unknown"):
        comps = [("unrecorded", None)]
        label = "degradation not recorded"
    elif not d.components:  # a record with a kind/type but no per-op types
        comps = [(d.model, None)]
        label = d.label
    else:
        comps = list(d.components)
        label = d.label
    return {"types": [t for t, _ in comps], "severities": [f"{t} {s or 'n/a'}" for t, s in comps],
            "source": source_label(meta), "label": label}


def prepare(r: Restorer, item: EvalItem) -> tuple[np.ndarray | None, int, str | None]:
    """(model input, border crop, skip reason) of an item."""
    if item.hq is None:
        return item.lq, 0, None
    s = data_scale(item.lq, item.hq)
    if s is None:
        return None, 0, "size_mismatch"
    if s == r.scale:
        return item.lq, (s if s > 1 else 0), None
    if r.scale == 1:
        return upsample(item.lq, item.hq.shape), s, None
    return None, 0, f"scale_mismatch_x{s}_data_x{r.scale}_model"


def run_item(r: Restorer, x: np.ndarray, hq_shape: tuple[int, ...] | None, tile: int | None, tile_pad: int) -> np.ndarray:
    out = restore_array(r, x, tile, tile_pad)
    if hq_shape is not None and out.shape != hq_shape:  # an LQ one pixel short of HQ/scale
        h, w = min(out.shape[0], hq_shape[0]), min(out.shape[1], hq_shape[1])
        out = out[:h, :w]
    return out


def evaluate(r: Restorer, model_info: dict, locations: list[str], *, tile: int | None = 512, tile_pad: int = 32,
             lpips: str = "auto", nr: list[str] | None = None, lq_only: bool = False, limit: int | None = None,
             select: Callable[[EvalItem], bool] | None = None, progress: Callable[[int], None] | None = None,
             ) -> EvalResult:
    """Score ``r`` on every item of ``locations``; ``select`` keeps only some items (e.g. held-out sources)."""
    lp = LPIPS(lpips, r.device)
    res = EvalResult(model_info, list(locations), [], lpips=lp.available)
    nr_metrics: dict | None = None
    n = 0
    for loc in locations:
        for item in iter_items(loc, lq_only):
            if select is not None and not select(item):
                res.skipped["not_selected"] += 1
                continue
            x, border, why = prepare(r, item)
            if why is not None:
                res.skipped[why] += 1
                continue
            out = run_item(r, x, None if item.hq is None else item.hq.shape, tile, tile_pad)
            row = {"dataset": item.dataset, "key": item.key, "variant": item.variant,
                   **groups_of(item.meta, item.variant), "lq_size": list(item.lq.shape[:2])}
            if item.hq is not None:
                hq = item.hq[: out.shape[0], : out.shape[1]]
                base = upsample(item.lq, item.hq.shape)[: out.shape[0], : out.shape[1]]
                row["border"] = border
                row.update(full_reference(out, hq, border))
                row.update({f"base_{k}": v for k, v in full_reference(base, hq, border).items()})
                if lp.available:
                    row["lpips"] = lp(out, hq)
                    row["base_lpips"] = lp(base, hq)
            else:
                if nr_metrics is None:
                    nr_metrics, res.nr_skipped = load_nr_metrics(nr, str(r.device) if r.device.type == "cuda" else "cpu")
                    res.nr_metrics = list(nr_metrics)
                    res.nr_lower_better = lower_is_better(nr_metrics)
                dev = str(r.device) if r.device.type == "cuda" else "cpu"
                row.update({f"nr_{k}": v for k, v in no_reference(nr_metrics, out, dev).items()})
                row.update({f"base_nr_{k}": v for k, v in no_reference(nr_metrics, item.lq, dev).items()})
            res.rows.append(row)
            n += 1
            if progress is not None:
                progress(n)
            if limit is not None and n >= limit:
                return res
    return res


def gain(row: dict, nr_lower_better: dict[str, bool] | None = None) -> float:
    """How much the model improved this item over its baseline: PSNR dB for pairs, else the first
    no-reference metric's improvement (sign-adjusted so that higher is better)."""
    if "psnr" in row:
        return row["psnr"] - row["base_psnr"]
    for k, lower in (nr_lower_better or {}).items():
        a, b = row.get(f"nr_{k}"), row.get(f"base_nr_{k}")
        if a is not None and b is not None and not (math.isnan(a) or math.isnan(b)):
            return (b - a) if lower else (a - b)
    return float("nan")


def restore_items(r: Restorer, locations: Iterable[str], wanted: set[tuple[str, str]], *, tile: int | None,
                  tile_pad: int, lq_only: bool = False) -> dict[tuple[str, str], tuple[EvalItem, np.ndarray, np.ndarray]]:
    """(item, baseline, output) of the ``wanted`` (dataset, key) items: a second pass for the grid, so
    the first pass never holds images."""
    out = {}
    for loc in locations:
        for item in iter_items(loc, lq_only):
            if (item.dataset, item.key) not in wanted:
                continue
            x, _border, why = prepare(r, item)
            if why is not None:
                continue
            shape = None if item.hq is None else item.hq.shape
            y = run_item(r, x, shape, tile, tile_pad)
            base = item.lq if item.hq is None else upsample(item.lq, item.hq.shape)
            out[(item.dataset, item.key)] = (item, base, y)
    return out
