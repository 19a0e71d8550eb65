"""Read images back from where pairforge finds them: folders of images, single files, shard tars, and
finished run directories (local or s3://), streaming one sample at a time.

Used to train the quality classifier and to build a run's hash index after the run; it reads only
committed shards (a shard whose commit record is missing does not exist).
"""
from __future__ import annotations

import json
import os
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def _iter_tar(fileobj, want_image: bool) -> Iterator[tuple[str, dict, bytes | None]]:
    """(key, meta, hq bytes) per sample of a pairforge tar, streaming (members of a sample are adjacent)."""
    cur_key, meta, hq = None, None, None
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for ti in tar:
            if not ti.isfile():
                continue
            key, _, ext = ti.name.partition(".")
            if key != cur_key:
                if cur_key is not None:
                    yield cur_key, meta or {}, hq
                cur_key, meta, hq = key, None, None
            if ext == "json":
                meta = json.loads(tar.extractfile(ti).read())
            elif ext == "hq.png" and want_image:
                hq = tar.extractfile(ti).read()
    if cur_key is not None:
        yield cur_key, meta or {}, hq


def committed_records(storage) -> list[dict]:
    """The valid commit records of a run directory, in shard order."""
    from pairforge.io.shards import committed_records as by_shard

    return [rec for _sid, rec in sorted(by_shard(storage).items())]


def is_run_dir(url: str) -> bool:
    try:
        st = open_storage(url)
        return st.exists("run.json") or bool(st.list("shards/"))
    except (ValueError, OSError):
        return False


def iter_run_samples(url: str, want_images: bool = True) -> Iterator[RunSample]:
    """Every accepted sample of the committed shards of a run directory, in shard then index order."""
    storage = open_storage(url)
    for rec in committed_records(storage):
        accepted = set(rec.get("accepted", []))
        if rec.get("tar"):
            with storage.open_read(rec["tar"]) as f:
                for key, meta, hq in _iter_tar(f, want_images):
                    if key in accepted or not accepted:
                        yield RunSample(key, int(meta.get("index", int(key))), meta, hq)
        else:  # folder layout: meta/KEY.json, hq/KEY.png
            for key in rec.get("accepted", []):
                meta = json.loads(storage.read_bytes(f"meta/{key}.json"))
                hq = storage.read_bytes(f"hq/{key}.png") if want_images else None
                yield RunSample(key, int(meta.get("index", int(key))), meta, hq)


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
            for key, _meta, hq in _iter_tar(f, True):
                if hq is not None:
                    img, _ = decode_image(hq, key)
                    yield f"{s}#{key}", img
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
