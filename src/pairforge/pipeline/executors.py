"""Executors run the pending shards of a plan: in this process (``local``) or on Ray (``ray``).

Both call the same :mod:`pairforge.pipeline.shardwork` code, so a sample is identical either way."""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

from pairforge.errors import UserError
from pairforge.io.dataset import DatasetWriter, writer_for
from pairforge.io.storage import open_storage
from pairforge.pipeline.plan import Plan, PlanError, Segment, ShardSpec
from pairforge.pipeline.rayaddress import init_ray
from pairforge.pipeline.shardwork import run_stages, shard_batch, write_batch
from pairforge.stage import Placement, Stage

log = logging.getLogger(__name__)

OnRecord = Callable[[dict], None]


def make_writer(run_url: str, output) -> DatasetWriter:
    """The writer for an output section: WebDataset tars or plain folders."""
    return writer_for(open_storage(run_url), output)


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def run_bounded(submit: Callable[[ShardSpec], Future], pending: list[ShardSpec], in_flight: int,
                on_record: OnRecord) -> None:
    """Submit shards keeping at most ``in_flight`` queued or running (bounded memory); hand each record
    to ``on_record`` as it completes; on any error cancel what has not started and re-raise."""
    queue = iter(pending)
    running: set[Future] = set()
    try:
        while True:
            for spec in queue:
                running.add(submit(spec))
                if len(running) >= in_flight:
                    break
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                on_record(fut.result())
    except BaseException:
        for fut in running:
            fut.cancel()
        raise


