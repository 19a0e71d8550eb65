"""The nine real-world degradation types (issue 4): blur, compression, moire, low light, noise, flare,
reflection, haze, rain; physically motivated, parameterised, with severity levels.

Use one type directly::

    from pairforge.degradations.realworld import make_type
    haze = make_type("haze")
    params = haze.sample(rng)                 # JSON-serialisable, every parameter
    lq = haze.apply(hq, params, aux)          # deterministic given (hq, params, aux)

or the composition (``degrade: {kind: realworld}`` in a run config)::

    RealWorldDegradeConfig(...).build().degrade(images, seeds, aux)

``aux`` (per sample, all optional): ``depth`` (H x W, 0 near .. 1 far), ``segments`` (H x W int
labels), ``second_image`` (reflection layer), ``load_image`` (index -> HQ of another sample of the
run), ``num_samples`` (run size, to draw reflection partners uniformly), ``index``.
"""
from pairforge.degradations.realworld.common import (
    SEVERITIES,
    RealWorldType,
    TypeConfig,
)
from pairforge.degradations.realworld.degrader import (
    RealWorldDegradeConfig,
    RealWorldDegrader,
)
from pairforge.degradations.realworld.registry import NAMES, ORDER, TYPES, make_type

__all__ = [
    "NAMES",
    "ORDER",
    "SEVERITIES",
    "TYPES",
    "RealWorldDegradeConfig",
    "RealWorldDegrader",
    "RealWorldType",
    "TypeConfig",
    "make_type",
]
