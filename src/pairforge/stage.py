"""The stage protocol: a library component that processes a batch of samples.

A stage is constructed cheaply from its config section and a :class:`RunContext` (on the driver, to
plan, and again inside every worker); heavy state (models, metric weights) is loaded by :meth:`setup`,
once per worker, on first use. ``__call__(batch) -> batch`` works on the dict of columns described in
:mod:`pairforge.batch`. Stages never import Ray: ``pairforge.pipeline`` binds them to Ray Data, and
``pairforge.pipeline.local`` runs the same stages in one process.
"""
from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from pairforge.batch import Batch, StageResources
from pairforge.seeding import sample_rng, sample_seed


@dataclass
class RunContext:
    """What every stage may know about the run it is part of."""

    seed: int = 0
    run_url: str | None = None  # the output directory (local path or s3://...), for run-level state
    device: str = "cpu"
    # loads the clean image of any sample index of this run (used e.g. by the reflection degradation,
    # whose second layer is another sample of the run); set by the pipeline, None when unavailable
    load_source_image: Callable[[int], Any] | None = None
    options: dict = field(default_factory=dict)

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


class Stage(abc.ABC):
    """Base class of every stage. Subclasses set ``name`` and implement :meth:`process`."""

    name: str = "stage"
    #: True when the stage must see samples before the run starts (percentile thresholds): the
    #: pipeline then calls :meth:`prepare` on the driver before any shard is processed.
    needs_calibration: bool = False
    #: True when calls on disjoint rows may run at the same time in threads of one process (the stage
    #: keeps no state between calls, or guards it): the local executor then overlaps its calls, and
    #: shares it between shards in flight. Output never depends on this, only speed.
    concurrent_calls: bool = False

    def __init__(self, config: Any, context: RunContext):
        self.config = config
        self.context = context
        self._ready = False

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

    def setup(self) -> None:
        """Load models and other heavy state; called once per worker before the first batch."""

    def prepare(self, upstream: Callable[[int], Batch]) -> None:
        """Driver-side preparation before any shard is processed (only if ``needs_calibration``).

        ``upstream(n)`` returns a batch of the first ``n`` samples after every earlier stage.
        """

    @abc.abstractmethod
    def process(self, batch: Batch) -> Batch:
        """Transform a batch; must leave rejected rows untouched and never drop rows."""

    def ensure_ready(self) -> None:
        """Run :meth:`setup` once; safe to call from several threads (the first caller sets up)."""
        if self._ready:
            return
        with _SETUP_LOCK:
            if not self._ready:
                self.setup()
                self._ready = True

    def __call__(self, batch: Batch) -> Batch:
        if not self._ready:
            self.ensure_ready()
        return self.process(batch)


#: guards lazy setup of stages called from several threads (setup is rare: one lock is enough)
_SETUP_LOCK = threading.RLock()
