"""Images from folders, globs, list files and s3:// prefixes.

The listing is made once on the driver (:func:`discover_files`) and persisted in the run directory
(:func:`write_listing`, JSON lines: any path round-trips, newlines, U+2028 and names that are not
UTF-8 included), so that every worker and every resume sees the same index -> file mapping even if the
folder changes. Every entry that looks like an input is listed, including what cannot be read (a
dangling symlink, a symlink loop, a folder named ``x.jpg``): it is rejected with its reason when loaded,
so every entry ends accepted or rejected, never silently dropped.
"""
from __future__ import annotations

import errno
import glob
import json
import logging
import os
import stat
from functools import lru_cache
from pathlib import Path

import numpy as np

from pairforge.io.images import ImageRejected, SourcePNG, decode_image_keep
from pairforge.sources.base import ImageSource, crop_image
from pairforge.sources.config import FilesSourceConfig

log = logging.getLogger(__name__)

LIST_SUFFIXES = (".txt", ".lst", ".list")
#: the files listing in a run directory (one JSON string per line)
LISTING = "inputs.jsonl"
#: the listing of runs made before JSON lines (one path per line; read, never written)
LEGACY_LISTING = "inputs.txt"


class SourceListingError(ValueError):
    pass


def display_path(path: str) -> str:
    """``path`` as valid Unicode for messages and sample JSON: bytes of a name that is not UTF-8 (held
    as surrogate escapes, as ``os.fsdecode`` gives them) are shown as ``\\xNN``."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def write_listing(files: list[str]) -> bytes:
    """The listing as JSON lines: ``json.dumps`` escapes newlines, U+2028 and the surrogate escapes of
    undecodable names, so every line is one ASCII line and :func:`read_listing` gives back the same str."""
    return "".join(json.dumps(f) + "\n" for f in files).encode("ascii")


def read_listing(data: bytes, legacy: bool = False) -> list[str]:
    if legacy:
        return data.decode("utf-8", "surrogateescape").splitlines()
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


def load_listing(storage) -> list[str] | None:
    """The run directory's listing (JSON lines, or a legacy ``inputs.txt``), or None if it has none."""
    if storage.exists(LISTING):
        return read_listing(storage.read_bytes(LISTING))
    if storage.exists(LEGACY_LISTING):
        return read_listing(storage.read_bytes(LEGACY_LISTING), legacy=True)
    return None


def _list_file_entries(p: Path) -> list[str]:
    """A list file: one path per line (``\\n`` only, so U+2028 stays inside a name; bytes that are not
    UTF-8 are kept as surrogate escapes), ``#`` comments; relative paths are relative to the file.

    Linear in the entries: one ``lstat`` per entry, each folder resolved once (a list of a million
    entries is listed in seconds, not the minute that a full ``realpath`` per entry takes)."""
    out = []
    base = str(p.parent)
    real_dirs: dict[str, str] = {}
    for raw in p.read_bytes().split(b"\n"):
        line = os.fsdecode(raw.rstrip(b"\r")).strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("s3://"):
            out.append(line)
        else:
            q = os.path.expanduser(line)
            out.append(_listed_path(q if os.path.isabs(q) else os.path.join(base, q), real_dirs))
    return out


def _listed_path(path: str, real_dirs: dict[str, str] | None = None) -> str:
    """The absolute path to list: symlinks resolved when they lead somewhere, else the link itself
    (so the rejection of a dangling link or a loop names what the user has). ``real_dirs`` caches the
    resolved folders: a path whose last part is not a link resolves to its resolved folder + its name."""
    path = os.path.abspath(path)
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        is_link = False
    if is_link:
        return os.path.realpath(path) if os.path.exists(path) else path
    head, name = os.path.split(path)
    if real_dirs is None:
        return os.path.join(os.path.realpath(head), name)
    d = real_dirs.get(head)
    if d is None:
        d = real_dirs[head] = os.path.realpath(head)
    return os.path.join(d, name)


