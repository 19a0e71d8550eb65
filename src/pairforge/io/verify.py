"""`pairforge verify`: check a dataset against its commit records, byte for byte.

For every commit record: the record parses; its accounting adds up (accepted + rejected = the shard's
inputs); its data is there with the recorded size and sha256 (the tar, or every folder file); the tar
reads to the end; the samples are exactly the accepted keys, in order, each with HQ, LQ(s) and JSON;
every image decodes and every JSON parses (skip decoding with ``decode=False``). If ``index.json`` exists,
every shard it lists must still have a matching valid record. Works on local and s3:// directories.
"""
from __future__ import annotations

import hashlib
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pairforge.io.dataset import (
    HQ,
    META,
    NEG,
    Problem,
    folder_member,
    lq_members,
    record_layout,
    record_name,
    scan_commits,
)
from pairforge.io.storage import Storage

#: at most this many problems are listed per shard (a shard garbled from the start would list every sample)
MAX_PROBLEMS_PER_SHARD = 20


@dataclass
class VerifyReport:
    shards: int = 0
    samples: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _HashingReader:
    """A read-only stream that hashes what is read through it (so a tar is read once, not twice)."""

    def __init__(self, f):
        self.f = f
        self.digest = hashlib.sha256()
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.digest.update(data)
        self.n += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _check_sample(name: str, sample: dict, decode: bool) -> list[str]:
    """What is wrong with one sample's members (empty when nothing)."""
    from pairforge.io.images import decode_png

    key = sample["__key__"]
    out = []
    lqs = lq_members(sample)
    images = ((NEG, NEG in sample),) if NEG in sample else ((HQ, HQ in sample), ("lq.png (or lq_0.png..)", bool(lqs)))
    for needed, present in (*images, (META, META in sample)):
        if not present:
            out.append(f"sample {key} has no {needed}")
    if META in sample:
        try:
            meta = json.loads(sample[META])
            if not isinstance(meta, dict) or meta.get("key") != key:
                out.append(f"sample {key}: {META} does not describe this sample")
        except (ValueError, UnicodeDecodeError) as e:
            out.append(f"sample {key}: {META} does not parse ({e})")
    if decode:
        for m in [HQ, NEG, *lqs]:
            if m in sample:
                try:
                    decode_png(sample[m])
                except ValueError:
                    out.append(f"sample {key}: {m} is not a decodable image")
    return out


def _verify_tar(storage: Storage, rec: dict, decode: bool) -> list[Problem]:
    name = rec["tar"]
    problems: list[Problem] = []
    keys = []
    try:
        f = storage.open_read(name)
    except (FileNotFoundError, OSError) as e:
        return [Problem(name, f"cannot be read ({e})")]
    with f:
        hr = _HashingReader(f)
        try:
            cur: dict | None = None
            samples = []
            with tarfile.open(fileobj=hr, mode="r|") as tar:
                for ti in tar:
                    if not ti.isfile():
                        continue
                    key, _, member = ti.name.partition(".")
                    if cur is None or cur["__key__"] != key:
                        cur = {"__key__": key}
                        samples.append(cur)
                        keys.append(key)
                    cur[member] = tar.extractfile(ti).read()
                    if len(samples) > 1:  # check and drop finished samples: bounded memory
                        problems += [Problem(name, p) for p in _check_sample(name, samples.pop(0), decode)]
            for s in samples:
                problems += [Problem(name, p) for p in _check_sample(name, s, decode)]
        except (tarfile.TarError, EOFError) as e:
            problems.append(Problem(name, f"not a readable tar after {len(keys)} samples ({e})"))
        hr.drain()  # the whole file is hashed, however far the tar could be read
    got = hr.digest.hexdigest()
    if got != rec.get("sha256"):
        problems.insert(0, Problem(name, f"sha256 {got[:12]}.. does not match its record ({str(rec.get('sha256'))[:12]}..): "
                                         "the file changed after it was committed"))
    if keys != rec["accepted"]:
        extra, missing = sorted(set(keys) - set(rec["accepted"])), sorted(set(rec["accepted"]) - set(keys))
        problems.append(Problem(name, f"holds {len(keys)} samples, the record lists {len(rec['accepted'])}"
                                      + (f"; missing {missing[:5]}" if missing else "")
                                      + (f"; not in the record {extra[:5]}" if extra else "")
                                      + ("; same keys in another order" if not extra and not missing else "")))
    return problems