class LocalExecutor:
    """Runs the stages in this process, no Ray: every core busy through threads, memory bounded.

    Decoding, checks, degradation and PNG encoding are OpenCV/PIL/numpy work that releases the GIL, so
    one process with threads overlaps them without copying images between processes:

    - a pool of ``workers`` threads runs the calls of a stage on different micro-batches at the same
      time (stages that declare ``concurrent_calls``) and encodes a shard's images in parallel;
    - when every stage allows it, up to ``shards_in_flight`` shards are processed at once (one decodes
      while another encodes), each shard's batch held until it is written: memory is bounded by
      ``shards_in_flight`` shards whatever the run size; otherwise shards go one after another.

    Samples depend on (seed, index) only and each stage call gets the same rows as in a serial run, so
    the bytes written do not depend on ``workers`` (``workers=1`` is the plain serial loop). Records
    reach ``on_record`` on the calling thread, in completion order."""

    name = "local"

    def __init__(self, workers: int | None = None, shards_in_flight: int | None = None, processes: bool = False):
        self.workers = max(1, workers if workers is not None else available_cpus())
        self.shards_in_flight = max(1, shards_in_flight if shards_in_flight is not None else self.workers)
        #: one process per worker instead of threads (each with its own copy of the stages, as Ray actors
        #: have): measured slower on 2 cores (BENCHMARKS.md), kept for GIL-bound stages
        self.processes = processes

    def run(self, plan: Plan, pending: list[ShardSpec], on_record: OnRecord) -> None:
        if self.processes and self.workers > 1 and pending:
            return self._run_processes(plan, pending, on_record)
        stages = plan.stages
        writer = make_writer(plan.context.run_url, plan.config.output)
        if not pending:
            return
        try:
            for st in stages:  # every model loads before the first shard (and before any thread calls it)
                r = st.resources
                st.open(Placement("local", r.num_cpus, r.num_gpus))
            if self.workers == 1:
                for spec in pending:
                    on_record(_run_shard(stages, writer, spec, None))
                return
            self._run_threaded(stages, writer, pending, on_record)
        finally:
            for st in stages:
                st.close()

    def _run_threaded(self, stages: list[Stage], writer: DatasetWriter, pending: list[ShardSpec], on_record: OnRecord) -> None:
        shared = all(st.concurrent_calls for st in stages)
        in_flight = self.shards_in_flight if shared else 1
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pairforge-rows") as rows, \
                ThreadPoolExecutor(in_flight, thread_name_prefix="pairforge-shard") as shards:
            run_bounded(lambda spec: shards.submit(_run_shard, stages, writer, spec, rows), pending, in_flight,
                        on_record)


    def _run_processes(self, plan: Plan, pending: list[ShardSpec], on_record: OnRecord) -> None:
        """Shards on a pool of worker processes (forkserver: no fork of a threaded parent), each holding
        its own unpickled stages and writer; at most ``shards_in_flight`` shards queued or running."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        payload = pickle.dumps({"stages": plan.stages, "run_url": plan.context.run_url, "output": plan.config.output})
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_process_init, initargs=(payload,)) as procs:
            run_bounded(lambda spec: procs.submit(_process_shard, spec), pending,
                        max(self.shards_in_flight, self.workers), on_record)


_PROCESS_STATE: dict = {}


def _process_init(payload: bytes) -> None:
    """Worker process start: its own stages (opened here, as a Ray actor opens its own) and writer."""
    spec = pickle.loads(payload)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    for st in spec["stages"]:
        r = st.resources
        st.open(Placement("local", r.num_cpus, r.num_gpus))
    _PROCESS_STATE.update(stages=spec["stages"], writer=make_writer(spec["run_url"], spec["output"]))


def _process_shard(spec: ShardSpec) -> dict:
    return _run_shard(_PROCESS_STATE["stages"], _PROCESS_STATE["writer"], spec, None)


def _run_shard(stages: list[Stage], writer: DatasetWriter, spec: ShardSpec, pool: ThreadPoolExecutor | None) -> dict:
    timings: dict[str, float] = {}
    stats: dict[str, dict] = {}
    batch = run_stages(stages, shard_batch(spec.start, spec.end), timings, stats, pool=pool)
    return write_batch(writer, spec.shard, spec.start, spec.end, batch, timings, stats, pool=pool)


class SegmentWorker:
    """One Ray Data actor: runs a segment's stages on whole shards (one row = one shard)."""

    def __init__(self, payload: bytes):
        spec = pickle.loads(payload)
        self.stages: list[Stage] = spec["stages"]
        self.with_writer: bool = spec["with_writer"]
        self.first: bool = spec["first"]
        self.placement = Placement("ray", spec["num_cpus"], spec["num_gpus"])
        self.threads = max(1, int(math.floor(spec["num_cpus"])) or 1)
        import cv2

        cv2.setNumThreads(self.threads)
        self.plan_writer = None
        if self.with_writer:
            self.plan_writer = make_writer(spec["run_url"], spec["output"])

    def _open(self) -> None:
        if not all(st._ready for st in self.stages):
            for st in self.stages:  # on the first call, inside the worker: errors reach the driver as the cause
                st.open(self.placement)
            torch = sys.modules.get("torch")  # only a stage that uses torch imports it
            if torch is not None:
                torch.set_num_threads(self.threads)

    def run_shard(self, shard: int, start: int, end: int, payload: bytes = b"") -> bytes:
        """One shard through the segment: the shard record as JSON when the segment writes, else the
        pickled (batch, timings, stats) for the next segment."""
        self._open()
        if self.first:
            batch, timings, stats = shard_batch(start, end), {}, {}
        else:
            batch, timings, stats = pickle.loads(payload)
        batch = run_stages(self.stages, batch, timings, stats)
        if self.with_writer:
            return json.dumps(write_batch(self.plan_writer, shard, start, end, batch, timings, stats)).encode()
        return pickle.dumps((batch, timings, stats), protocol=5)

    def __call__(self, rows: dict) -> dict:
        """Ray Data's batch interface: one row per shard."""
        import numpy as np

        out: dict[str, list] = {"shard": [], "start": [], "end": [], "payload": []}
        for i in range(len(rows["shard"])):
            shard, start, end = int(rows["shard"][i]), int(rows["start"][i]), int(rows["end"][i])
            out["payload"].append(self.run_shard(shard, start, end, b"" if self.first else rows["payload"][i]))
            out["shard"].append(shard)
            out["start"].append(start)
            out["end"].append(end)
        return {
            "shard": np.array(out["shard"], dtype=np.int64),
            "start": np.array(out["start"], dtype=np.int64),
            "end": np.array(out["end"], dtype=np.int64),
            "payload": np.array(out["payload"], dtype=object),
        }

    def close(self) -> None:
        """Tear the stages down (the plain-actor path calls this before it ends the actor)."""
        stages, self.stages = getattr(self, "stages", []), []
        for st in stages:
            try:
                st.close()
            except Exception as e:  # a failing teardown must not hide the run's own outcome
                log.warning("stage %s: teardown failed: %r", st.name, e)

    def __del__(self):  # Ray Data deletes the UDF when the actor shuts down gracefully
        self.close()


