"""The run directory's bookkeeping: run.json, the files listing, commit records, index.json, cleanup.

Resume = read the commit records, trust those whose data is present with the recorded size (and, when it
is newer than its record or ``run --verify`` asks, the recorded sha256) and whose index range matches the
plan, redo everything else (:mod:`pairforge.io.dataset` decides what counts as committed). Temp files and tars without a record are removed
at the end of a run, after every planned shard has been committed (never before: a straggler worker
of a killed run may still be renaming one)."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from pairforge.errors import UserError
from pairforge.io import dataset
from pairforge.io.dataset import (
    SHARD_DIR,
    Check,
    record_files,
    record_layout,
    record_name,
)
from pairforge.io.storage import Storage

RUN_JSON = "run.json"
INDEX_JSON = "index.json"
# config sections that may change between a run and its resume without changing any sample
RESUME_FREE_KEYS = ("ray",)
RESUME_FREE_RUN_KEYS = ("num_samples", "device")
# output options that only change the report, the dataset card or the records' thumbnails, never a sample
RESUME_FREE_OUTPUT_KEYS = ("report", "license", "rejected_thumbnails")


class ResumeConflict(UserError, ValueError):
    """A resume with a config that would make different samples."""


class ShrinkRefused(UserError):
    """A plan smaller than what the run directory holds would delete committed shards."""


#: the ``run`` flag that lets a smaller plan delete committed shards outside it
SHRINK_FLAG = "--allow-shrink"


def check_shrink(storage: Storage, records: dict[int, dict], plan_shards: list, allowed: bool = False) -> list[int]:
    """Committed shards a plan would delete: those outside it, and those whose range it cuts short (a
    shard redone with fewer inputs replaces its record). Raises :class:`ShrinkRefused` naming them, what
    they hold, and the flag that allows it, unless ``allowed``; returns their ids.

    Why refuse rather than keep them aside: a record outside ``index.json`` would still be read by
    ``info``, ``verify`` and the trainer's directory loader, and the cut-short last shard cannot be kept
    at all (the smaller plan rewrites it)."""
    planned = {s.shard: s for s in plan_shards}
    lost = []
    for sid, r in sorted(records.items()):
        s = planned.get(sid)
        if s is None or s.start > r.get("start", 0) or s.end < r.get("end", 0):
            lost.append(sid)
    if lost and not allowed:
        recs = [records[s] for s in lost]
        pairs = sum(int(r.get("samples", 0)) for r in recs)
        size = sum(int(r.get("bytes", 0)) for r in recs)
        inputs = max(r["end"] for r in records.values())
        new = max((s.end for s in plan_shards), default=0)
        raise ShrinkRefused(
            f"{storage.url} holds {inputs} committed inputs but this plan has {new}: it would delete "
            f"{len(lost)} committed shard(s) ({_ranges(lost)}; {pairs} pairs, {size / 1e6:.1f} MB). Rerun without "
            f"--limit (or with --limit {inputs}) to keep them, use a new --out, or pass {SHRINK_FLAG} to delete them."
        )
    return lost


def _ranges(ids: list[int]) -> str:
    out, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(f"shard {ids[i]}" if i == j else f"shards {ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(out)


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("pairforge", "numpy", "torch", "opencv-python-headless", "pillow", "ray", "pyiqa", "webdataset", "diffusers", "transformers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def comparable(config: dict) -> dict:
    c = {k: v for k, v in config.items() if k not in RESUME_FREE_KEYS}
    c["run"] = {k: v for k, v in c.get("run", {}).items() if k not in RESUME_FREE_RUN_KEYS}
    c["output"] = {k: v for k, v in c.get("output", {}).items() if k not in RESUME_FREE_OUTPUT_KEYS}
    # resources change speed, never samples
    return _drop_resources(c)


def _drop_resources(node):
    if isinstance(node, dict):
        return {k: _drop_resources(v) for k, v in node.items() if k != "resources"}
    if isinstance(node, list):
        return [_drop_resources(v) for v in node]
    return node


def _diff(a, b, path: str = "") -> list[str]:
    """The changed fields, one line each (``filters.1.metrics.0.threshold: 50.0 -> 40.0``): dicts and
    lists are compared entry by entry, so a change deep in a list names that entry, not the list."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k, _ABSENT), b.get(k, _ABSENT), f"{path}.{k}" if path else k)
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for i in range(max(len(a), len(b))):
            out += _diff(a[i] if i < len(a) else _ABSENT, b[i] if i < len(b) else _ABSENT, f"{path}.{i}")
        return out
    return [] if a == b else [f"{path}: {_short(a)} -> {_short(b)}"]


_ABSENT = object()