def _verify_folder(storage: Storage, rec: dict, decode: bool) -> list[Problem]:
    info = rec.get("file_info") or {}
    problems: list[Problem] = []
    samples: dict[str, dict] = {k: {"__key__": k} for k in rec["accepted"]}
    for path in rec["files"]:
        try:
            data = storage.read_bytes(path)
        except (FileNotFoundError, OSError) as e:
            problems.append(Problem(path, f"missing ({type(e).__name__})"))
            continue
        want = info.get(path)
        if want is not None:
            got = hashlib.sha256(data).hexdigest()
            if len(data) != want.get("bytes") or got != want.get("sha256"):
                problems.append(Problem(path, f"sha256 {got[:12]}.. ({len(data)} bytes) does not match its record "
                                              f"({str(want.get('sha256'))[:12]}.., {want.get('bytes')} bytes)"))
        key, member = folder_member(path)
        if key not in samples:
            problems.append(Problem(path, f"listed by {record_name(rec['shard'])} but {key} is not an accepted key"))
            continue
        samples[key][member] = data
    for s in samples.values():
        for p in _check_sample(record_name(rec["shard"]), s, decode):
            problems.append(Problem(record_name(rec["shard"]), p))
    return problems


def _verify_record(storage: Storage, rec: dict, decode: bool) -> list[Problem]:
    name = record_name(rec["shard"])
    problems = []
    rejected = rec.get("rejected") or []
    if len(rec["accepted"]) + len(rejected) != rec["end"] - rec["start"]:
        problems.append(Problem(name, f"accounts for {len(rec['accepted'])} accepted + {len(rejected)} rejected inputs, "
                                      f"but the shard owns {rec['end'] - rec['start']} ([{rec['start']}, {rec['end']}))"))
    if record_layout(rec) == "folder":
        problems += _verify_folder(storage, rec, decode)
    elif rec.get("tar"):
        problems += _verify_tar(storage, rec, decode)
    if len(problems) > MAX_PROBLEMS_PER_SHARD:
        n = len(problems) - MAX_PROBLEMS_PER_SHARD
        problems = problems[:MAX_PROBLEMS_PER_SHARD] + [Problem(name, f"... and {n} more problems in this shard")]
    return problems


def _verify_index(storage: Storage, records: dict[int, dict], flagged: set[str]) -> list[Problem]:
    """Entries of index.json without a matching valid record (records already reported are skipped)."""
    from pairforge.pipeline.ledger import INDEX_JSON

    if not storage.exists(INDEX_JSON):
        return []
    try:
        index = json.loads(storage.read_bytes(INDEX_JSON))
        entries = index["shards"]
    except (ValueError, KeyError, TypeError) as e:
        return [Problem(INDEX_JSON, f"not a pairforge index ({e})")]
    by_tar = {r["tar"]: r for r in records.values() if r.get("tar")}
    by_record = {record_name(sid): r for sid, r in records.items()}
    problems = []
    for e in entries:
        if not isinstance(e, dict):
            problems.append(Problem(INDEX_JSON, f"shard entry {e!r} is not an object"))
            continue
        rec = by_tar.get(e.get("name")) if e.get("name") else by_record.get(e.get("record"))
        what = e.get("name") or e.get("record")
        if rec is None and str(what).rsplit(".", 1)[0] + ".json" in flagged:
            continue
        if rec is None:
            problems.append(Problem(INDEX_JSON, f"lists {what}, which has no valid commit record"))
        elif rec["samples"] != e.get("samples") or (e.get("sha256") and rec.get("sha256") != e.get("sha256")):
            problems.append(Problem(INDEX_JSON, f"entry for {what} ({e.get('samples')} samples) disagrees with its record "
                                                f"({rec['samples']} samples)"))
    return problems


def verify_dataset(storage: Storage, decode: bool = True, workers: int = 4) -> VerifyReport:
    """Check every committed shard of a dataset (see the module docstring); problems in shard order."""
    scan = scan_commits(storage, check="size")
    report = VerifyReport(problems=list(scan.problems))
    records = [r for _sid, r in sorted(scan.records.items())]
    with ThreadPoolExecutor(max(1, workers)) as ex:  # hashing, inflating and decoding release the GIL
        for rec, probs in zip(records, ex.map(lambda r: _verify_record(storage, r, decode), records)):
            report.shards += 1
            report.samples += rec["samples"]
            report.bytes += rec["bytes"]
            report.problems += probs
    report.problems += _verify_index(storage, scan.records, {p.name for p in scan.problems})
    return report

