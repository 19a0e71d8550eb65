"""Contact sheets: HQ | LQ pairs side by side with their keys, for a person to look at."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageDraw

from pairforge.io.shards import decode_sample_images, iter_tar_samples
from pairforge.io.storage import Storage


def _fit(img: np.ndarray, size: int, nearest: bool = False) -> Image.Image:
    im = Image.fromarray(img)
    im = im.resize((size, size), Image.NEAREST if nearest else Image.BICUBIC) if im.size != (size, size) else im
    return im


def contact_sheet(pairs: list[tuple[str, np.ndarray, np.ndarray]], cell: int = 192, columns: int = 2) -> Image.Image:
    """Each pair becomes [HQ | LQ (nearest-upscaled so its pixels stay visible)] with the key below."""
    if not pairs:
        raise ValueError("no pairs to show")
    label_h = 16
    pair_w = 2 * cell + 4
    rows = (len(pairs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * pair_w + (columns - 1) * 12, rows * (cell + label_h + 8)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (key, hq, lq) in enumerate(pairs):
        x0 = (i % columns) * (pair_w + 12)
        y0 = (i // columns) * (cell + label_h + 8)
        sheet.paste(_fit(hq, cell), (x0, y0))
        sheet.paste(_fit(lq, cell, nearest=True), (x0 + cell + 4, y0))
        draw.text((x0 + 2, y0 + cell + 2), f"{key}  HQ {hq.shape[1]}x{hq.shape[0]} | LQ {lq.shape[1]}x{lq.shape[0]}", fill=(230, 230, 230))
    return sheet


def load_pairs(storage: Storage, n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Up to ``n`` pairs spread evenly over the committed shards (so a sheet shows the whole run)."""
    from pairforge.pipeline import ledger

    records = [r for _sid, r in sorted(ledger.committed_records(storage).items()) if r.get("tar")]
    if not records:
        return []
    per_shard = -(-n // len(records))
    out = []
    for rec in records:
        step = max(1, rec["samples"] // per_shard)
        with storage.open_read(rec["tar"]) as f:
            for j, s in enumerate(iter_tar_samples(f)):
                if j % step == 0 and len(out) < n:
                    hq, lq = decode_sample_images(s)
                    out.append((s["__key__"], hq, lq))
    return out[:n]


def sample_meta(storage: Storage, key: str) -> dict | None:
    from pairforge.pipeline import ledger

    for _sid, rec in sorted(ledger.committed_records(storage).items()):
        if key in rec.get("accepted", []):
            with storage.open_read(rec["tar"]) as f:
                for s in iter_tar_samples(f):
                    if s["__key__"] == key:
                        return json.loads(s["json"])
    return None
