"""The real-world types by name, read from :data:`pairforge.registry.REALWORLD_TYPES`.

``NAMES`` is the reference's listing order (blur, compression, moire, low-light, ...: the order in which
the type modules are registered). ``ORDER`` is the order in which they are applied when stacked, each
type's ``rank``: it follows the image-formation chain, the scene and the air (haze, rain), the glass in
front of the lens (reflection), the lens (flare, blur), the sensor sampling a screen (moire), the exposure
and the sensor (low light, noise), and finally the codec (compression).
"""
from __future__ import annotations

from pairforge.degradations.realworld.common import RealWorldType
from pairforge.registry import REALWORLD_TYPES

TYPES: dict[str, type[RealWorldType]] = {e.kind: e.load("type") for e in REALWORLD_TYPES.entries()}
#: the names in the reference's listing order (blur, compression, moire, low_light, ...)
NAMES: tuple[str, ...] = tuple(TYPES)
#: physical application order when several types are stacked
ORDER: tuple[str, ...] = tuple(
    e.kind for e in sorted(REALWORLD_TYPES.entries(), key=lambda e: e.options["rank"])
)


def make_type(name: str, config=None) -> RealWorldType:
    if name not in TYPES:
        raise ValueError(f"unknown real-world degradation type {name!r} (allowed: {', '.join(NAMES)})")
    return TYPES[name](config)
