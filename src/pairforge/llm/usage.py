"""Durable usage accounting: every request sent to a provider, success or not, with its tokens and cost.

Each process (driver or worker) appends to its own JSON-lines file
``usage/<component>/<host>-<pid>-<random>.jsonl`` in the run directory. A ``begin`` line is written
*before* a request is sent and an ``end`` line (status, kind, tokens, cost, seconds) after it returns,
so a run killed with ``kill -9`` has recorded every request the server may have seen; a begin without an
end is counted as a request and reported as ``interrupted``. Nothing is ever rewritten or deduplicated:
this is the bill, so a redone shard's requests count again, as the provider counted them.

On a local run directory each line is one ``write`` on a file opened for appending (it survives kill -9
of the writer, the kernel holds it). Object stores cannot append: there the lines are buffered and
each :meth:`UsageLog.flush` (after every stage batch, and at close) writes a new numbered object, so a
kill -9 loses at most the requests of the batch in flight.

:func:`summarize_usage` adds one component's files up: ``requests``, ``calls`` (logical requests; the
rest are retries), ``failed_requests``, ``failed_calls``, ``interrupted``, tokens, ``cost_usd``.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

USAGE_DIR = "usage"


@dataclass
class CallUsage:
    """What one logical call cost: attempts sent, tokens, USD, seconds (kept in sample metadata)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    def add(self, other: CallUsage) -> None:
        for k in ("requests", "input_tokens", "output_tokens", "cost_usd", "seconds"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cost_usd"] = round(d["cost_usd"], 6)
        d["seconds"] = round(d["seconds"], 3)
        return d


class UsageLog:
    """One process's append-only usage file for one component. Thread-safe; pickles as a fresh log
    (each worker process writes its own file)."""

    def __init__(self, storage, component: str):
        self.storage = storage
        self.component = component
        self._init()

    def _init(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._calls = itertools.count()
        self._name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        self._segment = 0
        root = getattr(self.storage, "root", None)
        self._path = None
        if root is not None:
            self._path = os.path.join(str(root), USAGE_DIR, self.component, self._name + ".jsonl")

    def __getstate__(self):
        return {"storage": self.storage, "component": self.component}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init()

    def new_call(self) -> str:
        return f"{self._name}-c{next(self._calls)}"

    def _write(self, rec: dict) -> None:
        line = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._path is not None:
                if self._fd is None:
                    os.makedirs(os.path.dirname(self._path), exist_ok=True)
                    self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(self._fd, line)
            else:
                self._buffer.append(line)

    def begin(self, call: str, attempt: int, provider: str, model: str) -> str:
        """Record a request about to be sent; returns its id for :meth:`end`."""
        rid = f"{self._name}-{next(self._ids)}"
        self._write({"e": "begin", "id": rid, "call": call, "attempt": attempt, "provider": provider,
                     "model": model, "t": round(time.time(), 3)})
        return rid

    def end(self, rid: str, ok: bool, status: int | None = None, kind: str | None = None,
            input_tokens: int = 0, output_tokens: int = 0, cost_usd: float = 0.0, seconds: float = 0.0) -> None:
        self._write({"e": "end", "id": rid, "ok": ok, "status": status, "kind": kind, "in": int(input_tokens),
                     "out": int(output_tokens), "cost": round(float(cost_usd), 9), "s": round(seconds, 3)})

    def flush(self) -> None:
        """Object stores: write the buffered lines as a new object (no-op for local directories)."""
        with self._lock:
            if not self._buffer or self.storage is None:
                return
            data, self._buffer = b"".join(self._buffer), []
            name = f"{USAGE_DIR}/{self.component}/{self._name}-{self._segment:06d}.jsonl"
            self._segment += 1
        try:
            self.storage.write_bytes(name, data)
        except Exception as e:  # noqa: BLE001 - accounting must not fail a run; say so loudly
            log.error("could not write the usage log %s: %s", name, e)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def summarize_usage(storage, component: str) -> dict:
    """The run's total usage of one component, from every process's log."""
    begins: dict[str, dict] = {}
    ends: dict[str, dict] = {}
    files = [n for n in storage.list(f"{USAGE_DIR}/{component}/") if n.endswith(".jsonl")]
    for n in files:
        for line in storage.read_bytes(n).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash mid-write: its begin (if any) was written whole
            (begins if rec.get("e") == "begin" else ends)[rec.get("id")] = rec
    calls: dict[str, tuple[int, bool]] = {}  # call -> (last attempt, its outcome)
    total = {"requests": len(begins), "failed_requests": 0, "interrupted": 0, "input_tokens": 0,
             "output_tokens": 0, "cost_usd": 0.0, "seconds": 0.0}
    for rid, b in begins.items():
        e = ends.get(rid)
        if e is None:
            total["interrupted"] += 1
            ok = False
        else:
            ok = bool(e.get("ok"))
            total["failed_requests"] += 0 if ok else 1
            total["input_tokens"] += int(e.get("in", 0))
            total["output_tokens"] += int(e.get("out", 0))
            total["cost_usd"] += float(e.get("cost", 0.0))
            total["seconds"] += float(e.get("s", 0.0))
        prev = calls.get(b["call"])
        if prev is None or b.get("attempt", 1) >= prev[0]:
            calls[b["call"]] = (b.get("attempt", 1), ok)
    total["calls"] = len(calls)
    total["retries"] = total["requests"] - total["calls"]
    total["failed_calls"] = sum(1 for _, ok in calls.values() if not ok)
    total["cost_usd"] = round(total["cost_usd"], 6)
    total["seconds"] = round(total["seconds"], 3)
    return {"component": component, "files": len(files), **total}


def usage_components(storage) -> list[str]:
    """Components that have a usage log in this run directory."""
    names = storage.list(f"{USAGE_DIR}/")
    return sorted({n.split("/")[1] for n in names if n.count("/") >= 2 and n.endswith(".jsonl")})