def _short(v, limit: int = 80) -> str:
    if v is _ABSENT:
        return "(absent)"
    text = json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def current_form(config: dict) -> dict:
    """A stored config re-read through today's config model, so a resume compares like with like: keys
    spelled the old way (e.g. ``backend:`` of an LLM, now ``provider:``) are migrated and options added
    since take their defaults. A stored config that no longer validates is compared as stored."""
    import warnings

    from pairforge.config import PipelineConfig, config_to_dict
    from pairforge.llm.config import ConfigDeprecationWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigDeprecationWarning)
            return config_to_dict(PipelineConfig.model_validate(config))
    except ValueError:
        return config


def start_run(storage: Storage, config: dict, plan_info: dict) -> dict:
    """Write run.json for a new run, or check that a resume uses a compatible config."""
    if storage.exists(RUN_JSON):
        old = json.loads(storage.read_bytes(RUN_JSON))
        changes = _diff(comparable(current_form(old["config"])), comparable(config))
        if changes:
            raise ResumeConflict(
                f"{storage.uri(RUN_JSON)} was made with a different config, so resuming would mix samples:\n  "
                + "\n  ".join(changes[:20])
                + "\nUse a new --out directory (or restore the original config)."
            )
        old.setdefault("resumes", []).append({"at": time.time(), "versions": package_versions()})
        old["config"] = config
        old["plan"] = plan_info
        storage.write_bytes(RUN_JSON, json.dumps(old, indent=2, sort_keys=True).encode())
        return old
    info = {
        "pairforge_run": 1,
        "created": time.time(),
        "config": config,
        "plan": plan_info,
        "versions": package_versions(),
        "git_revision": git_revision(),
        "argv": [a for a in sys.argv],
    }
    storage.write_bytes(RUN_JSON, json.dumps(info, indent=2, sort_keys=True).encode())
    return info


def finish_run(storage: Storage, session: dict) -> None:
    """Append one finished session (wall time, shards written, inputs, pairs) to run.json's ``sessions``:
    where the run report reads the wall time and pairs/s of the first run and each resume."""
    info = json.loads(storage.read_bytes(RUN_JSON))
    info.setdefault("sessions", []).append(session)
    storage.write_bytes(RUN_JSON, json.dumps(info, indent=2, sort_keys=True).encode())


def is_done(rec: dict | None, start: int, end: int) -> bool:
    return rec is not None and rec.get("start") == start and rec.get("end") == end


def committed_records(storage: Storage, check: Check = "mtime") -> dict[int, dict]:
    """Commit records whose data is intact, by shard id; a record that is malformed or whose data is
    missing or changed is logged as a warning naming the file, and its shard is redone."""
    return dataset.committed_records(storage, check)


def write_index(storage: Storage, records: dict[int, dict], plan_shards: list) -> dict:
    wanted = {s.shard for s in plan_shards}
    mine = {sid: r for sid, r in sorted(records.items()) if sid in wanted}
    layouts = {record_layout(r) for r in mine.values() if r["samples"]} or {"webdataset"}
    shards = []
    for sid, r in mine.items():
        if not r["samples"]:
            continue
        entry = {"shard": sid, "samples": r["samples"], "bytes": r["bytes"], "record": record_name(sid)}
        if r.get("tar"):
            entry.update(name=r["tar"], sha256=r["sha256"])
        shards.append(entry)
    rejected: dict[str, int] = {}
    members: set[str] = set()
    for sid, r in mine.items():
        for k, v in r.get("rejected_counts", {}).items():
            rejected[k] = rejected.get(k, 0) + v
        members |= set(r.get("members") or [])
    lqs = sorted((m for m in members if m.startswith("lq")), key=lambda m: (len(m), m)) or [dataset.LQ]
    negative = dataset.NEG in members and dataset.HQ not in members
    index = {
        "format": "pairforge-webdataset" if layouts == {"webdataset"} else "pairforge-" + "+".join(sorted(layouts)),
        "version": 1,
        "shards": shards,
        "total_samples": sum(r["samples"] for r in mine.values()),
        "total_inputs": sum(r["end"] - r["start"] for r in mine.values()),
        "rejected": dict(sorted(rejected.items())),
        "members": [dataset.NEG if negative else dataset.HQ, *([] if negative else lqs), dataset.META,
                    dataset.PROMPT + " (optional)"],
    }
    if negative:  # SUPIR-style negatives: images of their own kind, not pairs (the trainer refuses them)
        index["quality"] = dataset.NEGATIVE
    storage.write_bytes(INDEX_JSON, json.dumps(index, indent=2).encode())
    return index


def cleanup(storage: Storage, records: dict[int, dict], plan_shards: list) -> list[str]:
    """Remove temp files and shard files that no valid record of this plan owns. Returns what went."""
    keep = set()
    wanted = {s.shard for s in plan_shards}
    for sid, r in records.items():
        if sid in wanted:
            keep.add(record_name(sid))
            keep.update(f for f in record_files(r) if f.startswith(SHARD_DIR + "/"))
    gone = [n for n in storage.list(SHARD_DIR + "/") if n not in keep]
    storage.delete_many(gone)
    return gone
