"""Process one shard: make its batch, run stages over it in micro-batches, write it (library-level,
no Ray: both executors call this)."""
from __future__ import annotations

import time
from concurrent.futures import Executor

from pairforge.batch import Batch, Rejection, live_rows, new_batch, reject
from pairforge.io.dataset import DatasetWriter
from pairforge.io.thumbnails import make_thumbnail
from pairforge.stage import Stage


def take_rows(batch: Batch, rows: list[int]) -> Batch:
    return {k: [v[r] for r in rows] for k, v in batch.items()}


def put_rows(batch: Batch, rows: list[int], part: Batch) -> None:
    n = len(batch["index"])
    for k, v in part.items():
        if k not in batch:
            batch[k] = [None] * n
        for j, r in enumerate(rows):
            batch[k][r] = v[j]


def run_stage(stage: Stage, batch: Batch, pool: Executor | None = None) -> Batch:
    """Run one stage over the live rows of a batch, ``batch_size`` samples per call.

    Only live rows are grouped, so a GPU stage sees full batches even after filters rejected some.
    With a thread ``pool`` and a stage that allows it (``concurrent_calls``) the calls run at the same
    time; they get exactly the rows they would get one after another, so the output is the same."""
    reject_too_large(stage, batch)
    rows = live_rows(batch)
    size = max(1, stage.resources.batch_size)
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    judged = [[batch["hq"][r] for r in chunk] if "hq" in batch else [None] * len(chunk) for chunk in chunks]
    parts_in = [take_rows(batch, chunk) for chunk in chunks]
    if pool is not None and len(chunks) > 1 and stage.concurrent_calls:
        stage.open()
        parts = list(pool.map(stage, parts_in))
    else:
        parts = [stage(part) for part in parts_in]
    for chunk, part, seen in zip(chunks, parts, judged):
        if len(part["index"]) != len(chunk) or list(part["index"]) != [batch["index"][r] for r in chunk]:
            raise RuntimeError(f"stage {stage.name!r} changed the rows of its batch (stages must never drop rows)")
        put_rows(batch, chunk, part)
        keep_rejected_thumbnails(batch, chunk, seen)
    return batch


def stage_max_pixels(stage: Stage) -> int | None:
    """The most pixels one image may have when it reaches ``stage``: ``resources.max_pixels`` if set,
    else the stage's own default (``default_max_pixels``, sized from its memory per pixel)."""
    configured = getattr(getattr(stage.config, "resources", None), "max_pixels", None)
    return configured or getattr(stage, "default_max_pixels", None)


def reject_too_large(stage: Stage, batch: Batch) -> None:
    """Reject live rows whose image exceeds the stage's pixel limit as ``<stage>/too_large`` (with the
    limit and how to change it), so no single image can take a worker past its memory budget."""
    limit = stage_max_pixels(stage)
    if not limit or "hq" not in batch:
        return
    for r in live_rows(batch):
        img = batch["hq"][r]
        if img is not None and img.shape[0] * img.shape[1] > limit:
            h, w = img.shape[:2]
            reject(batch, r, Rejection(stage.name, "too_large", f"{w}x{h} ({w * h} pixels) exceeds the {stage.name} "
                                       f"stage's max_pixels={limit} (set its resources.max_pixels, or crop)", w * h))


def keep_rejected_thumbnails(batch: Batch, rows: list[int], judged: list) -> None:
    """Keep a tiny copy of each image this stage just rejected (the writer stores a few per reason in the
    commit record, see :mod:`pairforge.io.thumbnails`)."""
    for r, img in zip(rows, judged):
        if img is not None and batch["reject"][r] is not None:
            if "thumb" not in batch:
                batch["thumb"] = [None] * len(batch["index"])
            if batch["thumb"][r] is None:
                batch["thumb"][r] = make_thumbnail(img)


def run_stages(stages: list[Stage], batch: Batch, timings: dict[str, float] | None = None,
               stats: dict[str, dict] | None = None, pool: Executor | None = None) -> Batch:
    """Run stages in order over one shard's batch; add each stage's seconds to ``timings`` and its
    statistics (:meth:`Stage.take_stats`) to ``stats`` (they end in the shard's commit record)."""
    for st in stages:
        t0 = time.perf_counter()
        batch = run_stage(st, batch, pool)
        if timings is not None:
            timings[st.name] = timings.get(st.name, 0.0) + time.perf_counter() - t0
        got = st.take_stats()  # always taken, so counts never leak from one shard into the next
        if got and stats is not None:
            mine = stats.setdefault(st.name, {})
            for k, v in got.items():
                mine[k] = mine.get(k, 0) + v
    return batch


def shard_batch(start: int, end: int) -> Batch:
    return new_batch(list(range(start, end)))


def write_batch(writer: DatasetWriter, shard: int, start: int, end: int, batch: Batch, timings: dict,
                stage_stats: dict | None = None, pool: Executor | None = None) -> dict:
    """Commit a shard; with a thread ``pool`` its images are encoded in parallel (written in index
    order). Its record holds ``stage_seconds`` and, when a stage counted anything (:meth:`Stage.count`),
    ``stage_stats``: per-stage numbers live inside the commit protocol, so a redone shard replaces its
    own numbers instead of adding to them."""
    extra: dict = {"stage_seconds": {k: round(v, 4) for k, v in timings.items()}}
    if stage_stats:
        extra["stage_stats"] = stage_stats
    return writer.write_batch(shard, start, end, batch, extra=extra, map_fn=pool.map if pool is not None else None)
