"""What ``pairforge evaluate`` shows: means per group (all items, by degradation type, type+severity,
source) of the model and its baseline, as a rich table, as JSON, and as an image grid of the worst,
median and best item of every type (ranked by the gain over the baseline)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from pairforge.evaluate.run import EvalResult, gain

BY = ("type", "severity", "source")
_GROUP_FIELD = {"type": "types", "severity": "severities", "source": "source"}


def _keys(row: dict, by: str) -> list[str]:
    v = row[_GROUP_FIELD[by]]
    return list(v) if isinstance(v, list) else [v]


def metric_names(res: EvalResult) -> list[str]:
    """Model metrics present in the rows (``psnr``, ``psnr_y``, ..., ``nr_piqe``), in a stable order."""
    order = ["psnr", "psnr_y", "ssim", "ssim_y", "lpips"] + [f"nr_{m}" for m in res.nr_metrics]
    return [m for m in order if any(m in r for r in res.rows)]


def _mean(values: list[float]) -> float | None:
    v = [x for x in values if x is not None and not math.isnan(x) and not math.isinf(x)]
    return float(np.mean(v)) if v else None


def summarize(rows: list[dict], metrics: list[str], nr_lower_better: dict[str, bool]) -> dict:
    out: dict = {"n": len(rows)}
    for m in metrics:
        a = _mean([r.get(m) for r in rows])
        b = _mean([r.get(f"base_{m}") for r in rows])
        out[m] = a
        out[f"base_{m}"] = b
        out[f"delta_{m}"] = None if a is None or b is None else a - b
    out["gain"] = _mean([gain(r, nr_lower_better) for r in rows])
    return out


def breakdown(res: EvalResult, by: str) -> dict[str, dict]:
    metrics = metric_names(res)
    groups: dict[str, list[dict]] = {}
    for r in res.rows:
        for k in _keys(r, by):
            groups.setdefault(k, []).append(r)
    return {k: summarize(v, metrics, res.nr_lower_better) for k, v in sorted(groups.items())}


def to_json(res: EvalResult) -> dict:
    metrics = metric_names(res)
    return {
        "model": res.model,
        "data": res.data,
        "metrics": metrics,
        "lpips": res.lpips,
        "no_reference": {"metrics": res.nr_metrics, "lower_is_better": res.nr_lower_better,
                         "skipped": res.nr_skipped},
        "baseline": "identity for same-size pairs, bicubic upsampling of the LQ for SR pairs",
        "border_crop": "the data scale for SR pairs (0 for same-size), on every side",
        "overall": summarize(res.rows, metrics, res.nr_lower_better),
        "by": {b: breakdown(res, b) for b in BY},
        "skipped": dict(res.skipped),
        "samples": res.rows,
    }


def _finite(obj):
    """NaN/inf (an identical output, a metric that failed) as null: strict JSON for any reader."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(res: EvalResult, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(to_json(res)), indent=1, allow_nan=False))


def _fmt(v: float | None, m: str) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if m.startswith(("ssim", "lpips")) else f"{v:.2f}"


def table(res: EvalResult, by: str = "type"):
    """A rich Table: one row per group (then 'all'); for the Y-channel metrics (and LPIPS, no-reference
    scores) the model, the baseline and the difference; for RGB the difference only (all in the JSON)."""
    from rich.table import Table

    metrics = metric_names(res)
    full = [m for m in metrics if m in ("psnr_y", "ssim_y", "lpips") or m.startswith("nr_")]
    delta_only = [m for m in metrics if m in ("psnr", "ssim")]
    base_name = "identity/bicubic" if any("psnr" in r for r in res.rows) else "LQ"
    t = Table(title=f"evaluate {res.model.get('path')}: {len(res.rows)} items, model vs baseline ({base_name})")
    t.add_column(by)
    t.add_column("n", justify="right")
    for m in full:
        name = m.removeprefix("nr_").upper().replace("_Y", "-Y")
        t.add_column(name, justify="right")
        t.add_column("base", justify="right", style="dim")
        t.add_column("Δ", justify="right")
    for m in delta_only:
        t.add_column(f"Δ{m.upper()}-RGB", justify="right")
    rows = list(breakdown(res, by).items()) + [("all", summarize(res.rows, metrics, res.nr_lower_better))]
    for i, (name, s) in enumerate(rows):
        cells = []
        for m in full:
            d = s.get(f"delta_{m}")
            cells += [_fmt(s.get(m), m), _fmt(s.get(f"base_{m}"), m), _signed(d, m)]
        cells += [_signed(s.get(f"delta_{m}"), m) for m in delta_only]
        t.add_row(name, str(s["n"]), *cells, end_section=i == len(rows) - 2)
    return t


def _signed(v: float | None, m: str) -> str:
    return "-" if v is None else ("+" if v >= 0 else "") + _fmt(v, m)


def pick_grid(res: EvalResult, by: str = "type") -> dict[str, list[tuple[str, dict]]]:
    """Per group: [("worst", row), ("median", row), ("best", row)] by gain over the baseline."""
    out = {}
    groups: dict[str, list[dict]] = {}
    for r in res.rows:
        if not math.isnan(gain(r, res.nr_lower_better)):
            for k in _keys(r, by):
                groups.setdefault(k, []).append(r)
    for k, rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda r: gain(r, res.nr_lower_better))
        picks = [("worst", rows[0]), ("median", rows[len(rows) // 2]), ("best", rows[-1])]
        seen, uniq = set(), []
        for name, r in picks:
            if (r["dataset"], r["key"]) not in seen:
                seen.add((r["dataset"], r["key"]))
                uniq.append((name, r))
        out[k] = uniq
    return out


def render_grid(picks: dict[str, list[tuple[str, dict]]], images: dict, nr_lower_better: dict[str, bool],
                cell: int = 160):
    """A PIL image: one row per group; each item drawn as LQ | baseline | model | HQ with captions."""
    from pairforge.preview import Item, Tile, render

    rows = []
    for group, chosen in picks.items():
        items = []
        for name, r in chosen:
            got = images.get((r["dataset"], r["key"]))
            if got is None:
                continue
            item, base, out = got
            g = gain(r, nr_lower_better)
            if "psnr" in r:
                tiles = [Tile(item.lq, [f"{name}: {r['key']}", r["label"]]),
                         Tile(base, [f"baseline {r['base_psnr']:.2f} dB", f"SSIM-Y {r['base_ssim_y']:.3f}"]),
                         Tile(out, [f"model {r['psnr']:.2f} dB", f"{g:+.2f} dB, SSIM-Y {r['ssim_y']:.3f}"]),
                         Tile(item.hq, ["HQ", r["source"]])]
            else:
                tiles = [Tile(item.lq, [f"{name}: {r['key']}", "LQ only"]),
                         Tile(out, ["model", f"gain {g:+.2f}"])]
            items.append(Item(r["key"], tiles))
        if items:
            rows.append((f"{group}: worst / median / best by gain over the baseline", items))
    return render(rows, cell)
