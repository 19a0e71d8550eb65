"""Low light: the scene photographed with far less light, through an inverted-then-replayed camera.

Physical model (unprocessing, after Brooks et al. 2019 and the MAET dark pipeline). An sRGB photo is
the output of a camera pipeline: raw sensor values -> demosaic -> white balance -> colour correction
(CCM) -> gamma -> tone curve. We invert it (inverse S-shaped tone curve, inverse gamma, inverse CCM,
inverse white-balance gains) to estimate the raw linear signal, keep one colour per pixel through a
Bayer colour filter array (the sensor measures one channel per photosite), and model the darker
exposure on that mosaic: multiply by ``exposure`` (photons scale linearly with light), add
heteroscedastic sensor noise with variance ``shot * x + read`` (shot and read noise follow a log-linear
relation measured on real sensors: ``log read = 2.18 log shot + 1.2 + N(0, 0.26)``), quantise with the
ADC's bit depth, then replay the camera: demosaic (OpenCV, bilinear or edge-aware: this is what turns
per-photosite noise into the blotchy, colour-correlated noise of real night shots), white balance with a
slightly wrong estimate (auto white balance fails in the dark: colour cast), CCM, gamma, tone curve.

Exposure is not a fixed factor: it is solved (on a small copy, without noise) so the LQ reaches a target
mean brightness drawn per severity; an already dark photo is darkened less, never to black. The output
stays dark: low-light enhancement is the restorer's job.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange, IntRange
from pairforge.degradations.realworld.common import (
    _Q,
    RealWorldType,
    TypeConfig,
    _lut_u8,
    _pow,
    _unit_clip,
    integer,
    log_uniform,
    new_seed,
    normal,
    require_rgb8,
    rnd,
    uniform,
    weighted_choice,
)
from pairforge.degradations.realworld.moire import CFA
from pairforge.degradations.realworld.strength import gray, relative_shadow_noise
from pairforge.registry import REALWORLD_TYPES


@REALWORLD_TYPES.register("low_light", type="pairforge.degradations.realworld.lowlight:LowLight", rank=70)
class LowLightConfig(TypeConfig):
    brightness: FloatRange | None = Field(None, description="target mean luma of the LQ (sRGB, 0-1)")
    shot: FloatRange | None = Field(None, description="shot-noise gain (log-uniform), raw units")
    bits: IntRange | None = Field(None, description="ADC bit depth")
    gamma: FloatRange = Field((2.0, 3.5), description="camera gamma inverted and re-applied")
    red_gain: FloatRange = (1.9, 2.4)
    blue_gain: FloatRange = (1.5, 1.9)
    wb_error: float = Field(0.12, ge=0.0, le=0.5, description="max relative error of the dark white balance")
    ccm_strength: FloatRange = Field((0.2, 0.7), description="off-diagonal mass of the random CCM")
    tone_curve_probability: float = Field(0.8, ge=0.0, le=1.0)

    demosaic: dict[Literal["bilinear", "edge_aware"], float] = Field(
        default_factory=lambda: {"bilinear": 1.0, "edge_aware": 1.0}, description="OpenCV demosaicing")

    LEVELS: ClassVar[dict] = {
        "light": {"brightness": (0.22, 0.3), "shot": (2e-4, 8e-4), "bits": (11, 14)},
        "medium": {"brightness": (0.13, 0.2), "shot": (5e-4, 2e-3), "bits": (10, 12)},
        "heavy": {"brightness": (0.07, 0.12), "shot": (8e-4, 3e-3), "bits": (10, 12)},
    }


def random_ccm(rng: np.random.Generator, strength: float) -> np.ndarray:
    """A camera-to-sRGB colour correction matrix: diagonal > 1, negative off-diagonals, rows sum to 1."""
    m = np.zeros((3, 3))
    for i in range(3):
        share = rng.dirichlet([2.0, 2.0])
        others = [j for j in range(3) if j != i]
        m[i, others] = -strength * share
        m[i, i] = 1.0 + strength
    return m


def smoothstep(x: np.ndarray) -> np.ndarray:
    return 3 * x * x - 2 * x * x * x


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


class LowLight(RealWorldType):
    name = "low_light"
    config_cls = LowLightConfig

    def _sample(self, rng, level):
        c = self.config
        shot = log_uniform(rng, c.range("shot", level))
        read = float(np.exp(2.18 * np.log(shot) + 1.2 + rng.normal(scale=0.26)))
        ccm = random_ccm(rng, uniform(rng, c.ccm_strength))
        gains = [uniform(rng, c.red_gain), 1.0, uniform(rng, c.blue_gain)]
        err = [1.0 + uniform(rng, (-c.wb_error, c.wb_error)), 1.0, 1.0 + uniform(rng, (-c.wb_error, c.wb_error))]
        return {
            "brightness": uniform(rng, c.range("brightness", level)),
            "cfa": weighted_choice(rng, {k: 1.0 for k in CFA}),
            "demosaic": weighted_choice(rng, c.demosaic),
            "shot": shot,
            "read": read,
            "bits": integer(rng, c.range("bits", level)),
            "gamma": uniform(rng, c.gamma),
            "tone_curve": bool(rng.random() < c.tone_curve_probability),
            "wb_gains": [rnd(g) for g in gains],
            "wb_error": [rnd(e) for e in err],
            "ccm": [[rnd(v) for v in row] for row in ccm],
            "seed": new_seed(rng),
        }

    def _raw_lut(self, params: dict) -> np.ndarray:
        """uint8 sRGB -> camera-space linear value: inverse tone curve and gamma, a 256-entry table."""
        v = np.arange(256, dtype=np.float64) / 255.0
        if params["tone_curve"]:
            v = inverse_smoothstep(v)
        return np.power(np.clip(v, 0, 1), params["gamma"]).astype(np.float32)

    @staticmethod
    def _to_raw(params: dict) -> np.ndarray:
        """Inverse CCM and white balance as one 3 x 3 matrix (float32)."""
        m = np.diag(1.0 / np.asarray(params["wb_gains"], np.float64)) @ np.linalg.inv(np.asarray(params["ccm"], np.float64))
        return m.astype(np.float32)

    @staticmethod
    def _from_raw(params: dict) -> np.ndarray:
        """White balance (with the dark estimate's error) and CCM as one 3 x 3 matrix (float32)."""
        wb = np.asarray(params["wb_gains"], np.float64) * np.asarray(params["wb_error"], np.float64)
        return (np.asarray(params["ccm"], np.float64) @ np.diag(wb)).astype(np.float32)

    def unprocess(self, image: np.ndarray, params: dict) -> np.ndarray:
        """uint8 sRGB -> estimated raw linear RGB (inverse tone and gamma by a 256-entry table, then
        inverse CCM and white balance as one 3 x 3 matrix)."""
        x = _lut_u8(image, self._raw_lut(params))
        return np.clip(cv2.transform(x, self._to_raw(params)), 0.0, 1.0)

    def process(self, raw: np.ndarray, params: dict) -> np.ndarray:
        """Raw linear RGB -> sRGB float with the (imperfect) dark white balance."""
        x = np.clip(cv2.transform(np.ascontiguousarray(raw, dtype=np.float32), self._from_raw(params)), 0.0, 1.0)
        x = _pow(x, 1.0 / params["gamma"])
        return smoothstep(x) if params["tone_curve"] else x

    def _output_table(self, params: dict) -> np.ndarray:
        """:meth:`process` after the colour matrix, to uint8, tabulated on a square-root grid: entry i
        holds the output of the linear value (i / 65535)^2. The square-root spacing keeps every step
        of the steep gamma near black under half a level (a linear 16-bit grid would jump ~11 levels
        at its first step for gamma 3.5), so the table and the float pipeline agree to one level."""
        v = (np.arange(_Q + 1, dtype=np.float64) / _Q) ** 2
        y = v ** (1.0 / params["gamma"])
        if params["tone_curve"]:
            y = smoothstep(y)
        return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)

    def exposure(self, image: np.ndarray, params: dict) -> float:
        """The light reduction that brings the noiseless LQ's mean luma to ``brightness`` (on a 48 px
        copy; at most 1: a photo darker than the target keeps its exposure). The luma is monotone in
        the exposure: the root is bracketed in log space and found by regula falsi with the Illinois
        step (~8 evaluations where bisection took 22, to the same 1e-6 relative precision)."""
        h, w = image.shape[:2]
        f = min(1.0, 48.0 / min(h, w))
        small = cv2.resize(image, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        raw = self.unprocess(small, params)
        target = params["brightness"]
        g = lambda t: float(gray(self.process(raw * np.float32(np.exp(t)), params)).mean()) - target
        if g(0.0) <= 0:
            return 1.0
        lo, hi = float(np.log(1e-4)), 0.0
        f_lo, f_hi = g(lo), g(hi)
        if f_lo >= 0:
            return float(np.exp(lo))
        side = 0
        for _ in range(60):
            if hi - lo < 2e-6:
                break
            t = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
            if not lo < t < hi:
                t = 0.5 * (lo + hi)
            ft = g(t)
            if ft == 0:
                return float(np.exp(t))
            if ft < 0:
                lo, f_lo = t, ft
                if side == -1:
                    f_hi *= 0.5  # Illinois: the stale end's value halved, so both ends move
                side = -1
            else:
                hi, f_hi = t, ft
                if side == 1:
                    f_lo *= 0.5
                side = 1
            if abs(ft) < 1e-9:
                return float(np.exp(t))
        return float(np.exp(0.5 * (lo + hi)))

    def bind(self, image, params, aux):
        return {"exposure": rnd(self.exposure(image, params), 6)}

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        h, w = image.shape[:2]
        exposure = params["exposure"] if "exposure" in params else self.exposure(image, params)
        # the sensor: one colour per photosite (Bayer), less light, shot + read noise, the ADC. Each
        # photosite's raw value is computed for its own colour only (a 1 x 3 row of the inverse matrix
        # on that CFA sub-grid), what unprocessing all three and keeping one gives.
        layout = CFA[params["cfa"]]
        x = _lut_u8(image, self._raw_lut(params))
        to_raw = self._to_raw(params) * np.float32(exposure)
        mosaic = np.empty((h, w), dtype=np.float32)
        for r0 in (0, 1):
            for c0 in (0, 1):
                ch = layout[r0][c0]
                site = cv2.transform(np.ascontiguousarray(x[r0::2, c0::2]), to_raw[ch:ch + 1])
                mosaic[r0::2, c0::2] = site.reshape(site.shape[:2])
        np.clip(mosaic, 0.0, np.float32(exposure), out=mosaic)  # unprocess clips the raw to [0, 1]
        rng = np.random.Generator(np.random.PCG64(params["seed"]))
        std = mosaic * np.float32(params["shot"])
        std += np.float32(params["read"])
        np.sqrt(std, out=std)
        mosaic += normal(rng, mosaic.shape) * std
        levels = 2 ** int(params["bits"]) - 1
        code = _unit_clip(mosaic)
        code *= np.float32(levels)
        np.rint(code, out=code)
        # demosaic at 16 bits (the ADC codes scaled), then the camera pipeline
        code *= np.float32(65535.0 / levels)
        rgb = cv2.cvtColor(code.astype(np.uint16), layout[2] if params["demosaic"] == "bilinear" else layout[3])
        lin = cv2.transform(rgb.astype(np.float32), self._from_raw(params) * np.float32(1.0 / 65535.0))
        idx = _unit_clip(lin)
        np.sqrt(idx, out=idx)
        idx *= np.float32(_Q)
        idx += np.float32(0.5)
        return np.take(self._output_table(params), idx.astype(np.uint16))

    def statistic(self, hq, lq, params, aux=None):
        g0, g1 = gray(hq), gray(lq)
        shadow = g0 <= np.quantile(g0, 0.3)
        return {
            "luminance_ratio": float(g1.mean() / max(g0.mean(), 1e-6)),
            "shadow_noise": relative_shadow_noise(lq, shadow),
            "shadow_noise_hq": relative_shadow_noise(hq, shadow),
        }
