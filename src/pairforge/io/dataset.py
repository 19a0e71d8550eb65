"""The pairforge dataset format, in one place: member names, the two output layouts, the commit record
and how a shard counts as committed, one writer protocol and one reader.

A sample is a WebDataset-style dict: ``{"__key__": KEY, "hq.png": bytes, "lq.png": bytes, "json": bytes,
"txt": bytes}``; with K LQ variants the LQ members are ``lq_0.png .. lq_{K-1}.png`` and there is no
``lq.png``. Keys are the 10-digit sample index (no dots).

Layouts under the run directory::

    webdataset   shards/shard-000042.tar     KEY.hq.png KEY.lq.png KEY.json [KEY.txt], members adjacent
    folder       hq/KEY.png  lq/KEY.png  meta/KEY.json  [prompt/KEY.txt]   (variants: lq_0/KEY.png ...)
    both         shards/shard-000042.json    the commit record, written last

The commit record may also hold ``rejected_thumbnails`` (``{KEY: base64 JPEG}``): tiny copies of a few
rejected inputs per reason, for the run report (:mod:`pairforge.io.thumbnails`).

Commit protocol: a shard's data becomes visible atomically (a tar by rename / one completed upload; each
folder file by rename), then its record is written. A shard without a valid record does not exist, and
neither does one whose data no longer matches its record (size always; sha256 when asked, or when the
data is newer than its record): such a shard is uncommitted and ``pairforge run`` redoes it.
"""
from __future__ import annotations

import abc
import hashlib
import io
import json
import logging
import re
import tarfile
import time
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from pairforge.batch import Batch, jsonable
from pairforge.io.images import encode_png
from pairforge.io.storage import TMP_MARK, ObjectStat, Storage, full_error
from pairforge.io.thumbnails import DEFAULT_PER_REASON, select_thumbnails
from pairforge.io.thumbnails import RECORD_FIELD as THUMB_FIELD

log = logging.getLogger(__name__)

SHARD_DIR = "shards"
RECORD_VERSION = 1
LAYOUTS = ("webdataset", "folder")
Layout = Literal["webdataset", "folder"]
#: how much a commit scan checks: sizes only; sizes, plus sha256 of data newer than its record; sha256 of all
Check = Literal["size", "mtime", "hash"]

HQ = "hq.png"
LQ = "lq.png"
META = "json"
PROMPT = "txt"
#: a SUPIR-style negative-quality image (synthesis ``mode: negatives``): a sample of its own kind, never
#: the HQ of a pair and never degraded
NEG = "neg.png"
NEGATIVE = "negative"
_LQ_VARIANT = re.compile(r"^lq_(\d+)\.[a-z0-9]+$")
_MEMBER = re.compile(r"^(hq\.png|lq\.png|lq_\d+\.png|neg\.png|json|txt)$")
_RECORD = re.compile(rf"^{SHARD_DIR}/shard-(\d+)\.json$")
#: folder layout: member -> sub-folder and file extension (an LQ variant ``lq_K.png`` goes to ``lq_K/``)
_FOLDER = {HQ: ("hq", "png"), LQ: ("lq", "png"), NEG: ("neg", "png"), META: ("meta", "json"),
           PROMPT: ("prompt", "txt")}
_FOLDER_BACK = {(d, ext): m for m, (d, ext) in _FOLDER.items()}


# -- names -----------------------------------------------------------------------------------------

def shard_name(shard: int) -> str:
    """``shards/shard-000042``: the stem of a shard's tar and record."""
    return f"{SHARD_DIR}/shard-{shard:06d}"


def record_name(shard: int) -> str:
    return shard_name(shard) + ".json"


def tar_name(shard: int) -> str:
    return shard_name(shard) + ".tar"


def lq_member(variant: int | None = None) -> str:
    """``lq.png`` for a single LQ, ``lq_K.png`` for variant K."""
    return LQ if variant is None else f"lq_{variant}.png"


