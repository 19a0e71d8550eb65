"""From one raw webdataset sample to an aligned (HQ, LQ) training crop.

The LQ may be HQ-sized or ``scale`` times smaller; crops are taken on the LQ grid and mapped to the HQ
grid (an LQ crop at (y, x) of size p/s is the HQ crop at (y*s, x*s) of size p), and every flip or
transpose is applied to both images, so the pair stays pixel-aligned.
"""
from __future__ import annotations

import json

import cv2
import numpy as np

from pairforge.io.dataset import lq_members


class BadSample(Exception):
    """A sample that cannot be used; ``rule`` is a stable name for counting."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


def _member(sample: dict, stem: str) -> str | None:
    for k in sample:
        if k.startswith(stem + ".") and k.count(".") == 1 and k != stem + ".json":
            return k
    return None


def sample_meta(sample: dict) -> dict:
    raw = sample.get("json")
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadSample("bad_json", f"{sample.get('__key__')}: metadata is not JSON ({e})") from None
    return meta if isinstance(meta, dict) else {}


def lookup(meta: dict, dotted: str):
    node = meta
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def degradation_type(meta: dict, field: str = "degradation.type", variant: int = 0) -> str:
    """The sample's degradation type for balancing (``field``, then ``degradation.chain``); with K LQ
    variants ``meta["degradation"]`` is a list and variant ``variant``'s type is used."""
    deg = meta.get("degradation")
    if isinstance(deg, list):
        meta = {**meta, "degradation": deg[variant] if 0 <= variant < len(deg) else None}
    for path in (field, "degradation.chain"):
        v = lookup(meta, path)
        if isinstance(v, (str, int)) and v != "":
            return str(v)
    return "unknown"


def sample_index(key: str) -> int:
    """The integer index of a pairforge key (10-digit zero-padded); other keys hash stably."""
    if key.isdigit():
        return int(key)
    import zlib

    return zlib.crc32(key.encode("utf-8"))


def _decode(data: bytes, name: str) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise BadSample("undecodable", f"{name}: not a decodable image")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def decode_pair(sample: dict, rng: np.random.Generator | None, variant: str = "random") -> tuple[np.ndarray, np.ndarray, int]:
    """(hq, lq, variant index) as uint8 RGB arrays; with K LQ variants one is chosen by ``rng``."""
    key = sample.get("__key__", "?")
    hq_name = _member(sample, "hq")
    lqs = lq_members(sample)
    if _member(sample, "neg") is not None:
        raise BadSample("negative_quality", f"{key}: a negative-quality image (neg.png), not a pair")
    if hq_name is None or not lqs:
        raise BadSample("missing_member", f"{key}: needs hq.* and lq.* (or lq_0..) members, has {sorted(sample)}")
    k = 0
    if len(lqs) > 1 and variant == "random":
        k = int(rng.integers(len(lqs))) if rng is not None else 0
    return _decode(sample[hq_name], f"{key}.{hq_name}"), _decode(sample[lqs[k]], f"{key}.{lqs[k]}"), k


def check_scale(hq: np.ndarray, lq: np.ndarray, scale: int, key: str = "?") -> None:
    for axis, label in ((0, "height"), (1, "width")):
        if abs(lq.shape[axis] * scale - hq.shape[axis]) >= scale:
            raise BadSample(
                "scale_mismatch",
                f"{key}: HQ {hq.shape[1]}x{hq.shape[0]} and LQ {lq.shape[1]}x{lq.shape[0]} are not x{scale} "
                f"apart in {label} (set model.scale to the data's scale, or data.lq_upsample for scale 1)")


def upsample_to(lq: np.ndarray, hq: np.ndarray) -> np.ndarray:
    if lq.shape[:2] == hq.shape[:2]:
        return lq
    return cv2.resize(lq, (hq.shape[1], hq.shape[0]), interpolation=cv2.INTER_CUBIC)


def paired_random_crop(hq: np.ndarray, lq: np.ndarray, patch: int, scale: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An HQ crop of ``patch`` and the LQ crop of ``patch // scale`` covering the same area.

    Images smaller than the patch are reflect-padded (the HQ by ``scale`` times the LQ padding)."""
    lp = patch // scale
    lh = min(lq.shape[0], hq.shape[0] // scale)
    lw = min(lq.shape[1], hq.shape[1] // scale)
    lq = lq[:lh, :lw]
    hq = hq[: lh * scale, : lw * scale]
    pad_h, pad_w = max(0, lp - lh), max(0, lp - lw)
    if pad_h or pad_w:
        lq = cv2.copyMakeBorder(lq, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
        hq = cv2.copyMakeBorder(hq, 0, pad_h * scale, 0, pad_w * scale, cv2.BORDER_REFLECT_101)
        lh, lw = lq.shape[:2]
    y = int(rng.integers(lh - lp + 1))
    x = int(rng.integers(lw - lp + 1))
    return (hq[y * scale: (y + lp) * scale, x * scale: (x + lp) * scale], lq[y: y + lp, x: x + lp])


def augment_pair(hq: np.ndarray, lq: np.ndarray, rng: np.random.Generator, hflip: bool = True,
                 rotate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The same horizontal flip / vertical flip / transpose for both images (the 8 dihedral moves)."""
    draws = rng.random(3)
    if hflip and draws[0] < 0.5:
        hq, lq = hq[:, ::-1], lq[:, ::-1]
    if rotate and draws[1] < 0.5:
        hq, lq = hq[::-1], lq[::-1]
    if rotate and draws[2] < 0.5:
        hq, lq = hq.transpose(1, 0, 2), lq.transpose(1, 0, 2)
    return np.ascontiguousarray(hq), np.ascontiguousarray(lq)


def centre_crop_pair(hq: np.ndarray, lq: np.ndarray, size: int | None, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic centre crop (validation): HQ to at most ``size``, LQ to the matching area."""
    lh = min(lq.shape[0], hq.shape[0] // scale)
    lw = min(lq.shape[1], hq.shape[1] // scale)
    if size is not None:
        lh, lw = min(lh, size // scale), min(lw, size // scale)
    y = (min(lq.shape[0], hq.shape[0] // scale) - lh) // 2
    x = (min(lq.shape[1], hq.shape[1] // scale) - lw) // 2
    return (np.ascontiguousarray(hq[y * scale: (y + lh) * scale, x * scale: (x + lw) * scale]),
            np.ascontiguousarray(lq[y: y + lh, x: x + lw]))