def _walk_folder(top: str, recursive: bool, want, stats: dict) -> list[str]:
    """Files under ``top`` whose name ``want``s, following symlinked folders but entering each folder
    once (a symlink loop is counted in ``stats["folders_revisited"]`` and not walked again); a folder
    that cannot be read is counted in ``stats["unreadable_folders"]`` and logged."""
    found: list[str] = []
    entered: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as e:
            stats["unreadable_folders"] = stats.get("unreadable_folders", 0) + 1
            log.warning("source.paths: cannot read folder %s: %s", display_path(d), e.strerror or e)
            continue
        if (st.st_dev, st.st_ino) in entered:
            stats["folders_revisited"] = stats.get("folders_revisited", 0) + 1
            log.warning("source.paths: %s leads to a folder already listed (a symlink loop?): not walked again",
                        display_path(d))
            continue
        entered.add((st.st_dev, st.st_ino))
        for e in entries:
            try:
                is_dir = e.is_dir()  # follows symlinks
            except OSError:  # a symlink loop: listed below if its name wants it, rejected when loaded
                is_dir = False
            if is_dir and recursive:
                stack.append(e.path)
            if want(e.name):
                found.append(_listed_path(e.path))  # a folder named like an image is listed and rejected
            elif not is_dir:
                stats["skipped_by_extension"] += 1
    return found


def discover_files(config: FilesSourceConfig) -> tuple[list[str], dict]:
    """Expand the configured paths into a sorted, de-duplicated list of file paths/urls.

    Returns (files, stats) where stats counts what was not listed and why: files skipped because of
    their extension, folders matched by a glob, folders reached twice or unreadable."""
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in config.extensions}
    found: list[str] = []
    stats: dict = {"skipped_by_extension": 0}

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
                    stats["skipped_by_extension"] += 1
            continue
        p = Path(entry).expanduser()
        if any(ch in entry for ch in "*?["):
            matches = sorted(glob.glob(str(p), recursive=True))
            if not matches:
                raise SourceListingError(f"source.paths: glob {entry!r} matches no file")
            for m in matches:
                if os.path.isdir(m):
                    stats["skipped_folders"] = stats.get("skipped_folders", 0) + 1
                else:  # an explicit glob match is an input, whatever its suffix (broken links included)
                    found.append(_listed_path(m))
        elif p.is_dir():
            found += _walk_folder(str(p), config.recursive, want, stats)
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            found += _list_file_entries(p)
        elif p.is_file():
            found.append(_listed_path(str(p)))
        else:
            raise SourceListingError(f"source.paths: {entry!r} is not a file, folder, list file, glob or s3:// url")
    files = sorted(set(found))
    return files, {"files": len(files), **stats}


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


def _read_input(path: str, shown: str) -> bytes:
    """The bytes of a listed input, or the rejection that says why there are none."""
    try:
        return read_file_bytes(path)
    except IsADirectoryError:
        raise ImageRejected("not_a_file", f"{shown}: is a folder, not an image file") from None
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageRejected("dangling_symlink", f"{shown}: symlink to {display_path(os.readlink(path))}, which does not exist") from None
        raise ImageRejected("missing", f"{shown}: file disappeared after listing") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ImageRejected("symlink_loop", f"{shown}: symlink loop (it leads back to itself)") from None
        raise ImageRejected("unreadable", f"{shown}: {e.strerror or e}") from None


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
        img, meta, _ = self.load_keep_png(index, rng)
        return img, meta

    def load_keep_png(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict, SourcePNG | None]:
        """:meth:`load`, plus the file's :class:`SourcePNG` when the image is that PNG's pixels unchanged
        (a plain 8-bit RGB PNG, no crop, no resize): the writer may store it instead of encoding again."""
        k = self.config.tiles_per_image
        path = self.files[index // k]
        shown = display_path(path)
        meta: dict = {"kind": "files", "path": shown}
        if shown != path:  # not UTF-8: the exact name, as bytes
            meta["path_bytes"] = os.fsencode(path).hex()
        if k > 1:
            meta["tile"] = index % k
        data = _read_input(path, shown)
        keep = self.config.crop.mode == "none"
        img, info, png = decode_image_keep(data, name=shown, max_pixels=self.config.max_pixels,
                                           max_side=self.config.max_side, keep_png=keep)
        meta.update(info)
        img, box = crop_image(img, self.config.crop, rng, path)
        if box is not None:
            meta["crop"] = box
            png = None
        return img, meta, png
