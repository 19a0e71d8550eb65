"""Shared pieces of the nine real-world degradation types.

Why a common base: every type must offer the same four things (a config with named severity levels,
``sample(rng) -> params``, a deterministic ``apply(image, params, aux)``, and a measured statistic), so
the composition, the gallery and the tests can treat them alike. Colour transfer curves live here too,
because most physical models (blur, flare, haze, reflection, low light) act on linear light, not on
gamma-encoded sRGB values.

Spatial parameters are fractions of the image's short side, so a sampled parameter set means the same
degradation at 128 px and at 2048 px (``apply`` converts them to pixels).
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Literal

import cv2
import numpy as np

from pairforge.batch import jsonable
from pairforge.configbase import StrictModel

SEVERITIES: tuple[str, ...] = ("light", "medium", "heavy")
Severity = Literal["light", "medium", "heavy"]
SeverityChoice = Literal["light", "medium", "heavy", "mixed"]


# --------------------------------------------------------------------------------------------------
# pixel conversions


_U8_TO_UNIT = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float32)


def _lut_u8(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[image]`` for a uint8 image through OpenCV's LUT (~7x faster than numpy's fancy indexing on
    an RGB image; same values)."""
    if image.ndim in (2, 3) and (image.ndim == 2 or image.shape[2] <= 4) and image.size:
        return cv2.LUT(np.ascontiguousarray(image), table).reshape(image.shape)
    return table[image]


