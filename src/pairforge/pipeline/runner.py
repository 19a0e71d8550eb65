"""Run a pipeline config into an output directory: plan, resume, calibrate, execute, index, summarise."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from pairforge.batch import Batch
from pairforge.config import PipelineConfig, config_to_dict
from pairforge.io.runlock import RunLock, acquire_run_lock
from pairforge.io.storage import Storage, open_storage
from pairforge.pipeline import ledger
from pairforge.pipeline.executors import executor_for
from pairforge.pipeline.plan import Plan, PlanError, ShardSpec, build_stages
from pairforge.pipeline.shardwork import run_stages, shard_batch
from pairforge.registry import SOURCES
from pairforge.sources.config import FilesSourceConfig
from pairforge.stage import RunContext

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    out: str
    num_samples: int
    shards_total: int
    shards_skipped: int
    shards_written: int
    accepted: int
    rejected: dict[str, int]
    seconds: float
    accepted_this_run: int
    inputs_this_run: int
    removed: list[str] = field(default_factory=list)
    #: post-run reports: whole-run dedup (``dedup/<name>``), LLM usage (``usage/<component>``)
    reports: dict[str, dict] = field(default_factory=dict)
    #: the run report and dataset card written at the end (``report.html``, ``README.md``), if any
    report: str | None = None
    card: str | None = None

    @property
    def pairs_per_second(self) -> float:
        return self.accepted_this_run / self.seconds if self.seconds > 0 else 0.0


def _files_listing(storage: Storage | None, cfg: FilesSourceConfig) -> tuple[list[str], dict]:
    """The files listing: reused from the run directory on resume, else discovered and persisted."""
    from pairforge.sources.files import (
        LISTING,
        discover_files,
        load_listing,
        write_listing,
    )

    files = load_listing(storage) if storage is not None else None
    if files is not None:
        return files, {"files": len(files), "listing": "reused from run directory"}
    files, stats = discover_files(cfg)
    if not files:
        raise PlanError(f"source.paths {cfg.paths} contain no file with extensions {cfg.extensions}")
    if storage is not None:
        storage.write_bytes(LISTING, write_listing(files))
    return files, stats


def make_plan(config: PipelineConfig, out: str | None, limit: int | None = None) -> Plan:
    """Everything about a run that can be known before any image is touched. The run's size is known
    before any stage is built, so every stage gets the complete :class:`RunContext`."""
    storage = open_storage(out) if out is not None else None
    run_url = storage.url if storage else None
    src = config.source
    files = None
    info: dict = {}
    if isinstance(src, FilesSourceConfig):
        files, info = _files_listing(storage, src)
    source_len = None
    if "partners" in SOURCES.entry_for(src).impls:  # an image source: its size is known up front
        from pairforge.stages.source import open_image_source

        source_len = len(open_image_source(src, RunContext(seed=config.run.seed, run_url=run_url), files))
    cap = limit if limit is not None else config.run.num_samples
    if source_len is None:
        if cap is None:
            raise PlanError(f"source.kind {src.kind!r} has no natural size: set run.num_samples (or --limit)")
        total = cap
    else:
        total = source_len if cap is None else min(cap, source_len)
        info = {"kind": src.kind, "available": source_len, **info}
    if total <= 0:
        raise PlanError(f"the source yields no samples (source.kind={src.kind!r})")
    ctx = RunContext(seed=config.run.seed, run_url=run_url, device=config.run.device, num_samples=total)
    stages = build_stages(config, ctx, files=None if storage is not None else files)
    return Plan(config=config, context=ctx, stages=stages, num_samples=total, source_info=info)


def calibrate(plan: Plan) -> None:
    """Let stages that need data before the run (percentile thresholds) prepare, in order, on the driver."""
    for i, st in enumerate(plan.stages):
        if not st.needs_calibration:
            continue
        before = plan.stages[:i]

        def upstream(n: int, _before=before) -> Batch:
            return run_stages(_before, shard_batch(0, min(n, plan.num_samples)))

        st.prepare(upstream)


def run_pipeline(
    config: PipelineConfig,
    out: str,
    limit: int | None = None,
    executor: str = "ray",
    ray_address: str | None = None,
    on_start: Callable[[Plan, int, list[ShardSpec]], None] | None = None,
    on_record: Callable[[dict], None] | None = None,
    verify: bool = False,
    allow_shrink: bool = False,
) -> RunSummary:
    """``verify``: check the sha256 of every committed shard before trusting it (else only those whose
    size or modification time looks wrong); a shard that fails is redone. ``allow_shrink``: let a plan
    smaller than the run directory's committed shards delete those outside it (else refused).

    The run directory's lock is held from before the first write to the end, so a second writer is
    refused instead of deleting this run's in-flight files."""
    t0 = time.perf_counter()
    storage = open_storage(out)
    with acquire_run_lock(storage) as lock:
        return _run_locked(config, storage, lock, t0, limit, executor, ray_address, on_start, on_record, verify,
                           allow_shrink)


