"""The report's pictures: HQ|LQ pairs per degradation type, and the measured strength (PSNR/SSIM of LQ
vs HQ) of pairs whose degrader did not record it. Only the samples picked by
:mod:`pairforge.runreport.collect` are read, one shard at a time, and each image is dropped once encoded,
so memory stays bounded whatever the run size.

Images are embedded as data URIs: HQs as JPEGs of at most :data:`SHOW` px, LQs at their native size as
PNG when they fit (pixels exact; the page scales them up without smoothing), else downsized JPEGs.
"""
from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from pairforge.degradations.fidelity import pair_strength
from pairforge.io.dataset import HQ, DatasetReader, lq_members, sample_meta
from pairforge.io.images import decode_png
from pairforge.io.provenance import describe_degradation, variant_params
from pairforge.runreport.collect import (
    CHAIN_PARAMS,
    Reservoir,
    RunData,
    _dig,
    _number,
    degradation_type,
    jsonish,
)

#: long side of the gallery's images, in pixels
SHOW = 224
#: an LQ up to this many pixels is embedded as exact PNG (x4 LQs); larger ones as JPEG quality 92
PNG_PIXELS = 128 * 128
#: degradation types shown in the gallery (the most frequent; stacked combinations can be many)
MAX_TYPES = 16


@dataclass
class Pair:
    """One gallery cell: an HQ and one of its LQs, with what was done to it."""

    key: str
    label: str
    params: str  # the key sampled parameters, one line
    details: str  # the full degradation record (hover)
    hq_uri: str
    lq_uri: str
    hq_size: tuple[int, int]
    lq_size: tuple[int, int]
    psnr: float | None


def data_uri(img: np.ndarray, fmt: str = "JPEG", quality: int = 88) -> str:
    buf = io.BytesIO()
    if fmt == "PNG":
        Image.fromarray(img).save(buf, format="PNG", optimize=True)
        mime = "image/png"
    else:
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def fit(img: np.ndarray, side: int = SHOW) -> np.ndarray:
    h, w = img.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def key_params(deg: dict) -> str:
    """The few sampled parameters worth a caption: chain ops' sigmas and qualities; for real-world types
    each op's severity and first parameters (``blur medium: mode defocus, radius 0.0099``)."""
    parts: list[str] = []
    realworld = isinstance(deg.get("types"), list)
    for op in deg.get("ops") or []:
        if not isinstance(op, dict) or op.get("applied") is False:
            continue
        name = op.get("name") or op.get("op")
        if realworld:
            shown = [f"{k} {v:.3g}" if _number(v) is not None else f"{k} {v}" for k, v in op.items()
                     if k not in ("op", "name", "severity", "applied") and "seed" not in k
                     and (_number(v) is not None or (isinstance(v, str) and len(v) < 24))][:3]
            head = f"{name} {op['severity']}" if op.get("severity") else str(name)
            parts.append(head + (f": {', '.join(shown)}" if shown else ""))
            continue
        for label, path in CHAIN_PARAMS.get(str(op.get("op")), []):
            v = _number(_dig(op, path))
            if v is not None and op.get("op") != "resize":
                parts.append(f"{name} {label} {v:.3g}")
    return " · ".join(parts[:8])


def load_pictures(data: RunData, reader: DatasetReader) -> dict[str, list[Pair]]:
    """Read the picked samples once: gallery pairs per type, and measured strengths into ``data``."""
    wanted: dict[str, list[tuple[str, str, int | None]]] = {}
    shown = sorted(data.gallery_picks, key=lambda t: (-data.by_group.get(t, 0), t))[:MAX_TYPES]
    for label in shown:
        for key, variant in data.gallery_picks[label].values:
            wanted.setdefault(key, []).append(("gallery", label, variant))
    for typ, res in data.strength_picks.items():
        for key, variant in res.values:
            wanted.setdefault(key, []).append(("strength", typ, variant))
    gallery: dict[str, list[Pair]] = {label: [] for label in sorted(shown)}
    # decoding dominates (an HQ PNG per pick, up to STRENGTH_PER_TYPE picks per type); OpenCV releases
    # the GIL, so a shard's picks are decoded on a few threads. Results are applied in sample order, so
    # the page is the same whatever the number of threads.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for rec in reader.records():
            mine = set(wanted).intersection(rec["accepted"])
            if not mine:
                continue
            samples = list(reader.iter_shard(rec, keys=mine))
            for done in pool.map(lambda s: _read_sample(s, wanted.get(s["__key__"], [])), samples):
                for what, name, got in done:
                    if what == "strength":
                        per = data.strength.setdefault(name, {"psnr": Reservoir(), "ssim": Reservoir()})
                        per["psnr"].add(got["psnr"])
                        per["ssim"].add(got["ssim"])
                        data.strength_source.setdefault(name, "measured on a sample")
                    else:
                        gallery[name].append(got)
    for pairs in gallery.values():
        pairs.sort(key=lambda p: p.key)
    return gallery


def _read_sample(s: dict, jobs: list[tuple[str, str, int | None]]) -> list[tuple[str, str, object]]:
    """Decode one picked sample and do its jobs: ("strength", type, PSNR/SSIM dict) or ("gallery", type,
    :class:`Pair`); a sample or an LQ that cannot be decoded is skipped."""
    try:
        meta = sample_meta(s)
        hq = decode_png(s[HQ])
        lq_names = lq_members(s)
    except (ValueError, KeyError, OSError):
        return []
    params = variant_params(meta)
    out: list[tuple[str, str, object]] = []
    for what, name, variant in jobs:
        k = variant or 0
        if k >= len(lq_names):
            continue
        try:
            lq = decode_png(s[lq_names[k]])
        except (ValueError, OSError):
            continue
        deg = params[k] if k < len(params) else {}
        if what == "strength":
            out.append((what, name, pair_strength(hq, lq)))
        else:
            out.append((what, name, _pair(s["__key__"], hq, lq, deg, variant)))
    return out


def _pair(key: str, hq: np.ndarray, lq: np.ndarray, deg: dict, variant: int | None) -> Pair:
    d = describe_degradation(deg)
    st = deg.get("strength") if isinstance(deg.get("strength"), dict) else None
    psnr = _number(st.get("psnr")) if st else None
    if psnr is None:
        psnr = pair_strength(hq, lq)["psnr"]
    if lq.shape[0] * lq.shape[1] <= PNG_PIXELS:
        lq_uri = data_uri(lq, "PNG")  # exact pixels: small LQs are what a model will see
    else:
        lq_uri = data_uri(fit(lq), quality=92)
    label = d.label + (f" (variant {variant})" if variant is not None else "")
    return Pair(
        key=key,
        label=label or degradation_type(d),
        params=key_params(deg),
        details=jsonish(deg, 2000),
        hq_uri=data_uri(fit(hq)),
        lq_uri=lq_uri,
        hq_size=(int(hq.shape[1]), int(hq.shape[0])),
        lq_size=(int(lq.shape[1]), int(lq.shape[0])),
        psnr=psnr,
    )
