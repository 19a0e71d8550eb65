"""Read images back from where pairforge finds them: folders of images, single files, shard tars, and
finished run directories (local or s3://), streaming one sample at a time.

Used to train the quality classifier and to build a run's hash index after the run; it reads only
committed shards (a shard whose commit record is missing does not exist).
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairforge.io.dataset import (
    HQ,
    NEG,
    META,
    DatasetReader,
    is_dataset,
    iter_tar_samples,
    sample_meta,
)
from pairforge.io.images import ImageRejected, decode_image
from pairforge.io.storage import open_storage

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class RunSample:
    """One committed sample of a run: its key, index, metadata and HQ PNG bytes (if asked for)."""

    key: str
    index: int
    meta: dict
    hq_png: bytes | None


def is_run_dir(url: str) -> bool:
    try:
        return is_dataset(open_storage(url))
    except (ValueError, OSError):
        return False


def iter_run_samples(url: str, want_images: bool = True) -> Iterator[RunSample]:
    """Every accepted sample of the committed shards of a run directory (either layout), in shard then
    index order."""
    members = {META, HQ, NEG} if want_images else {META}
    for s in DatasetReader(open_storage(url)).iter_samples(members):
        meta = sample_meta(s)
        # a negatives run's images are neg.png: as classifier negatives they are what it is made for
        yield RunSample(s["__key__"], int(meta.get("index", int(s["__key__"]))), meta, s.get(HQ, s.get(NEG)))


def iter_images(source: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 RGB image) from a folder (recursive), an image file, a shard tar, or a run directory.

    Undecodable files are skipped (they are not training material for anything)."""
    s = str(source)
    if s.startswith("s3://") or (Path(s).is_dir() and is_run_dir(s)):
        for smp in iter_run_samples(s, want_images=True):
            if smp.hq_png is None:
                continue
            img, _ = decode_image(smp.hq_png, smp.key)
            yield f"{s}#{smp.key}", img
        return
    p = Path(s)
    if p.is_file() and p.name.endswith(".tar"):
        with open(p, "rb") as f:
            for smp in iter_tar_samples(f, {HQ}):
                if HQ in smp:
                    img, _ = decode_image(smp[HQ], smp["__key__"])
                    yield f"{s}#{smp['__key__']}", img
        return
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
    else:
        raise FileNotFoundError(f"no such image source: {s}")
    for q in files:
        try:
            img, _ = decode_image(q.read_bytes(), str(q))
        except ImageRejected:
            continue
        yield str(q), img


def read_object(url: str) -> bytes:
    """The bytes of a single file given as a local path or an s3:// url."""
    parent, name = posixpath.split(str(url).rstrip("/"))
    if not str(url).startswith("s3://"):
        parent, name = os.path.split(os.path.abspath(str(url)))
    return open_storage(parent).read_bytes(name)
