"""Perceptual hashes (pHash, dHash) as 64-bit integers, and a nearest-neighbour index over them.

pHash: the sign pattern of the 8x8 lowest DCT frequencies of a 32x32 grey thumbnail relative to their
median, robust to rescaling, recompression and mild noise. dHash: the sign of horizontal gradients of a
9x8 thumbnail, cheaper and a little less robust. Neither is mirror-invariant, so callers that want to
catch flipped copies also hash the mirror image (:func:`image_hashes`).
"""
from __future__ import annotations

import json
from collections.abc import Iterable

import cv2
import numpy as np

HASH_KINDS = ("phash", "dhash")
INDEX_FORMAT = "pairforge-hash-index"
INDEX_VERSION = 1


def _gray(img: np.ndarray, width: int, height: int) -> np.ndarray:
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def _pack(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.astype(np.uint8).ravel()).tobytes(), "big")


def phash(img: np.ndarray) -> int:
    """64-bit DCT hash of a uint8 RGB (or grey) image."""
    coeffs = cv2.dct(_gray(img, 32, 32))[:8, :8].ravel()
    return _pack(coeffs > np.median(coeffs[1:]))


def dhash(img: np.ndarray) -> int:
    """64-bit difference hash of a uint8 RGB (or grey) image."""
    g = _gray(img, 9, 8)
    return _pack(g[:, 1:] > g[:, :-1])


_FUNCS = {"phash": phash, "dhash": dhash}


def hash_image(img: np.ndarray, kind: str = "phash") -> int:
    try:
        return _FUNCS[kind](img)
    except KeyError:
        raise ValueError(f"unknown hash kind {kind!r}; allowed: {HASH_KINDS}") from None


def image_hashes(img: np.ndarray, kind: str = "phash", flip: bool = True) -> tuple[int, int | None]:
    """(hash of the image, hash of its horizontal mirror or None)."""
    h = hash_image(img, kind)
    return h, (hash_image(np.ascontiguousarray(img[:, ::-1]), kind) if flip else None)


def hamming(a: int, b: int) -> int:
    return (int(a) ^ int(b)).bit_count()


def to_hex(h: int) -> str:
    return f"{int(h):016x}"


def from_hex(s: str) -> int:
    return int(s, 16)


class HashIndex:
    """Keys with 64-bit hashes; finds the earliest-added entry within a Hamming distance (vectorised)."""

    def __init__(self, kind: str = "phash"):
        if kind not in HASH_KINDS:
            raise ValueError(f"unknown hash kind {kind!r}; allowed: {HASH_KINDS}")
        self.kind = kind
        self.keys: list[str] = []
        self._list: list[int] = []
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, h: int) -> None:
        self.keys.append(key)
        self._list.append(int(h))
        self._array = None

    def extend(self, other: HashIndex) -> None:
        if other.kind != self.kind:
            raise ValueError(f"cannot merge a {other.kind} index into a {self.kind} index")
        for k, h in zip(other.keys, other._list):
            self.add(k, h)

    def _arr(self) -> np.ndarray:
        if self._array is None:
            self._array = np.array(self._list, dtype=np.uint64)
        return self._array

    def nearest(self, queries: Iterable[int | None], max_distance: int) -> tuple[str, int] | None:
        """The (key, distance) of the closest entry to any of the query hashes, if within ``max_distance``.

        Ties go to the entry added first, so the answer never depends on anything but insertion order."""
        arr = self._arr()
        if arr.size == 0:
            return None
        best: tuple[int, int] | None = None  # (distance, position)
        for q in queries:
            if q is None:
                continue
            d = np.bitwise_count(arr ^ np.uint64(q))
            pos = int(np.argmin(d))
            cand = (int(d[pos]), pos)
            if best is None or cand < best:
                best = cand
        if best is None or best[0] > max_distance:
            return None
        return self.keys[best[1]], best[0]

    def to_json(self) -> bytes:
        doc = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "hash": self.kind,
            "entries": [[k, to_hex(h)] for k, h in zip(self.keys, self._list)],
        }
        return json.dumps(doc).encode()

    @classmethod
    def from_json(cls, data: bytes | str, origin: str = "hash index") -> HashIndex:
        doc = json.loads(data)
        if doc.get("format") != INDEX_FORMAT or doc.get("version") != INDEX_VERSION:
            raise ValueError(f"{origin}: not a {INDEX_FORMAT} v{INDEX_VERSION} file")
        idx = cls(doc["hash"])
        for key, hx in doc["entries"]:
            idx.add(key, from_hex(hx))
        return idx
