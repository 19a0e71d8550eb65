"""Request and cost accounting of the judge: per worker (thread-safe counter), per batch (a small file in
the run directory), and per run (:func:`summarize_usage` adds the batch files up)."""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass

USAGE_FIELDS = ("samples", "requests", "retries", "failures", "input_tokens", "output_tokens", "cost_usd", "seconds")


@dataclass
class Usage:
    samples: int = 0  # images judged (successfully or not)
    requests: int = 0  # calls made, retries included
    retries: int = 0
    failures: int = 0  # images whose judgement failed for good
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    def add(self, other: Usage) -> None:
        for f in USAGE_FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cost_usd"] = round(d["cost_usd"], 6)
        d["seconds"] = round(d["seconds"], 3)
        return d


class UsageCounter:
    """A thread-safe running total (the judge's requests run on a thread pool)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._total = Usage()

    def add(self, u: Usage) -> None:
        with self._lock:
            self._total.add(u)

    def snapshot(self) -> Usage:
        with self._lock:
            u = Usage()
            u.add(self._total)
            return u


def usage_prefix(stage_name: str) -> str:
    return f"filters/{stage_name}/usage/"


def write_batch_usage(storage, stage_name: str, indices: list[int], usage: Usage, extra: dict | None = None) -> None:
    """Persist one batch's usage; the name is derived from the batch's indices, so a redone batch
    overwrites its own file instead of being counted twice."""
    if storage is None or not indices:
        return
    name = f"{usage_prefix(stage_name)}{min(indices):010d}-{max(indices):010d}-{len(indices)}.json"
    storage.write_bytes(name, json.dumps({**usage.to_dict(), **(extra or {})}, sort_keys=True).encode())


def summarize_usage(storage, stage_name: str) -> dict:
    """The run's total judge usage from the per-batch files (requests, retries, failures, tokens, cost)."""
    total = Usage()
    files = [n for n in storage.list(usage_prefix(stage_name)) if n.endswith(".json")]
    for n in files:
        d = json.loads(storage.read_bytes(n))
        total.add(Usage(**{f: d.get(f, 0) for f in USAGE_FIELDS}))
    return {"stage": stage_name, "batches": len(files), **total.to_dict()}