def pool_sizes(segments: list[Segment], cpus: float, gpus: float) -> list[tuple[float, int]]:
    """(num_cpus per actor, max actors) for each segment, never reserving more CPUs than exist.

    On a 2-core machine an actor pool that takes every CPU starves the others and the run hangs, so CPU
    is split between the CPU segments, with fractional reservations when there is less than one core each."""
    gpu_cpu = sum(s.num_cpus for s in segments if s.num_gpus > 0)
    cpu_segs = [s for s in segments if s.num_gpus == 0]
    budget = max(cpus - gpu_cpu, 0.5)
    share = budget / max(1, len(cpu_segs))
    sizes = []
    for s in segments:
        if s.num_gpus > 0:
            if gpus <= 0:
                raise PlanError(
                    f"stage(s) {s.names} ask for {s.num_gpus} GPU per worker but the Ray cluster has no GPU; "
                    "set their resources.num_gpus: 0 to run on CPU"
                )
            n = max(1, int(gpus // s.num_gpus))
            if s.concurrency:
                n = min(n, s.concurrency)
            sizes.append((min(s.num_cpus, 1.0), n))
        else:
            per = min(max(s.num_cpus, 0.01), share)
            n = max(1, int(share // per))
            if s.concurrency:
                n = min(n, s.concurrency)
            sizes.append((per, n))
    return sizes


class RayExecutor:
    """On Ray: a pool of plain actors for a CPU-only plan on one node, else a Ray Data plan (one row
    per shard, one actor pool per segment, the writer in the last segment)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, object_store_memory: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory

    def _init_ray(self):
        import ray

        if ray.is_initialized():
            return ray
        kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, configure_logging=True)
        init_ray(self.address, num_cpus=self.num_cpus, object_store_memory=self.object_store_memory, **kwargs)
        return ray

    def run(self, plan: Plan, pending: list[ShardSpec], on_record: OnRecord) -> None:
        if not pending:
            return
        ray = self._init_ray()
        res = ray.cluster_resources()
        segments = plan.segments()
        sizes = pool_sizes(segments, float(res.get("CPU", 1)), float(res.get("GPU", 0)))
        payloads = [
            pickle.dumps(
                {
                    "stages": seg.stages,
                    "with_writer": seg.with_writer,
                    "first": i == 0,
                    "num_cpus": ncpu,
                    "num_gpus": seg.num_gpus,
                    "run_url": plan.context.run_url,
                    "output": plan.config.output,
                }
            )
            for i, (seg, (ncpu, _)) in enumerate(zip(segments, sizes))
        ]
        if len(segments) == 1 and segments[0].num_gpus == 0 and _alive_nodes(ray) == 1:
            ncpu, nact = sizes[0]
            return self._run_actors(ray, payloads[0], ncpu, nact, pending, on_record)
        self._run_data(ray, segments, sizes, payloads, pending, on_record)

    def _run_actors(self, ray, payload: bytes, ncpu: float, nact: int, pending: list[ShardSpec],
                    on_record: OnRecord) -> None:
        """One CPU segment on one node: a pool of plain Ray actors, each given the next shard as it
        finishes one. Ray Data adds nothing there and costs a fixed ~5 s of CPU on 2 cores (importing
        ray.data in the driver and in every worker, its stats, autoscaling and actor-location actors,
        the streaming executor's polling), which is most of what made `--ray` slower than local.
        A worker process that dies is restarted by Ray and its shard retried (writes are atomic, a
        redone shard has the same bytes); a stage's own error ends the run as with Ray Data."""
        worker_cls = ray.remote(SegmentWorker).options(num_cpus=ncpu, max_restarts=3, max_task_retries=3)
        actors = [worker_cls.remote(payload) for _ in range(min(nact, len(pending)))]
        queue = iter(pending)
        running: dict = {}  # object ref -> actor
        try:
            for actor in actors:
                spec = next(queue, None)
                if spec is None:
                    break
                running[actor.run_shard.remote(spec.shard, spec.start, spec.end)] = actor
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(done[0])
                record = json.loads(ray.get(done[0]))
                spec = next(queue, None)
                if spec is not None:
                    running[actor.run_shard.remote(spec.shard, spec.start, spec.end)] = actor
                on_record(record)
            ray.get([a.close.remote() for a in actors])
        except BaseException as e:
            for a in actors:
                ray.kill(a, no_restart=True)
            if not isinstance(e, Exception):  # Ctrl-C: leave at once
                raise
            for r in running:  # collect what the killed actors return, so Ray reports no unhandled error
                try:
                    ray.get(r, timeout=10)
                except Exception:  # noqa: BLE001 (the first error is the run's)
                    pass
            err = user_error_from_worker(e)
            if err is not None:
                raise err from None
            raise
        for a in actors:
            ray.kill(a, no_restart=True)

    def _run_data(self, ray, segments: list[Segment], sizes: list[tuple[float, int]], payloads: list[bytes],
                  pending: list[ShardSpec], on_record: OnRecord) -> None:
        """Ray Data plan (several nodes, GPU segments): one row per shard, one actor pool per segment,
        its fault tolerance (a lost node's shards are redone elsewhere)."""
        from ray.data import ActorPoolStrategy, DataContext

        dctx = DataContext.get_current()
        dctx.execution_options.preserve_order = False
        dctx.enable_progress_bars = False
        dctx.print_on_execution_start = False
        # a worker's own exception (e.g. a ModelLoadError) reaches the driver as the RayTaskError's
        # cause, not as text inside Ray Data's UserCodeException; Ray then logs it with a traceback,
        # which for a user-facing error is dropped (the CLI prints its one line)
        dctx.raise_original_map_exception = True
        _quiet_user_errors(logging.getLogger("ray.data._internal.execution.streaming_executor_state"))
        items = [{"shard": s.shard, "start": s.start, "end": s.end} for s in pending]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        for seg, (ncpu, nact), payload in zip(segments, sizes, payloads):
            kwargs = dict(
                fn_constructor_args=(payload,),
                batch_size=1,
                batch_format="numpy",
                compute=ActorPoolStrategy(min_size=nact, max_size=nact),  # whole pool at once: actor start-ups overlap
                num_cpus=ncpu,
            )
            if seg.num_gpus > 0:
                kwargs["num_gpus"] = seg.num_gpus
            ds = ds.map_batches(SegmentWorker, **kwargs)
        try:
            for row in ds.iter_rows():
                on_record(json.loads(bytes(row["payload"])))
        except Exception as e:
            err = user_error_from_worker(e)
            if err is not None:
                raise err from None
            raise


def _alive_nodes(ray) -> int:
    return sum(1 for n in ray.nodes() if n.get("Alive"))


class _NoUserErrorTraceback(logging.Filter):
    """Keeps Ray Data's "a task failed" line but not the traceback of a user-facing error (as Ray does
    for its own UserCodeException): that error's one line is the run's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and user_error_from_worker(exc) is not None:
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_user_errors(logger: logging.Logger) -> None:
    if not any(isinstance(f, _NoUserErrorTraceback) for f in logger.filters):
        logger.addFilter(_NoUserErrorTraceback())


def user_error_from_worker(exc: BaseException) -> UserError | None:
    """The :class:`~pairforge.errors.UserError` a Ray worker raised, unwrapped from Ray's exceptions.

    Ray re-raises a task's exception as a ``RayTaskError`` whose ``cause`` is the original (it pickles
    from its message), possibly inside Ray Data's own wrapper (``__cause__``); the original is what the
    user sees, as one line."""
    try:
        from ray.exceptions import RayTaskError
    except ImportError:  # pragma: no cover - ray is a dependency
        RayTaskError = ()  # noqa: N806
    todo, seen = [exc], set()
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, UserError) and not isinstance(e, RayTaskError):
            return e
        todo.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
    return None


def executor_for(name, ray_section=None, address: str | None = None):
    """An executor by name (``local`` or ``ray``); an executor object is returned as it is (tests and
    benchmarks pass a configured one, e.g. ``LocalExecutor(workers=1)``)."""
    if not isinstance(name, str):
        return name
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        rs = ray_section
        return RayExecutor(
            address=address or (rs.address if rs else None),
            num_cpus=rs.num_cpus if rs else None,
            object_store_memory=rs.object_store_memory if rs else None,
        )
    raise ValueError(f"unknown executor {name!r}; allowed: local, ray")

