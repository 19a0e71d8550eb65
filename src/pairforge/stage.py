"""The stage protocol: a library component that processes a batch of samples.

A stage is constructed cheaply from its config section and a :class:`RunContext` (on the driver, to
plan, and again inside every worker after unpickling). An executor then calls :meth:`Stage.open` once
per worker with the :class:`Placement` that worker was given (heavy state: models, metric weights, the
device chosen from the worker's own resources), ``stage(batch)`` for every batch, and
:meth:`Stage.close` when the worker is done. ``__call__(batch) -> batch`` works on the dict of columns
described in :mod:`pairforge.batch`; a stage declares the columns it ``reads`` and ``writes``.
Stages never import Ray: :mod:`pairforge.pipeline.executors` runs the same stages on Ray Data or in
one process.
"""
from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pairforge.batch import Batch, StageResources
from pairforge.seeding import sample_rng, sample_seed


@dataclass(frozen=True)
class RunContext:
    """What every stage may know about the run it is part of, fixed before any stage is built.

    ``device`` is the run's *requested* device (``auto``, ``cpu``, ``cuda``); each stage that uses
    one resolves it inside its worker (:func:`pairforge.devices.resolve_device`), never on the driver.
    ``num_samples`` is the planned number of samples (None only outside a planned run).
    """

    seed: int = 0
    run_url: str | None = None  # the output directory (local path or s3://...), for run-level state
    device: str = "auto"
    num_samples: int | None = None

    def rng(self, index: int, stage: str):
        return sample_rng(self.seed, index, stage)

    def seed_for(self, index: int, stage: str) -> int:
        return sample_seed(self.seed, index, stage)

    def run_storage(self):
        """The run directory as a :class:`pairforge.io.storage.Storage` (None if the run has none)."""
        if self.run_url is None:
            return None
        from pairforge.io.storage import open_storage

        return open_storage(self.run_url)


@dataclass(frozen=True)
class Placement:
    """Where one stage instance runs: the resources its worker was given (a Ray actor's request, or
    the whole machine for the local executor)."""

    executor: str = "local"
    num_cpus: float = 1.0
    num_gpus: float = 0.0


class Stage(abc.ABC):
    """Base class of every stage. Subclasses set ``name``, ``reads``/``writes`` and implement
    :meth:`process`; heavy state goes in :meth:`setup` (undone by :meth:`teardown`) and in the
    attributes listed in ``_transient``, which are dropped when the stage is pickled."""

    name: str = "stage"
    #: batch columns the stage reads / writes (checked by the tests against what it does)
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()
    #: True when the stage must see samples before the run starts (percentile thresholds): the
    #: pipeline then calls :meth:`prepare` on the driver before any shard is processed.
    needs_calibration: bool = False
    #: True when calls on disjoint rows may run at the same time in threads of one process (the stage
    #: keeps no state between calls, or guards it): the local executor then overlaps its calls, and
    #: shares it between shards in flight. Output never depends on this, only speed. Such a stage
    #: cannot :meth:`count` per-shard statistics (shards in flight would mix them).
    concurrent_calls: bool = False
    _transient: tuple[str, ...] = ()

    def __init__(self, config: Any, context: RunContext):
        self.config = config
        self.context = context
        self.placement: Placement | None = None
        self._ready = False
        #: the device this instance computes on, set at setup by stages that use one (recorded in
        #: every sample's ``meta["devices"]``); None for CPU-only code that never asks
        self.device: str | None = None
        self._stats: dict[str, Any] = {}

    @property
    def resources(self) -> StageResources:
        res = getattr(self.config, "resources", None)
        if res is None:
            return StageResources()
        return StageResources(
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
            batch_size=res.batch_size,
            concurrency=res.concurrency,
        )

    # -- lifecycle -----------------------------------------------------------------------------------
    def open(self, placement: Placement | None = None) -> None:
        """Called once per worker before the first batch (both executors); idempotent and safe to call
        from several threads (the first caller sets up)."""
        if self._ready:
            return
        with _SETUP_LOCK:
            if not self._ready:
                self.placement = placement or Placement()
                self.setup()
                self._ready = True

    def close(self) -> None:
        """Called once per worker after the last batch (both executors); releases what setup made."""
        with _SETUP_LOCK:
            if self._ready:
                self._ready = False
                self.teardown()
                self.placement = None

    def setup(self) -> None:
        """Load models and other heavy state (``self.placement`` says where the stage runs)."""

    def teardown(self) -> None:
        """Release what :meth:`setup` made (models, clients, GPU memory); default: drop ``_transient``."""
        for k in self._transient:
            setattr(self, k, None)

    def __getstate__(self):
        d = dict(self.__dict__)
        for k in self._transient:
            d[k] = None
        d["placement"] = None  # a worker opens its own copy with its own resources
        d["_ready"] = False
        d["device"] = None  # ... and chooses its own device
        return d

    # -- work ------------------------------------------------------------------------------------------
    def prepare(self, upstream: Callable[[int], Batch]) -> None:
        """Driver-side preparation before any shard is processed (only if ``needs_calibration``).

        ``upstream(n)`` returns a batch of the first ``n`` samples after every earlier stage.
        """

    @abc.abstractmethod
    def process(self, batch: Batch) -> Batch:
        """Transform a batch; must leave rejected rows untouched and never drop rows."""

    def __call__(self, batch: Batch) -> Batch:
        if not self._ready:
            self.open()
        out = self.process(batch)
        if self.device is not None:  # the pipeline passes live rows only: each was computed here
            for meta in out["meta"]:
                meta.setdefault("devices", {})[self.name] = self.device
        return out

    # -- per-shard statistics ---------------------------------------------------------------------------
    def count(self, key: str, amount: float = 1) -> None:
        """Add to a statistic of the shard being processed (merged into its commit record)."""
        if self.concurrent_calls:
            raise RuntimeError(f"stage {self.name!r} declares concurrent_calls, so it cannot count per-shard statistics")
        self._stats[key] = self._stats.get(key, 0) + amount

    def take_stats(self) -> dict[str, Any]:
        """The statistics gathered since the last call, and reset them (called once per shard)."""
        out, self._stats = self._stats, {}
        return out


#: guards the lazy setup of stages called from several threads (setup is rare: one lock is enough)
_SETUP_LOCK = threading.RLock()
