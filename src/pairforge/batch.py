"""The unit that flows between stages: a batch of samples as a dict of columns.

Columns (all lists of equal length):

- ``index``  (int)   global sample index; shard ``s`` owns ``[s*N, (s+1)*N)``
- ``key``    (str)   the WebDataset key, derived from the index only (no dots)
- ``meta``   (dict)  JSON-serialisable provenance, one section per stage (``source``, ``synthesis``,
                     ``filters``, ``degradation``, ...); it becomes ``KEY.json`` in the tar
- ``reject`` (dict | None) ``None`` while the sample is alive, else a :class:`Rejection` as a dict;
                     later stages skip rejected rows and the writer records them in the shard's ledger
- ``hq``     (np.ndarray | None) the clean image, ``uint8`` RGB, ``H x W x 3``
- ``lq``     (np.ndarray | None) the degraded image, ``uint8`` RGB (added by the degrade stage)
- ``prompt`` / ``negative_prompt`` (str | None) optional, for synthesis runs

Filters never drop rows: accounting stays exact because every index reaches the writer.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Batch = dict[str, list]

#: the columns every batch has from the start (:func:`new_batch`); a stage creates the others it writes
BASE_COLUMNS = ("index", "key", "meta", "reject")


@dataclass(frozen=True)
class Rejection:
    """Why a sample was not accepted: which stage, which rule, a human reason and the measured value."""

    stage: str
    rule: str
    reason: str
    value: Any = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["value"] = jsonable(d["value"])
        return d


def sample_key(index: int) -> str:
    """The sample key for a global index: fixed width so keys sort like indices, no dots."""
    return f"{index:010d}"


def new_batch(indices: list[int]) -> Batch:
    return {
        "index": list(indices),
        "key": [sample_key(i) for i in indices],
        "meta": [{} for _ in indices],
        "reject": [None for _ in indices],
        "hq": [None for _ in indices],
    }


def live_rows(batch: Batch) -> list[int]:
    """Row positions of samples not yet rejected."""
    return [i for i, r in enumerate(batch["reject"]) if r is None]


def reject(batch: Batch, row: int, rejection: Rejection) -> None:
    """Mark one row rejected (the first rejection wins; a rejected row is never revived)."""
    if batch["reject"][row] is None:
        batch["reject"][row] = rejection.to_dict()
        # free the pixels: rejected rows travel on only for the ledger
        for col in ("hq", "lq"):
            if col in batch:
                batch[col][row] = None


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


@dataclass
class StageResources:
    """What one worker of a stage needs; the pipeline turns it into a Ray actor pool."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batch_size: int = 16
    concurrency: int | None = None  # max workers; None = sized from the cluster
