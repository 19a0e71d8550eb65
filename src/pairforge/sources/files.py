"""Images from folders, globs, list files and s3:// prefixes.

The listing is made once on the driver (:func:`discover_files`) and persisted in the run directory, so
that every worker and every resume sees the same index -> file mapping even if the folder changes.
"""
from __future__ import annotations

import glob
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from pairforge.io.images import ImageRejected, decode_image
from pairforge.sources.base import ImageSource, crop_image
from pairforge.sources.config import FilesSourceConfig

LIST_SUFFIXES = (".txt", ".lst", ".list")


class SourceListingError(ValueError):
    pass


def discover_files(config: FilesSourceConfig) -> tuple[list[str], dict]:
    """Expand the configured paths into a sorted, de-duplicated list of file paths/urls.

    Returns (files, stats) where stats counts files skipped because of their extension."""
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in config.extensions}
    found: list[str] = []
    skipped = 0

    def want(name: str) -> bool:
        return os.path.splitext(name)[1].lower() in exts

    for entry in config.paths:
        if entry.startswith("s3://"):
            from pairforge.io.storage import S3Storage

            st = S3Storage(entry)
            names = st.list("")
            for n in names:
                if want(n):
                    found.append(st.uri(n))
                else:
                    skipped += 1
            continue
        p = Path(entry).expanduser()
        if any(ch in entry for ch in "*?["):
            matches = sorted(glob.glob(str(p), recursive=True))
            if not matches:
                raise SourceListingError(f"source.paths: glob {entry!r} matches no file")
            for m in matches:
                if os.path.isfile(m):
                    found.append(os.path.abspath(m))  # an explicit glob match is an input, whatever its suffix
        elif p.is_dir():
            walker = p.rglob("*") if config.recursive else p.glob("*")
            for f in walker:
                if f.is_file():
                    if want(f.name):
                        found.append(str(f.resolve()))
                    else:
                        skipped += 1
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            base = p.parent
            for line in p.read_text().splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("s3://"):
                    found.append(line)
                else:
                    q = Path(line).expanduser()
                    found.append(str((q if q.is_absolute() else base / q).resolve()))
        elif p.is_file():
            found.append(str(p.resolve()))
        else:
            raise SourceListingError(f"source.paths: {entry!r} is not a file, folder, list file, glob or s3:// url")
    files = sorted(set(found))
    return files, {"files": len(files), "skipped_by_extension": skipped}


@lru_cache(maxsize=64)
def _bucket(bucket: str):
    from pairforge.io.storage import S3Storage

    return S3Storage(f"s3://{bucket}")


def read_file_bytes(path: str) -> bytes:
    if path.startswith("s3://"):
        bucket, _, key = path[len("s3://"):].partition("/")
        return _bucket(bucket).read_bytes(key)
    with open(path, "rb") as f:
        return f.read()


class FilesSource(ImageSource):
    kind = "files"

    def __init__(self, config: FilesSourceConfig, files: list[str]):
        if config.crop.mode == "tiles":
            raise SourceListingError("source.crop.mode: 'tiles' is for the bundled source; use 'random' with tiles_per_image")
        self.config = config
        self.files = files

    def __len__(self) -> int:
        return len(self.files) * self.config.tiles_per_image

    def load(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        k = self.config.tiles_per_image
        path = self.files[index // k]
        meta: dict = {"kind": "files", "path": path}
        if k > 1:
            meta["tile"] = index % k
        try:
            data = read_file_bytes(path)
        except FileNotFoundError:
            raise ImageRejected("missing", f"{path}: file disappeared after listing") from None
        except OSError as e:
            raise ImageRejected("unreadable", f"{path}: {e}") from None
        img, info = decode_image(data, name=path, max_pixels=self.config.max_pixels)
        meta.update(info)
        img, box = crop_image(img, self.config.crop, rng, path)
        if box is not None:
            meta["crop"] = box
        return img, meta
