"""The nine types by name, in the order they are applied when stacked.

The order follows the image-formation chain: the scene and the air (haze, rain), the glass in front of
the lens (reflection), the lens (flare, blur), the sensor sampling a screen (moire), the exposure and the
sensor (low light, noise), and finally the codec (compression).
"""
from __future__ import annotations

from pairforge.degradations.realworld.blur import Blur
from pairforge.degradations.realworld.common import RealWorldType
from pairforge.degradations.realworld.compression import Compression
from pairforge.degradations.realworld.flare import Flare
from pairforge.degradations.realworld.haze import Haze
from pairforge.degradations.realworld.lowlight import LowLight
from pairforge.degradations.realworld.moire import Moire
from pairforge.degradations.realworld.noise import Noise
from pairforge.degradations.realworld.rain import Rain
from pairforge.degradations.realworld.reflection import Reflection

TYPES: dict[str, type[RealWorldType]] = {
    t.name: t for t in (Haze, Rain, Reflection, Flare, Blur, Moire, LowLight, Noise, Compression)
}
#: physical application order when several types are stacked
ORDER: tuple[str, ...] = tuple(TYPES)
#: the names in the reference's listing order (blur, compression, moire, low-light, ...)
NAMES: tuple[str, ...] = ("blur", "compression", "moire", "low_light", "noise", "flare", "reflection", "haze", "rain")


def make_type(name: str, config=None) -> RealWorldType:
    if name not in TYPES:
        raise ValueError(f"unknown real-world degradation type {name!r} (allowed: {', '.join(NAMES)})")
    return TYPES[name](config)
