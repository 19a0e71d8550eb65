"""WebDataset shards with a commit protocol: the tar becomes visible atomically, then its JSON record
(the commit marker) is written last. A shard without a valid record does not exist.

Layout under the run directory::

    shards/shard-000042.tar    samples KEY.hq.png, KEY.lq.png, KEY.json[, KEY.txt], members adjacent
    shards/shard-000042.json   the commit record: accepted keys, rejections with reasons, sha256, bytes
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass

import numpy as np

from pairforge.batch import Batch, jsonable
from pairforge.io.images import encode_png
from pairforge.io.storage import TMP_MARK, Storage

SHARD_DIR = "shards"
RECORD_VERSION = 1


def shard_name(shard: int) -> str:
    return f"{SHARD_DIR}/shard-{shard:06d}"


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    # fixed metadata so that a rerun produces a byte-identical tar (same sha256)
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


@dataclass
class ShardWriter:
    storage: Storage
    png_compression: int = 1
    write_prompt: bool = True

    def sample_members(self, batch: Batch, row: int) -> list[tuple[str, bytes]]:
        key = batch["key"][row]
        hq, lq = batch["hq"][row], batch.get("lq", [None] * len(batch["key"]))[row]
        if hq is None or lq is None:
            raise ValueError(f"sample {key}: accepted but has no {'hq' if hq is None else 'lq'} image")
        meta = dict(batch["meta"][row])
        meta["key"] = key
        meta["index"] = int(batch["index"][row])
        meta["hq_size"] = [int(hq.shape[0]), int(hq.shape[1])]
        meta["lq_size"] = [int(lq.shape[0]), int(lq.shape[1])]
        members = [
            (f"{key}.hq.png", encode_png(hq, self.png_compression)),
            (f"{key}.lq.png", encode_png(lq, self.png_compression)),
            (f"{key}.json", json.dumps(jsonable(meta), sort_keys=True, allow_nan=False).encode()),
        ]
        prompt = batch.get("prompt", [None] * len(batch["key"]))[row]
        if self.write_prompt and prompt is not None:
            members.append((f"{key}.txt", str(prompt).encode("utf-8")))
        return members

    def _rows(self, shard: int, start: int, end: int, batch: Batch):
        """Yield (key, members) of accepted rows in index order; fills self._acc with the accounting."""
        got = sorted(batch["index"])
        if got != list(range(start, end)):
            raise ValueError(f"shard {shard}: batch holds indices {got[:3]}..., expected [{start}, {end})")
        acc = self._acc = {"accepted": [], "rejected": [], "counts": {}}
        for row in sorted(range(len(batch["index"])), key=lambda r: batch["index"][r]):
            key, index = batch["key"][row], int(batch["index"][row])
            rej = batch["reject"][row]
            if rej is None:
                try:
                    members = self.sample_members(batch, row)
                except (ValueError, RuntimeError) as e:
                    rej = {"stage": "writer", "rule": "encode_error", "reason": str(e), "value": None}
            if rej is not None:
                acc["rejected"].append({"key": key, "index": index, **rej})
                tag = f"{rej['stage']}/{rej['rule']}"
                acc["counts"][tag] = acc["counts"].get(tag, 0) + 1
                continue
            acc["accepted"].append(key)
            yield key, members

    def _commit(self, shard: int, start: int, end: int, t0: float, extra: dict | None, **fields) -> dict:
        acc = self._acc
        record = {
            "version": RECORD_VERSION,
            "shard": shard,
            "start": start,
            "end": end,
            "samples": len(acc["accepted"]),
            "accepted": acc["accepted"],
            "rejected": acc["rejected"],
            "rejected_counts": acc["counts"],
            "write_seconds": round(time.perf_counter() - t0, 4),
            **fields,
        }
        if extra:
            record.update(extra)
        # the commit marker, written last
        self.storage.write_bytes(shard_name(shard) + ".json", json.dumps(jsonable(record), sort_keys=True).encode())
        return record

    def write_shard(self, shard: int, start: int, end: int, batch: Batch, extra: dict | None = None) -> dict:
        """Write shard ``shard`` (indices [start, end)) and return its commit record (already stored)."""
        t0 = time.perf_counter()
        tar_name = shard_name(shard) + ".tar"
        tmp = self.storage.local_tempfile(tar_name)
        digest = hashlib.sha256()
        with open(tmp, "wb") as raw:
            with tarfile.open(fileobj=_HashingWriter(raw, digest), mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for _key, members in self._rows(shard, start, end, batch):
                    for name, data in members:
                        tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
            n_bytes = raw.tell()
        if self._acc["accepted"]:
            self.storage.put_file(tar_name, tmp)
            return self._commit(shard, start, end, t0, extra, tar=tar_name, bytes=n_bytes, sha256=digest.hexdigest())
        os.unlink(tmp)
        return self._commit(shard, start, end, t0, extra, tar=None, bytes=0, sha256=None)


@dataclass
class FolderWriter(ShardWriter):
    """Plain files instead of tars: ``hq/KEY.png``, ``lq/KEY.png``, ``meta/KEY.json`` (``prompt/KEY.txt``).

    Each file is written atomically; the shard's record is still written last and is what makes the
    shard count as done on resume (files of an uncommitted shard are simply overwritten)."""

    SUBDIRS = {"hq.png": "hq/{key}.png", "lq.png": "lq/{key}.png", "json": "meta/{key}.json", "txt": "prompt/{key}.txt"}

    def write_shard(self, shard: int, start: int, end: int, batch: Batch, extra: dict | None = None) -> dict:
        t0 = time.perf_counter()
        files, n_bytes = [], 0
        for key, members in self._rows(shard, start, end, batch):
            for name, data in members:
                path = self.SUBDIRS[name[len(key) + 1:]].format(key=key)
                self.storage.write_bytes(path, data)
                files.append(path)
                n_bytes += len(data)
        return self._commit(shard, start, end, t0, extra, tar=None, files=files, bytes=n_bytes, sha256=None)


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


def committed_records(storage: Storage) -> dict[int, dict]:
    """Valid commit records by shard id (a record whose tar is missing or resized is not valid)."""
    names = storage.list(SHARD_DIR + "/")
    present = set(names)
    out: dict[int, dict] = {}
    for n in names:
        if not n.endswith(".json") or TMP_MARK in n:
            continue
        try:
            rec = json.loads(storage.read_bytes(n))
        except (ValueError, OSError):
            continue  # unreadable record = uncommitted; the shard is redone
        tar = rec.get("tar")
        if tar is not None:
            if tar not in present or storage.size(tar) != rec.get("bytes"):
                continue
        out[int(rec["shard"])] = rec
    return out


def read_record(storage: Storage, shard: int) -> dict | None:
    name = shard_name(shard) + ".json"
    try:
        return json.loads(storage.read_bytes(name))
    except FileNotFoundError:
        return None
    except Exception:
        if not storage.exists(name):
            return None
        raise


def iter_tar_samples(fileobj) -> "list[dict]":
    """Group the members of a pairforge tar into samples: {"__key__": key, "hq.png": bytes, ...}."""
    out: list[dict] = []
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for ti in tar:
            if not ti.isfile():
                continue
            key, _, ext = ti.name.partition(".")
            data = tar.extractfile(ti).read()
            if not out or out[-1]["__key__"] != key:
                out.append({"__key__": key})
            out[-1][ext] = data
    return out


def decode_sample_images(sample: dict) -> tuple[np.ndarray, np.ndarray]:
    from pairforge.io.images import decode_png

    return decode_png(sample["hq.png"]), decode_png(sample["lq.png"])