def lq_members(sample: dict) -> list[str]:
    """Names of a sample's LQ members: ``[lq.*]`` or the variants ``lq_0.* .. lq_{K-1}.*`` in order."""
    variants = sorted((int(m.group(1)), k) for k in sample if isinstance(k, str) and (m := _LQ_VARIANT.match(k)))
    if variants:
        return [k for _, k in variants]
    return [k for k in sample if isinstance(k, str) and k.startswith("lq.") and k.count(".") == 1 and k != "lq.json"][:1]


def check_member(key: str, member: str) -> None:
    if not key or "." in key or "/" in key:
        raise ValueError(f"sample key {key!r}: keys must be non-empty without '.' or '/'")
    if not _MEMBER.match(member):
        raise ValueError(f"sample {key}: member {member!r} is not one of hq.png, lq.png, lq_K.png, neg.png, json, txt")


def folder_path(key: str, member: str) -> str:
    """Where a member lives in the folder layout: ``hq/KEY.png``, ``lq/KEY.png``, ``lq_3/KEY.png``, ..."""
    check_member(key, member)
    if member in _FOLDER:
        sub, ext = _FOLDER[member]
    else:  # lq_K.png
        sub, ext = member.rsplit(".", 1)
    return f"{sub}/{key}.{ext}"


def folder_member(path: str) -> tuple[str, str]:
    """(key, member) of a folder-layout path (the inverse of :func:`folder_path`)."""
    sub, _, fname = path.rpartition("/")
    key, _, ext = fname.partition(".")
    member = _FOLDER_BACK.get((sub, ext))
    if member is None and _LQ_VARIANT.match(f"{sub}.{ext}"):
        member = f"{sub}.{ext}"
    if member is None or "/" in sub:
        raise ValueError(f"{path!r} is not a pairforge folder-layout file")
    return key, member


def record_layout(rec: dict) -> Layout:
    """The layout a commit record describes (records written before the ``layout`` field: by their files)."""
    lay = rec.get("layout")
    if lay in LAYOUTS:
        return lay
    return "folder" if rec.get("files") is not None else "webdataset"


def record_files(rec: dict) -> list[str]:
    """The data objects a record owns: its tar, or its folder files."""
    if record_layout(rec) == "folder":
        return list(rec.get("files") or [])
    return [rec["tar"]] if rec.get("tar") else []


# -- writing ---------------------------------------------------------------------------------------

def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    # fixed metadata so that a rerun produces a byte-identical tar (same sha256)
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


class ShardWriter(abc.ABC):
    """One shard being written. ``write(sample)`` each accepted sample and ``reject(...)`` each other
    input, in index order, then ``commit()``: the data is made visible, then the record is written.

    Use as a context manager: leaving it with an exception aborts (removes temp data, writes no record)."""

    layout: Layout

    def __init__(self, storage: Storage, shard: int, start: int, end: int):
        self.storage = storage
        self.shard, self.start, self.end = shard, start, end
        self.accepted: list[str] = []
        self.rejected: list[dict] = []
        self.rejected_counts: dict[str, int] = {}
        self.members: set[str] = set()
        self._t0 = time.perf_counter()
        self._done = False

    def write(self, sample: dict) -> None:
        """Add one accepted sample (``{"__key__": KEY, member: bytes, ...}``, members in writing order)."""
        if self._done:
            raise RuntimeError(f"shard {self.shard} is already committed")
        key = sample["__key__"]
        members = [(m, data) for m, data in sample.items() if m != "__key__"]
        for m, data in members:
            check_member(key, m)
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError(f"sample {key}: member {m} must be bytes, got {type(data).__name__}")
        names = {m for m, _ in members}
        pair = HQ in names and bool(lq_members(dict.fromkeys(names)))
        negative = NEG in names and HQ not in names and not lq_members(dict.fromkeys(names))
        if META not in names or not (pair or negative):
            raise ValueError(f"sample {key}: needs {HQ}, {META} and {LQ} (or lq_0.png..), or {NEG} and {META} "
                             f"(a negative-quality sample), has {sorted(names)}")
        self._put(key, members)
        self.accepted.append(key)
        self.members |= names

    def reject(self, key: str, index: int, rejection: dict) -> None:
        """Record an input that did not become a pair (stage, rule, reason, value)."""
        self.rejected.append({"key": key, "index": int(index), **rejection})
        tag = f"{rejection['stage']}/{rejection['rule']}"
        self.rejected_counts[tag] = self.rejected_counts.get(tag, 0) + 1

    def commit(self, extra: dict | None = None) -> dict:
        """Make the data visible, write the record (the commit marker, last), return the record."""
        fields = self._finish()
        self._done = True
        record = {
            "version": RECORD_VERSION,
            "layout": self.layout,
            "shard": self.shard,
            "start": self.start,
            "end": self.end,
            "samples": len(self.accepted),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejected_counts": self.rejected_counts,
            "members": sorted(self.members),
            "write_seconds": round(time.perf_counter() - self._t0, 4),
            **fields,
        }
        if extra:
            record.update(extra)
        self.storage.write_bytes(record_name(self.shard), json.dumps(jsonable(record), sort_keys=True).encode())
        return record

    def abort(self) -> None:
        """Give up on the shard without a record (what was written stays uncommitted)."""
        self._done = True

    def __enter__(self) -> ShardWriter:  # noqa: PYI034 (subclasses need no narrower type here)
        return self

    def __exit__(self, exc_type, _exc, _tb) -> None:
        if exc_type is not None and not self._done:
            self.abort()

    @abc.abstractmethod
    def _put(self, key: str, members: list[tuple[str, bytes]]) -> None: ...

    @abc.abstractmethod
    def _finish(self) -> dict:
        """Make the data visible; return the record's layout-specific fields."""


