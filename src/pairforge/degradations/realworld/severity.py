"""What ``light`` / ``medium`` / ``heavy`` mean, measured: the bands of median PSNR and SSIM each type's
levels produce on a fixed set of real photographs.

Why: a severity name is only useful if it predicts strength. The parameter tables of the types (their
``LEVELS``) were tuned so that, on the bundled photographs below (square centre crops at ``SIZE`` px,
``SEEDS`` draws each, every type applied alone with the weight-free scene model), the medians fall in
:data:`BANDS`, monotone from light to heavy: ``light`` visibly mild, ``heavy`` still recognisable. Haze and low light have low PSNRs at every
level by nature (they move every pixel's level: haze lifts the blacks, low light darkens everything),
so their bands sit lower; within a type the bands are ordered.
``python -m pairforge.degradations.realworld.severity`` prints the measured table (docs/degradations.md
holds it); a test checks it.

PSNR is over R, G, B; SSIM is of the luma (what the records hold, :func:`.strength.psnr_ssim`).
"""
from __future__ import annotations

import sys

import numpy as np

from pairforge.degradations.realworld.common import SEVERITIES, fit_to
from pairforge.degradations.realworld.registry import NAMES

#: the fixed photo set: the bundled photographs that are photographs of scenes (not textures, micrographs)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "camera")
SIZE = 192
SEEDS = (0, 1)

#: type -> level -> (PSNR lo, hi) dB and (SSIM lo, hi) of the medians
BANDS: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "blur": {"light": {"psnr": (28, 34), "ssim": (0.88, 0.98)},
            "medium": {"psnr": (25, 30.5), "ssim": (0.78, 0.92)},
            "heavy": {"psnr": (21.5, 27.5), "ssim": (0.6, 0.8)}},
    "compression": {"light": {"psnr": (30.5, 36), "ssim": (0.93, 0.99)},
                   "medium": {"psnr": (28, 33.5), "ssim": (0.85, 0.95)},
                   "heavy": {"psnr": (23.5, 29), "ssim": (0.7, 0.85)}},
    "moire": {"light": {"psnr": (28, 35), "ssim": (0.9, 0.99)},
             "medium": {"psnr": (23, 29), "ssim": (0.83, 0.95)},
             "heavy": {"psnr": (17.5, 23.5), "ssim": (0.7, 0.87)}},
    "low_light": {"light": {"psnr": (11, 17), "ssim": (0.65, 0.87)},
                 "medium": {"psnr": (8.5, 13), "ssim": (0.4, 0.62)},
                 "heavy": {"psnr": (6.5, 10.5), "ssim": (0.18, 0.4)}},
    "noise": {"light": {"psnr": (30, 36), "ssim": (0.85, 0.97)},
             "medium": {"psnr": (23, 29), "ssim": (0.66, 0.85)},
             "heavy": {"psnr": (17, 23), "ssim": (0.45, 0.68)}},
    "flare": {"light": {"psnr": (21.5, 28), "ssim": (0.9, 0.99)},
             "medium": {"psnr": (15, 21), "ssim": (0.8, 0.93)},
             "heavy": {"psnr": (10, 15.5), "ssim": (0.65, 0.82)}},
    "reflection": {"light": {"psnr": (21.5, 28), "ssim": (0.88, 0.97)},
                  "medium": {"psnr": (18.5, 24.5), "ssim": (0.85, 0.95)},
                  "heavy": {"psnr": (16, 22), "ssim": (0.8, 0.91)}},
    "haze": {"light": {"psnr": (17, 23), "ssim": (0.85, 0.95)},
            "medium": {"psnr": (12.5, 17.5), "ssim": (0.74, 0.88)},
            "heavy": {"psnr": (9, 14), "ssim": (0.58, 0.76)}},
    "rain": {"light": {"psnr": (26, 33), "ssim": (0.9, 0.99)},
            "medium": {"psnr": (18, 24), "ssim": (0.78, 0.91)},
            "heavy": {"psnr": (12.5, 18), "ssim": (0.64, 0.8)}},
}


def photo_set(size: int = SIZE) -> list[np.ndarray]:
    from pairforge.sources.bundled import load_bundled_photo

    out = []
    for name in PHOTOS:
        im = load_bundled_photo(name)
        im = np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im[..., :3]
        out.append(fit_to(im.astype(np.uint8), (size, size)))
    return out


def measure(types=NAMES, photos: list[np.ndarray] | None = None, seeds=SEEDS) -> dict:
    """type -> level -> {"psnr": median, "ssim": median} with each type applied alone (as the gallery
    does: sample, scene, bind, apply), the next photo as the reflection layer."""
    from pairforge.degradations.fidelity import psnr_ssim
    from pairforge.degradations.realworld.degrader import (
        RealWorldDegradeConfig,
        RealWorldDegrader,
    )

    photos = photos if photos is not None else photo_set()
    out: dict = {}
    for sev in SEVERITIES:
        d = RealWorldDegrader(RealWorldDegradeConfig(severity=sev))
        for name in types:
            t = d.types[name]
            vals = []
            for i, hq in enumerate(photos):
                for s in seeds:
                    rng = np.random.Generator(np.random.PCG64(1000 * i + s))
                    params = t.sample(rng)
                    aux = {"index": i, "second_image": photos[(i + 1) % len(photos)]}
                    d.prepare_scene(hq, t.needs(params), aux)
                    params.update(t.bind(hq, params, aux))
                    vals.append(psnr_ssim(hq, t.apply(hq, params, aux)))
            out.setdefault(name, {})[sev] = {
                "psnr": round(float(np.median([v["psnr"] for v in vals])), 2),
                "ssim": round(float(np.median([v["ssim"] for v in vals])), 3)}
    return out


def table(measured: dict) -> str:
    """The markdown table of docs/degradations.md: measured medians next to the documented bands."""
    lines = ["| type | light PSNR / SSIM | medium PSNR / SSIM | heavy PSNR / SSIM |", "|---|---|---|---|"]
    for name, levels in measured.items():
        cells = []
        for sev in SEVERITIES:
            m, b = levels[sev], BANDS[name][sev]
            cells.append(f"{m['psnr']:.1f} dB / {m['ssim']:.2f} (band {b['psnr'][0]:g}-{b['psnr'][1]:g} dB, "
                         f"{b['ssim'][0]:g}-{b['ssim'][1]:g})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - prints the docs table
    print(table(measure(sys.argv[1:] or NAMES)))