def _run_locked(config: PipelineConfig, storage: Storage, lock: RunLock, t0: float, limit: int | None, executor: str,
                ray_address: str | None, on_start: Callable[[Plan, int, list[ShardSpec]], None] | None,
                on_record: Callable[[dict], None] | None, verify: bool, allow_shrink: bool) -> RunSummary:
    plan = make_plan(config, storage.url, limit)
    resolved = config_to_dict(config)
    resolved["run"]["num_samples"] = plan.num_samples
    shards = plan.shards()
    done = ledger.committed_records(storage, check="hash" if verify else "mtime")
    ledger.check_shrink(storage, done, shards, allowed=allow_shrink)
    ledger.start_run(storage, resolved, plan.describe())
    pending = [s for s in shards if not ledger.is_done(done.get(s.shard), s.start, s.end)]
    if on_start:
        on_start(plan, len(shards), pending)
    if pending:
        calibrate(plan)
    counters = {"accepted": 0, "inputs": 0}

    def record_cb(rec: dict) -> None:
        counters["accepted"] += rec["samples"]
        counters["inputs"] += rec["end"] - rec["start"]
        if on_record:
            on_record(rec)

    runner = executor_for(executor, config.ray, ray_address)
    runner.run(plan, pending, record_cb)
    lock.check()
    records = ledger.committed_records(storage)
    missing = [s.shard for s in shards if not ledger.is_done(records.get(s.shard), s.start, s.end)]
    if missing:
        raise RuntimeError(f"shards {missing[:10]} were not committed; rerun the same command to resume")
    index = ledger.write_index(storage, records, shards)
    removed = ledger.cleanup(storage, records, shards)
    reports = post_run_reports(config, plan, storage)
    seconds = time.perf_counter() - t0
    ledger.finish_run(storage, {"finished": time.time(), "seconds": round(seconds, 3), "executor": runner.name,
                                "shards_written": len(pending), "inputs": counters["inputs"],
                                "accepted": counters["accepted"]})
    report, card = write_report(config, storage)
    return RunSummary(
        out=storage.url,
        num_samples=plan.num_samples,
        shards_total=len(shards),
        shards_skipped=len(shards) - len(pending),
        shards_written=len(pending),
        accepted=index["total_samples"],
        rejected=index["rejected"],
        seconds=seconds,
        accepted_this_run=counters["accepted"],
        inputs_this_run=counters["inputs"],
        removed=removed,
        reports=reports,
        report=report,
        card=card,
    )


def write_report(config: PipelineConfig, storage: Storage) -> tuple[str | None, str | None]:
    """``report.html`` and ``README.md`` after a complete run (``output.report``). The data is committed
    by then, so a report that cannot be made is a warning naming the retry command, not a failed run."""
    if not config.output.report:
        return None, None
    from pairforge.runreport import write_report_and_card

    try:
        return write_report_and_card(storage)
    except Exception as e:  # noqa: BLE001 (the run's data is complete; only the report is missing)
        log.warning("report.html / README.md not written (%s: %s); the data is complete: run "
                    "`pairforge report %s` to retry", type(e).__name__, e, storage.url)
        return None, None


def post_run_reports(config: PipelineConfig, plan: Plan, storage: Storage) -> dict[str, dict]:
    """After the last shard: exact whole-run dedup (workers only see their own shard, so duplicates
    across shards are found here and listed in ``dedup/duplicates.json``), and LLM usage totals (every request the run's
    processes sent, from the usage logs, resumed runs included)."""
    from pairforge.filters.config import DedupFilterConfig

    reports: dict[str, dict] = {}
    stage_of = {id(s.config): s for s in plan.stages}
    for f in config.filters:
        st = stage_of[id(f)]
        if isinstance(f, DedupFilterConfig):
            from pairforge.filters.dedup import build_run_index

            rep = build_run_index(storage.url, kind=f.hash, max_distance=f.max_distance, flip=f.flip_invariant)
            reports[f"dedup/{st.name}"] = {"samples": rep["samples"], "kept": rep["kept"], "cross_shard_duplicates": len(rep["duplicates"])}
    from pairforge.llm.usage import summarize_usage, usage_components

    for component in usage_components(storage):  # prompts, prompts-privacy, each judge stage
        reports[f"usage/{component}"] = summarize_usage(storage, component)
    return reports

