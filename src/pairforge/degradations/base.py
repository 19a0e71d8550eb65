"""The degrader contract: HQ images + per-sample seeds in, LQ images + every sampled parameter out."""
from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import Field

#: ``variants: K`` in any ``degrade:`` section: K independently degraded LQs per HQ, written as
#: ``KEY.lq_0.png .. KEY.lq_{K-1}.png`` with one parameter record each (the degrade stage runs the
#: degrader K times with K seeds; variant 0 uses the seed a single LQ would)
Variants = Annotated[int, Field(ge=1, le=64, description="LQs per HQ, each degraded independently (KEY.lq_0.png ..)")]


@dataclass
class DegradeResult:
    lq: np.ndarray  # uint8 RGB H' x W' x 3
    params: dict  # JSON-serialisable: the exact chain with every sampled parameter
    hq: np.ndarray | None = None  # set when the degrader changes the HQ too (aligned crops, USM)


@dataclass(frozen=True)
class SampleAux:
    """What the pipeline tells a degrader about each sample besides its pixels and seed."""

    index: int  # the global sample index (partner draws depend on it)
    key: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "key": self.key}


@dataclass(frozen=True)
class Partners:
    """Other samples' clean images, for degradations that combine two samples (reflection): given to
    the degrader once, at setup, by the pipeline (which owns the source)."""

    load: Callable[[int], np.ndarray]  # sample index -> its clean HQ (uint8 RGB)
    num_samples: int | None  # the run's size, so partners are drawn over the whole run


class Degrader(abc.ABC):
    """A degradation model. ``degrade`` must give the same result for a (image, seed) pair whatever
    else is in the batch, so batching never changes a sample (pipeline seeds derive from the run seed
    and the sample index only)."""

    name: str = "degrader"

    def setup(self, placement: Any = None, partners: Partners | None = None) -> None:
        """Called by the degrade stage once per worker before the first batch: ``placement`` is the
        worker's :class:`pairforge.stage.Placement`, ``partners`` other samples' images (None when the
        run's source cannot load them, e.g. synthesis). Default: nothing to prepare."""

    @abc.abstractmethod
    def degrade(
        self, images: list[np.ndarray], seeds: list[int], aux: list[SampleAux | dict] | None = None
    ) -> list[DegradeResult]:
        """Degrade a batch. ``images`` are uint8 RGB arrays, ``seeds`` one integer per image,
        ``aux`` optional per-sample extras (a :class:`SampleAux` from the pipeline; library callers of
        the real-world degrader may pass a dict with masks, depth, a second image)."""


def output_scale(config: Any) -> int:
    """The HQ/LQ size ratio a ``degrade:`` config produces (1 when its LQ keeps the HQ size)."""
    if getattr(config, "lq_size", "native") == "hq":
        return 1
    return int(getattr(config, "scale", 1) or 1)


def build_degrader(config) -> Degrader:
    """The degrader registered for a ``degrade:`` config (see :data:`pairforge.registry.DEGRADERS`)."""
    from pairforge.registry import DEGRADERS

    return DEGRADERS.entry_for(config).load("degrader")(config)
