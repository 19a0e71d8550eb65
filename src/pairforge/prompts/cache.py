"""A request cache in the run directory: a resumed run (or a second worker) never pays for the same
LLM request twice. Entries are keyed by a hash of everything that determines the request (backend,
model, instructions, request number, theme, temperature, ...) and never contain a key."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pairforge.io.storage import Storage


def request_key(parts: dict[str, Any]) -> str:
    """A stable hash of a request's defining parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class JsonCache:
    """``get``/``put`` JSON objects under ``prefix/<key>.json`` in a Storage (atomic writes)."""

    def __init__(self, storage: Storage | None, prefix: str):
        self.storage = storage
        self.prefix = prefix.strip("/")
        self.hits = 0
        self.misses = 0

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}.json"

    def get(self, key: str) -> Any | None:
        if self.storage is None:
            self.misses += 1
            return None
        name = self._name(key)
        try:
            if not self.storage.exists(name):
                self.misses += 1
                return None
            value = json.loads(self.storage.read_bytes(name))
        except (OSError, ValueError):
            self.misses += 1  # an unreadable entry is refetched and overwritten
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        if self.storage is not None:
            self.storage.write_bytes(self._name(key), json.dumps(value, ensure_ascii=False).encode("utf-8"))
