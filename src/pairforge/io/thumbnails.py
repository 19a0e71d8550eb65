"""Thumbnails of rejected inputs, kept inside the commit records so a threshold can be judged by eye.

Why here: a rejected input's pixels are freed as soon as a stage rejects it and nothing but its record
entry reaches the writer. To show rejected inputs in the run report without writing anything outside the
commit protocol, the shard worker keeps a tiny copy of each image a stage rejects (the image the stage
judged, at most :data:`THUMB_SIDE` px on its long side) in the batch's ``thumb`` column; the writer then
stores at most ``output.rejected_thumbnails`` of them per rejection reason (``stage/rule``) per shard, as
base64 JPEGs in the shard's commit record::

    "rejected_thumbnails": {"0000000038": "<base64 JPEG>", ...}

A record is written last and atomically, so a thumbnail exists exactly when its shard is committed; a
redone shard rewrites its record, thumbnails included. About 2-4 KB per thumbnail.
"""
from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

#: long side of a rejected input's thumbnail, in pixels
THUMB_SIDE = 96
#: JPEG quality of the stored thumbnails
THUMB_QUALITY = 75
#: thumbnails kept per rejection reason per shard by default (``output.rejected_thumbnails``)
DEFAULT_PER_REASON = 2
RECORD_FIELD = "rejected_thumbnails"


def make_thumbnail(image: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray | None:
    """A small uint8 RGB copy of ``image`` (area-averaged), or None for something that is not an image."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        return None
    img = image
    if img.dtype != np.uint8:
        img = np.clip(np.nan_to_num(img.astype(np.float32)), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    h, w = img.shape[:2]
    scale = side / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def encode_thumbnail(thumb: np.ndarray, quality: int = THUMB_QUALITY) -> str:
    """A thumbnail as base64 JPEG text (what the commit record stores)."""
    buf = io.BytesIO()
    Image.fromarray(thumb).save(buf, format="JPEG", quality=quality, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def select_thumbnails(rejected: list[dict], thumbs: dict[str, np.ndarray], per_reason: int) -> dict[str, str]:
    """Encode up to ``per_reason`` thumbnails per ``stage/rule`` (first in index order) of a shard."""
    out: dict[str, str] = {}
    if per_reason <= 0:
        return out
    taken: dict[str, int] = {}
    for r in rejected:
        thumb = thumbs.get(r["key"])
        if thumb is None:
            continue
        tag = f"{r['stage']}/{r['rule']}"
        if taken.get(tag, 0) >= per_reason:
            continue
        taken[tag] = taken.get(tag, 0) + 1
        out[r["key"]] = encode_thumbnail(thumb)
    return out