class TarShardWriter(ShardWriter):
    """``shards/shard-NNNNNN.tar``: built in a local temp file while hashing, then moved into place."""

    layout = "webdataset"

    def __init__(self, storage: Storage, shard: int, start: int, end: int):
        super().__init__(storage, shard, start, end)
        self._raw = None
        self._tar: tarfile.TarFile | None = None
        self._digest = hashlib.sha256()

    def _put(self, key: str, members: list[tuple[str, bytes]]) -> None:
        if self._tar is None:
            self._raw = self.storage.open_staging(tar_name(self.shard))
            # copybufsize: a member in one read and one write (tarfile's default copies in 16 KiB
            # pieces, each through the hashing writer's Python write())
            self._tar = tarfile.open(fileobj=_HashingWriter(self._raw, self._digest), mode="w",  # noqa: SIM115
                                     format=tarfile.USTAR_FORMAT, copybufsize=1 << 22)
        for m, data in members:
            self._tar.addfile(_tarinfo(f"{key}.{m}", len(data)), io.BytesIO(data))

    def _finish(self) -> dict:
        if self._tar is None:
            return {"tar": None, "bytes": 0, "sha256": None}
        self._tar.close()
        n_bytes = self._raw.tell()
        self.storage.commit_staging(tar_name(self.shard), self._raw)
        self._tar = None
        return {"tar": tar_name(self.shard), "bytes": n_bytes, "sha256": self._digest.hexdigest()}

    def abort(self) -> None:
        super().abort()
        if self._tar is not None:
            try:
                self._tar.close()
            finally:
                self._tar = None
                self.storage.discard_staging(self._raw)