def _unit_clip(x: np.ndarray) -> np.ndarray:
    """A float32 copy of ``x`` clipped to [0, 1], NaN -> 0, +inf -> 1 (``fmax``/``fmin`` drop NaNs; two
    passes instead of ``nan_to_num``'s five)."""
    y = np.fmax(np.asarray(x, dtype=np.float32), np.float32(0.0))
    return np.fmin(y, np.float32(1.0), out=y)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return _lut_u8(image, _U8_TO_UNIT)
    return np.asarray(image, dtype=np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 (rounded half to even as ``np.rint``, clipped, NaN-safe)."""
    y = _unit_clip(x)
    if y.ndim in (2, 3) and (y.ndim == 2 or y.shape[2] <= 4) and y.size:
        # y >= 0, so the abs is the identity; OpenCV rounds half to even like np.rint
        return cv2.convertScaleAbs(y, alpha=255.0).reshape(y.shape)
    return np.rint(y * np.float32(255.0)).astype(np.uint8)


def normal(rng: np.random.Generator, shape: tuple[int, ...] | int, dtype=np.float32) -> np.ndarray:
    """Standard normal float32 noise by the Box-Muller transform of float32 uniforms: ~3x cheaper than
    ``rng.standard_normal(dtype=float32)`` (its ziggurat costs ~10 ns a value here, the largest single
    cost of the noise-heavy types). The tails end at ~5.8 sigma (24-bit uniforms), far beyond what a
    uint8 image shows."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = int(np.prod(shape))
    m = (n + 1) // 2
    u = rng.random(2 * m, dtype=np.float32)
    r = np.log1p(-u[:m])  # 1 - u in (0, 1]: log finite
    r *= np.float32(-2.0)
    np.sqrt(r, out=r)
    th = u[m:]
    th *= np.float32(2.0 * np.pi)
    z = np.empty(2 * m, dtype=np.float32)
    np.multiply(r, np.cos(th), out=z[:m])
    np.multiply(r, np.sin(th), out=z[m:])
    return z[:n].reshape(shape).astype(dtype, copy=False)


def _pow(x: np.ndarray, e: float) -> np.ndarray:
    """Elementwise power of a non-negative float32 array (OpenCV's SIMD pow, any shape)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return cv2.pow(x.reshape(-1, 1), e).reshape(x.shape)


def _srgb_to_linear_exact(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb_exact(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


#: the transfer functions tabulated at 16 bits: a table lookup is ~5x cheaper than the power function on
#: a full image, and 1/65535 steps are far below what a uint8 output (or the eye) resolves
_Q = 65535
_TO_LINEAR_16 = _srgb_to_linear_exact(np.arange(_Q + 1) / _Q).astype(np.float32)
_TO_SRGB_16 = _linear_to_srgb_exact(np.arange(_Q + 1) / _Q).astype(np.float32)
_TO_SRGB_U8 = np.clip(np.rint(_TO_SRGB_16.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _index16(x: np.ndarray) -> np.ndarray:
    y = _unit_clip(x)
    y *= np.float32(_Q)
    y += np.float32(0.5)
    return y.astype(np.uint16)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB electro-optical transfer function (IEC 61966-2-1), float in [0, 1] (16-bit table)."""
    return np.take(_TO_LINEAR_16, _index16(x))


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_to_linear` (16-bit table)."""
    return np.take(_TO_SRGB_16, _index16(x))


def linear_to_uint8(x: np.ndarray) -> np.ndarray:
    """Linear light -> uint8 sRGB in one table lookup (what ``to_uint8(linear_to_srgb(x))`` computes)."""
    return np.take(_TO_SRGB_U8, _index16(x))


_LINEAR_LUT = _srgb_to_linear_exact(np.arange(256) / 255.0).astype(np.float32)


def image_to_linear(image: np.ndarray) -> np.ndarray:
    """uint8 sRGB image -> float32 linear light (a table lookup). Only uint8 is accepted: a float image
    has no agreed scale (0-1 or 0-255), so guessing would silently give wrong light levels."""
    dtype = getattr(image, "dtype", None)
    if dtype != np.uint8:
        raise ValueError(
            f"real-world degradations take uint8 RGB images (0-255), got dtype {dtype or type(image).__name__}; "
            f"convert first, e.g. np.clip(np.rint(x * 255), 0, 255).astype(np.uint8) for floats in [0, 1]")
    return _lut_u8(image, _LINEAR_LUT)


_REC709 = np.array([[0.2126, 0.7152, 0.0722]], dtype=np.float32)


def luminance(x: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an RGB float (or uint8) image (one ``cv2.transform`` pass for H x W x 3)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3 and x.shape[2] == 3 and x.size:
        return cv2.transform(np.ascontiguousarray(x), _REC709).reshape(x.shape[:2])
    return x[..., 0] * 0.2126 + x[..., 1] * 0.7152 + x[..., 2] * 0.0722


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with mirrored borders (no-op for sigma <= 0)."""
    if sigma <= 1e-3:
        return np.array(x, dtype=np.float32, copy=True)
    return cv2.GaussianBlur(np.asarray(x, dtype=np.float32), (0, 0), sigmaX=float(sigma),
                            borderType=cv2.BORDER_REFLECT_101)


def convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True convolution (cv2.filter2D correlates, so the kernel is flipped) with mirrored borders."""
    k = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    return cv2.filter2D(np.asarray(x, dtype=np.float32), -1, k, borderType=cv2.BORDER_REFLECT_101)


def short_side(image: np.ndarray) -> int:
    return int(min(image.shape[:2]))


def fit_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scale an image to cover ``shape`` (h, w) and centre-crop it: deterministic, keeps aspect."""
    h, w = shape
    ih, iw = image.shape[:2]
    s = max(h / ih, w / iw)
    nh, nw = max(h, int(np.ceil(ih * s))), max(w, int(np.ceil(iw * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    r = cv2.resize(image, (nw, nh), interpolation=interp)
    y0, x0 = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(r[y0:y0 + h, x0:x0 + w])


# --------------------------------------------------------------------------------------------------
# sampling helpers (every value a plain Python type so params are JSON as drawn)


def uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def log_uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    lo, hi = np.log(r[0]), np.log(r[1])
    return float(np.exp(rng.uniform(lo, hi))) if hi > lo else float(r[0])


def integer(rng: np.random.Generator, r: tuple[int, int]) -> int:
    return int(rng.integers(int(r[0]), int(r[1]) + 1))


def new_seed(rng: np.random.Generator) -> int:
    """A seed stored in the params: noise fields and drop positions are regenerated from it."""
    return int(rng.integers(0, 2**31 - 1))


def weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = [k for k, v in weights.items() if v > 0]
    if not names:
        raise ValueError(f"no choice has a positive weight: {weights}")
    p = np.array([weights[k] for k in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def rnd(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def tidy(value: Any) -> Any:
    """JSON-ready params with floats cut to 6 significant digits; done before ``apply`` sees them, so
    the recorded params reproduce the pixels exactly."""
    return _cut(jsonable(value))  # jsonable once: per level it would walk each subtree again


def _cut(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# configs with severity levels


class TypeConfig(StrictModel):
    """Base of every type's config: a severity level picks the ranges of :attr:`LEVELS`; any range
    field set explicitly overrides the table for every level. ``mixed`` draws a level per sample."""

    severity: SeverityChoice = "mixed"
    #: level -> field -> (lo, hi); subclasses fill it in
    LEVELS: ClassVar[dict[str, dict[str, tuple]]] = {}

    def pick_level(self, rng: np.random.Generator) -> str:
        if self.severity == "mixed":
            return SEVERITIES[int(rng.integers(0, len(SEVERITIES)))]
        return self.severity

    def range(self, name: str, level: str) -> tuple:
        override = getattr(self, name, None)
        if override is not None:
            return tuple(override)
        return tuple(self.LEVELS[level][name])


# --------------------------------------------------------------------------------------------------
# the type protocol


class RealWorldType(abc.ABC):
    """One physically motivated degradation type.

    ``sample`` draws every parameter (JSON-serialisable) from a numpy generator; ``apply`` is a pure
    function of (image, params, aux): the same inputs always give the same pixels. ``aux`` may carry
    ``depth`` (H x W float, 0 near .. 1 far), ``segments`` (H x W int label map), ``second_image``,
    ``load_image`` and ``index``; a type that needs one of them and does not get it uses the explicit
    fallback documented on the type.
    """

    name: ClassVar[str] = "type"
    config_cls: ClassVar[type[TypeConfig]] = TypeConfig

    def __init__(self, config: TypeConfig | None = None):
        self.config = config if config is not None else self.config_cls()

    def sample(self, rng: np.random.Generator) -> dict:
        level = self.config.pick_level(rng)
        params: dict[str, Any] = {"type": self.name, "severity": level}
        params.update(self._sample(rng, level))
        return tidy(params)

    @abc.abstractmethod
    def _sample(self, rng: np.random.Generator, level: str) -> dict:
        """Draw the type's parameters for one severity level."""

    def needs(self, params: dict) -> set[str]:
        """Which scene inputs ``apply`` uses for these params: subset of {"depth", "segments",
        "second_image"}; the composition computes depth/segments only when asked."""
        return set()

    def bind(self, image: np.ndarray, params: dict, aux: dict | None) -> dict:
        """Parameters that depend on the sample's context (e.g. which other sample is the reflection
        partner), resolved before ``apply`` so they are recorded; default: none."""
        return {}

    @abc.abstractmethod
    def apply(self, image: np.ndarray, params: dict, aux: dict | None = None) -> np.ndarray:
        """Degrade ``image`` (uint8 RGB) with ``params``; returns uint8 RGB of the same shape."""

    def statistic(self, hq: np.ndarray, lq: np.ndarray, params: dict, aux: dict | None = None) -> dict:
        """The type's measured signature (e.g. blockiness for compression)."""
        return {}

    def __call__(self, image: np.ndarray, rng: np.random.Generator, aux: dict | None = None):
        """Convenience: sample then apply; returns (lq, params)."""
        aux = dict(aux or {})
        params = self.sample(rng)
        params.update(jsonable(self.bind(image, params, aux)))
        return self.apply(image, params, aux), params


def require_rgb8(image: np.ndarray) -> np.ndarray:
    """The one input check of every type and of the composition: uint8 RGB, H x W x 3, min side 8."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        image_to_linear(image)  # raises the dtype error (one wording everywhere)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"real-world degradations take uint8 RGB arrays H x W x 3, got shape {image.shape}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image too small for real-world degradations: {image.shape[:2]} (min side 8)")
    return image


def correlate_noise(field: np.ndarray, sigma: float) -> np.ndarray:
    """Spatially correlate a white noise field with a Gaussian while keeping its per-pixel variance
    (the kernel is rescaled to unit energy), as demosaicing / denoising do to sensor noise."""
    if sigma <= 0.05:
        return np.asarray(field, dtype=np.float32)
    ksize = round(sigma * 8 + 1) | 1
    k1 = cv2.getGaussianKernel(ksize, sigma, cv2.CV_64F)[:, 0]
    energy = float((k1 * k1).sum()) ** 2
    return gaussian(field, sigma) / np.float32(np.sqrt(energy))