class FolderShardWriter(ShardWriter):
    """Plain files (see :func:`folder_path`), each written atomically; the record lists every file with
    its size and sha256 (files of an uncommitted shard are simply overwritten when it is redone)."""

    layout = "folder"

    def __init__(self, storage: Storage, shard: int, start: int, end: int):
        super().__init__(storage, shard, start, end)
        self.files: list[str] = []
        self.file_info: dict[str, dict] = {}

    def _put(self, key: str, members: list[tuple[str, bytes]]) -> None:
        for m, data in members:
            path = folder_path(key, m)
            self.storage.write_bytes(path, bytes(data))
            self.files.append(path)
            self.file_info[path] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def _finish(self) -> dict:
        return {"tar": None, "files": self.files, "file_info": self.file_info,
                "bytes": sum(f["bytes"] for f in self.file_info.values()), "sha256": None}


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, f, digest):
        self.f = f
        self.digest = digest

    def write(self, data) -> int:
        self.digest.update(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.f.tell()

    def flush(self) -> None:
        self.f.flush()


def encode_sample(batch: Batch, row: int, png_compression: int = 1, write_prompt: bool = True) -> dict:
    """The members of one accepted batch row, in writing order.

    The ``lq`` column holds one array, or a list of K arrays (K variants, written ``lq_0.png ..``; then
    ``meta["degradation"]`` is the list of the K variants' parameters and ``meta["lq_size"]`` the list of
    their sizes). Raises ValueError for a row that cannot be written (the writer rejects it)."""
    key = batch["key"][row]
    hq = batch["hq"][row]
    lq = batch.get("lq", [None] * len(batch["key"]))[row]
    if batch["meta"][row].get("quality") == NEGATIVE:
        return _encode_negative(batch, row, png_compression, write_prompt)
    if hq is None or lq is None or (isinstance(lq, (list, tuple)) and (not lq or any(x is None for x in lq))):
        raise ValueError(f"sample {key}: accepted but has no {'hq' if hq is None else 'lq'} image")
    meta = dict(batch["meta"][row])
    meta["key"] = key
    meta["index"] = int(batch["index"][row])
    meta["hq_size"] = [int(hq.shape[0]), int(hq.shape[1])]
    source = batch.get("hq_source", [None] * len(batch["key"]))[row]
    hq_png = source.png_for(hq) if source is not None else None
    if hq_png is not None:
        # the source file's own pixel stream, proven to decode to exactly ``hq`` (SourcePNG.png_for)
        meta["hq_png"] = "source"
    members = {"__key__": key, HQ: hq_png if hq_png is not None else encode_png(hq, png_compression)}
    if isinstance(lq, (list, tuple)):
        deg = meta.get("degradation")
        if deg is not None and not (isinstance(deg, list) and len(deg) == len(lq)):
            raise ValueError(f"sample {key}: {len(lq)} LQ variants need meta['degradation'] as a list of {len(lq)}")
        meta["lq_size"] = [[int(x.shape[0]), int(x.shape[1])] for x in lq]
        meta["lq_variants"] = len(lq)
        for k, x in enumerate(lq):
            members[lq_member(k)] = encode_png(x, png_compression)
    else:
        meta["lq_size"] = [int(lq.shape[0]), int(lq.shape[1])]
        members[LQ] = encode_png(lq, png_compression)
    members[META] = json.dumps(jsonable(meta), sort_keys=True, allow_nan=False).encode()
    prompt = batch.get("prompt", [None] * len(batch["key"]))[row]
    if write_prompt and prompt is not None:
        members[PROMPT] = str(prompt).encode("utf-8")
    return members


def _encode_negative(batch: Batch, row: int, png_compression: int, write_prompt: bool) -> dict:
    """A negative-quality sample: the image as ``neg.png`` (no HQ, no LQ), its metadata and prompt."""
    key, img = batch["key"][row], batch["hq"][row]
    if img is None:
        raise ValueError(f"sample {key}: accepted but has no image")
    meta = dict(batch["meta"][row])
    meta.update(key=key, index=int(batch["index"][row]), neg_size=[int(img.shape[0]), int(img.shape[1])])
    members = {"__key__": key, NEG: encode_png(img, png_compression),
               META: json.dumps(jsonable(meta), sort_keys=True, allow_nan=False).encode()}
    prompt = batch.get("prompt", [None] * len(batch["key"]))[row]
    if write_prompt and prompt is not None:
        members[PROMPT] = str(prompt).encode("utf-8")
    return members


@dataclass
class DatasetWriter:
    """Writes shards of one run directory in one layout (picklable: each worker holds one)."""

    storage: Storage
    layout: Layout = "webdataset"
    png_compression: int = 1
    write_prompt: bool = True
    #: thumbnails of rejected inputs kept per rejection reason per shard (see :mod:`pairforge.io.thumbnails`)
    rejected_thumbnails: int = DEFAULT_PER_REASON

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown output layout {self.layout!r}; allowed: {', '.join(LAYOUTS)}")

    def open_shard(self, shard: int, start: int, end: int) -> ShardWriter:
        cls = FolderShardWriter if self.layout == "folder" else TarShardWriter
        return cls(self.storage, shard, start, end)

    def write_batch(self, shard: int, start: int, end: int, batch: Batch, extra: dict | None = None,
                    map_fn: Callable | None = None) -> dict:
        """Write shard ``shard`` from a batch holding exactly the indices [start, end); return its record.

        Accepted rows become samples, rejected rows the record's rejections; a row that cannot be
        encoded is rejected as ``writer/encode_error``, so every index is accounted for. A ``thumb`` column
        (tiny copies of rejected inputs) adds a few of them per reason to the record. ``map_fn`` (e.g. a
        thread pool's ``map``) encodes the images in parallel; they are written in index order, so the
        bytes do not depend on it."""
        got = sorted(batch["index"])
        if got != list(range(start, end)):
            raise ValueError(f"shard {shard}: batch holds indices {got[:3]}..., expected [{start}, {end})")
        try:
            return self._write(shard, start, end, batch, extra, map_fn)
        except OSError as e:  # a full disk or quota: one line, not a worker traceback (the shard is redone)
            full = full_error(e, f"writing shard {shard} to {self.storage.url}")
            if full is None:
                raise
            raise full from None

    def _write(self, shard: int, start: int, end: int, batch: Batch, extra: dict | None,
               map_fn: Callable | None) -> dict:
        order = sorted(range(len(batch["index"])), key=lambda r: batch["index"][r])

        def encode(row: int) -> dict | Exception | None:
            if batch["reject"][row] is not None:
                return None
            try:
                return encode_sample(batch, row, self.png_compression, self.write_prompt)
            except (ValueError, RuntimeError) as e:
                return e

        encoded = list((map_fn or map)(encode, order))
        with self.open_shard(shard, start, end) as w:
            for row, sample in zip(order, encoded):
                key, index = batch["key"][row], int(batch["index"][row])
                rej = batch["reject"][row]
                if isinstance(sample, Exception):
                    rej = {"stage": "writer", "rule": "encode_error", "reason": str(sample), "value": None}
                if rej is not None:
                    w.reject(key, index, rej)
                else:
                    w.write(sample)
            thumbs = {batch["key"][r]: t for r, t in enumerate(batch.get("thumb") or []) if t is not None}
            if thumbs and self.rejected_thumbnails > 0:
                extra = {**(extra or {}), THUMB_FIELD: select_thumbnails(w.rejected, thumbs, self.rejected_thumbnails)}
            return w.commit(extra)


def writer_for(storage: Storage, output) -> DatasetWriter:
    """The writer for a config's ``output`` section (``format: webdataset | folder``)."""
    return DatasetWriter(storage, layout="folder" if output.format == "folder" else "webdataset",
                         png_compression=output.png_compression, write_prompt=output.write_prompt,
                         rejected_thumbnails=getattr(output, "rejected_thumbnails", DEFAULT_PER_REASON))


# -- commit detection ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Something wrong with one object of a dataset, in one line."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclass
class CommitScan:
    """The committed shards of a run directory, and the records that were not trusted (and why)."""

    records: dict[int, dict] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: data objects of trusted records modified after their record was written (hashed and found intact
    #: when the check was "mtime"; not hashed when it was "size")
    newer: list[str] = field(default_factory=list)


def validate_record(rec, name: str) -> str | None:
    """Why a parsed record is not a usable commit record, or None."""
    if not isinstance(rec, dict):
        return f"not a commit record (a JSON {type(rec).__name__}, expected an object)"
    for k in ("shard", "start", "end", "samples", "bytes"):
        if not isinstance(rec.get(k), int) or isinstance(rec.get(k), bool):
            return f"not a commit record (field {k!r} missing or not an integer)"
    if not isinstance(rec.get("accepted"), list):
        return "not a commit record (field 'accepted' missing or not a list)"
    m = _RECORD.match(name)
    if m and int(m.group(1)) != rec["shard"]:
        return f"names shard {rec['shard']}, but the file is for shard {int(m.group(1))}"
    if rec["samples"] != len(rec["accepted"]):
        return f"says {rec['samples']} samples but lists {len(rec['accepted'])} accepted keys"
    lay = record_layout(rec)
    if lay == "webdataset" and rec["samples"] and not isinstance(rec.get("tar"), str):
        return f"has {rec['samples']} samples but no tar"
    if lay == "folder" and not isinstance(rec.get("files"), list):
        return "folder-layout record without a 'files' list"
    return None


def read_record(storage: Storage, name: str) -> tuple[dict | None, str | None]:
    """(record, None) or (None, why it is unusable) for the record object ``name``."""
    try:
        raw = storage.read_bytes(name)
    except FileNotFoundError:
        return None, "missing"
    try:
        rec = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        return None, f"not valid JSON ({e})"
    why = validate_record(rec, name)
    return (None, why) if why else (rec, None)


def object_sha256(storage: Storage, name: str) -> str:
    h = hashlib.sha256()
    with storage.open_read(name) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_problem(storage: Storage, rec: dict, stats: dict[str, ObjectStat], rec_stat: ObjectStat | None,
                  check: Check, newer_out: list[str]) -> str | None:
    """Why a valid record's data does not match it (missing, resized, changed), or None."""
    if record_layout(rec) == "webdataset":
        if not rec.get("tar"):
            return None
        expected = {rec["tar"]: {"bytes": rec["bytes"], "sha256": rec.get("sha256")}}
    else:
        info = rec.get("file_info") or {}
        expected = {p: info.get(p, {}) for p in rec["files"]}
    for name, want in expected.items():
        st = stats.get(name)
        if st is None:
            return f"{name} is missing"
        if want.get("bytes") is not None and st.size != want["bytes"]:
            return f"{name} has {st.size} bytes, the record says {want['bytes']}"
        newer = st.mtime is not None and rec_stat is not None and rec_stat.mtime is not None and st.mtime > rec_stat.mtime
        if want.get("sha256") and (check == "hash" or (check == "mtime" and newer)):
            got = object_sha256(storage, name)
            if got != want["sha256"]:
                return f"{name} changed after it was committed (sha256 {got[:12]}.., the record says {want['sha256'][:12]}..)"
        if newer:
            newer_out.append(name)
    return None


def scan_commits(storage: Storage, check: Check = "size") -> CommitScan:
    """Read every commit record and keep those whose data is intact (see :data:`Check`).

    A record that is malformed, or whose data is missing, resized or changed, makes its shard
    uncommitted; each such case becomes one :class:`Problem` (the caller says so to the user)."""
    scan = CommitScan()
    shard_stats = storage.stats(SHARD_DIR + "/")
    folder_stats: dict[str, dict[str, ObjectStat]] = {}

    def stats_for(names: list[str]) -> dict[str, ObjectStat]:
        out = {}
        for n in names:
            top = n.split("/", 1)[0] + "/"
            if top == SHARD_DIR + "/":
                st = shard_stats.get(n)
            else:
                if top not in folder_stats:
                    folder_stats[top] = storage.stats(top)
                st = folder_stats[top].get(n)
            if st is not None:
                out[n] = st
        return out

    for name, st in shard_stats.items():
        if not _RECORD.match(name) or TMP_MARK in name:
            continue
        rec, why = read_record(storage, name)
        if rec is None:
            if why != "missing":
                scan.problems.append(Problem(name, f"{why}; the shard counts as uncommitted"))
            continue
        why = _data_problem(storage, rec, stats_for(record_files(rec)), st, check, scan.newer)
        if why:
            scan.problems.append(Problem(name, f"{why}; the shard counts as uncommitted"))
            continue
        scan.records[int(rec["shard"])] = rec
    return scan


def committed_records(storage: Storage, check: Check = "size", warn: bool = True) -> dict[int, dict]:
    """Valid commit records by shard id; untrusted records are logged as warnings naming the file."""
    scan = scan_commits(storage, check)
    if warn:
        for p in scan.problems:
            log.warning("%s", p)
    return scan.records


# -- reading ---------------------------------------------------------------------------------------

def iter_tar_samples(fileobj, members: Container[str] | None = None, keys: Container[str] | None = None) -> Iterator[dict]:
    """Samples of a pairforge tar, streaming (a sample's members are adjacent): ``{"__key__": KEY, ...}``
    with only the ``members`` asked for (all when None), of only the ``keys`` asked for (all when None).
    The data of what is not asked for is skipped, not read, when the file is seekable."""
    seekable = getattr(fileobj, "seekable", lambda: False)()
    cur: dict | None = None
    with tarfile.open(fileobj=fileobj, mode="r:" if seekable else "r|") as tar:
        for ti in tar:
            if not ti.isfile():
                continue
            key, _, member = ti.name.partition(".")
            if keys is not None and key not in keys:
                continue
            if cur is None or cur["__key__"] != key:
                if cur is not None:
                    yield cur
                cur = {"__key__": key}
            if members is None or member in members:
                cur[member] = tar.extractfile(ti).read()
    if cur is not None:
        yield cur


@dataclass
class DatasetReader:
    """Reads the committed samples of a run directory, whatever its layout (local or s3://)."""

    storage: Storage
    check: Check = "size"
    _scan: CommitScan | None = field(default=None, init=False, repr=False)

    @property
    def scan(self) -> CommitScan:
        if self._scan is None:
            self._scan = scan_commits(self.storage, self.check)
        return self._scan

    def records(self) -> list[dict]:
        """Committed records in shard order."""
        return [r for _sid, r in sorted(self.scan.records.items())]

    @property
    def problems(self) -> list[Problem]:
        return self.scan.problems

    def layouts(self) -> set[str]:
        return {record_layout(r) for r in self.records() if r["samples"]}

    def iter_shard(self, rec: dict, members: Container[str] | None = None,
                   keys: Container[str] | None = None) -> Iterator[dict]:
        """The samples of one committed shard in index order, with the ``members`` asked for (all when
        None), of the ``keys`` asked for (all when None)."""
        if not rec["samples"]:
            return
        if record_layout(rec) == "webdataset":
            with self.storage.open_read(rec["tar"]) as f:
                yield from iter_tar_samples(f, members, keys)
            return
        by_key: dict[str, list[tuple[str, str]]] = {}
        for path in rec["files"]:
            key, member = folder_member(path)
            by_key.setdefault(key, []).append((member, path))
        for key in rec["accepted"]:
            if keys is not None and key not in keys:
                continue
            sample = {"__key__": key}
            for member, path in by_key.get(key, []):
                if members is None or member in members:
                    sample[member] = self.storage.read_bytes(path)
            yield sample

    def iter_samples(self, members: Container[str] | None = None) -> Iterator[dict]:
        for rec in self.records():
            yield from self.iter_shard(rec, members)

    def find(self, key: str, members: Container[str] | None = None) -> dict | None:
        """One accepted sample by key, or None (reads only the shard that holds it)."""
        for rec in self.records():
            if key in rec["accepted"]:
                for s in self.iter_shard(rec, members, keys={key}):
                    return s
        return None


def sample_meta(sample: dict) -> dict:
    """A sample's parsed JSON metadata ({} when it has none)."""
    raw = sample.get(META)
    if raw is None:
        return {}
    meta = json.loads(raw)
    return meta if isinstance(meta, dict) else {}


def is_dataset(storage: Storage) -> bool:
    return storage.exists("run.json") or bool(storage.list(SHARD_DIR + "/"))


def stage_totals(records: Iterable[dict], stage: str) -> dict:
    """A stage's ``stage_stats`` added up over commit records (the run's total of what the stage counted
    per shard): the numbers live in the records, so a redone shard is never counted twice."""
    total: dict = {"stage": stage, "shards": 0}
    for rec in records:
        mine = (rec.get("stage_stats") or {}).get(stage)
        if not isinstance(mine, dict) or not mine:
            continue
        total["shards"] += 1
        for k, v in mine.items():
            if isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
    for k, digits in (("cost_usd", 6), ("seconds", 3)):
        if k in total:
            total[k] = round(total[k], digits)
    return total
