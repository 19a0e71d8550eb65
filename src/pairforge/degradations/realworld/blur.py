"""Blur: camera shake, linear motion, defocus, Gaussian, and one object moving.

Physical model. A blurred photo is the sharp scene radiance integrated over the exposure:
``B = K * L`` in *linear light* (so highlights smear into bright streaks, as in real photos), with the
kernel ``K`` the path of a scene point on the sensor, normalised to unit sum and centred on its centroid
so the LQ stays registered with the HQ.

- shake: hand tremor is a smooth path driven by random acceleration with inertia; we integrate a random
  acceleration (plus rare impulsive jerks and a weak pull back to the start, the hand's stabilisation)
  twice, scale the path to the sampled extent and splat it bilinearly with sub-pixel samples.
- linear: uniform motion, a line of the sampled length and angle (anti-aliased by sub-pixel sampling).
- defocus: a thin lens images a point off the focal plane as the aperture's shape, a uniform disk
  (pillbox), of radius proportional to |depth - focus| when depth dependent (circle of confusion).
- gaussian: the aggregate of many small optical imperfections.
- object: the salient foreground object moves during the exposure. Layered model:
  ``B = (1 - K*m) * L + K*(m * L)`` with ``m`` the subject's soft matte (feathered edge, so no seam):
  the object smears over the background. Without a confident subject the sample falls back to linear
  camera motion (``object_form: camera``): blurring a random region (the floor, half a suit) is not
  what a moving object looks like.

Depth-dependent defocus takes the scene's depth when it has a usable cue (``defocus_form: depth``);
otherwise the camera focused on the salient subject and the background is out of focus
(``subject_background``), or, with no subject, the whole frame is (``uniform``).

Spatial sizes are fractions of the image's short side, with a floor in pixels per level, so every
severity blurs visibly at any size.
"""
from __future__ import annotations

import itertools
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    convolve,
    gaussian,
    image_to_linear,
    linear_to_uint8,
    require_rgb8,
    rnd,
    short_side,
    uniform,
    weighted_choice,
)
from pairforge.degradations.realworld.scene import scene_of
from pairforge.degradations.realworld.strength import (
    directional_energy,
    gray,
    laplacian_energy,
)
from pairforge.registry import REALWORLD_TYPES

BlurMode = Literal["shake", "linear", "defocus", "gaussian", "object"]


@REALWORLD_TYPES.register("blur", type="pairforge.degradations.realworld.blur:Blur", rank=50)
class BlurConfig(TypeConfig):
    modes: dict[BlurMode, float] = Field(
        default_factory=lambda: {"shake": 1.0, "linear": 1.0, "defocus": 1.0, "gaussian": 1.0, "object": 1.0},
        description="relative weights of the blur mechanisms",
    )
    length: FloatRange | None = Field(None, description="motion extent, fraction of the short side")
    radius: FloatRange | None = Field(None, description="defocus disk radius, fraction of the short side")
    sigma: FloatRange | None = Field(None, description="Gaussian sigma, fraction of the short side")
    depth_dependent_probability: float = Field(0.5, ge=0.0, le=1.0, description="defocus varies with depth")
    trajectory_points: int = Field(48, ge=8, le=256, description="samples of a shake trajectory")

    LEVELS: ClassVar[dict] = {
        "light": {"length": (0.01, 0.018), "radius": (0.004, 0.007), "sigma": (0.003, 0.005)},
        "medium": {"length": (0.018, 0.035), "radius": (0.007, 0.013), "sigma": (0.005, 0.009)},
        "heavy": {"length": (0.035, 0.07), "radius": (0.013, 0.025), "sigma": (0.009, 0.018)},
    }
    #: the smallest blur of each level in pixels (length / radius / sigma): a fraction of a small image's
    #: side can fall below a pixel, and a "heavy" blur must never be a no-op
    MIN_PX: ClassVar[dict] = {"light": (2.0, 1.0, 0.8), "medium": (3.5, 1.8, 1.3), "heavy": (6.0, 3.0, 2.2)}


# --------------------------------------------------------------------------------------------------
# kernels


def shake_trajectory(rng: np.random.Generator, n: int) -> list[list[float]]:
    """A random smooth camera path, normalised so its larger extent is 1 (rounded for the params)."""
    v = rng.normal(size=2)
    v /= max(np.linalg.norm(v), 1e-9)
    x = np.zeros(2)
    pts = [x.copy()]
    jitter = rng.uniform(0.2, 0.7)  # tremor strength relative to the drift speed
    pull = rng.uniform(0.0, 0.08)  # stabilisation towards the start
    for _ in range(n - 1):
        a = rng.normal(scale=jitter, size=2)
        if rng.random() < 0.05:  # impulsive jerk
            a += rng.normal(scale=3 * jitter, size=2)
        v = 0.8 * v + a - pull * x
        speed = np.linalg.norm(v)
        if speed > 2.0:
            v *= 2.0 / speed
        x = x + v
        pts.append(x.copy())
    p = np.array(pts)
    p -= p.min(axis=0)
    p /= max(float(p.max()), 1e-9)
    return [[rnd(a, 4), rnd(b, 4)] for a, b in p]


def render_path(points: np.ndarray) -> np.ndarray:
    """Splat a path sampled at equal time steps (pixel units) into a normalised kernel with bilinear
    sub-pixel sampling, centred on its centroid (odd size)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 1:
        pts = np.vstack([pts, pts])
    samples, weights = [], []
    for p0, p1 in itertools.pairwise(pts):
        n = max(2, int(np.ceil(np.linalg.norm(p1 - p0) * 4)))
        t = (np.arange(n) + 0.5) / n
        samples.append(p0[None] + t[:, None] * (p1 - p0)[None])
        weights.append(np.full(n, 1.0 / n))  # equal exposure time per step: slow parts are brighter
    s = np.concatenate(samples)
    wts = np.concatenate(weights)
    s -= (s * wts[:, None]).sum(axis=0) / wts.sum()  # centre on the centroid: LQ stays registered
    half = int(np.ceil(np.abs(s).max())) + 1
    size = 2 * half + 1
    k = np.zeros((size, size), dtype=np.float64)
    xs, ys = s[:, 0] + half, s[:, 1] + half
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), wgt * wts)
    return (k / k.sum()).astype(np.float32)


def linear_kernel(length_px: float, angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    d = np.array([np.cos(a), np.sin(a)]) * max(length_px, 1e-3) / 2
    return render_path(np.stack([-d, d]))


def disk_kernel(radius_px: float, supersample: int = 8) -> np.ndarray:
    """A uniform disk (pillbox) with anti-aliased edge by area sampling."""
    if radius_px < 0.5:
        k = np.zeros((3, 3), np.float32)
        k[1, 1] = 1.0
        w = radius_px / 0.5  # blend to a tiny box for sub-pixel radii (continuity in the radius)
        k = (1 - w) * k + w * np.full((3, 3), 1 / 9, np.float32)
        return (k / k.sum()).astype(np.float32)
    half = int(np.ceil(radius_px))
    size = 2 * half + 1
    o = (np.arange(size * supersample) + 0.5) / supersample - half - 0.5
    yy, xx = np.meshgrid(o, o, indexing="ij")
    inside = (xx * xx + yy * yy <= radius_px * radius_px).astype(np.float64)
    k = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


# --------------------------------------------------------------------------------------------------


class Blur(RealWorldType):
    name = "blur"
    config_cls = BlurConfig

    def _sample(self, rng, level):
        c = self.config
        mode = weighted_choice(rng, c.modes)
        p: dict = {"mode": mode}
        if mode == "shake":
            p["length"] = uniform(rng, c.range("length", level))
            p["trajectory"] = shake_trajectory(rng, c.trajectory_points)
        elif mode in ("linear", "object"):
            p["length"] = uniform(rng, c.range("length", level))
            p["angle"] = uniform(rng, (0.0, 180.0))
        elif mode == "defocus":
            p["radius"] = uniform(rng, c.range("radius", level))
            p["depth_dependent"] = bool(rng.random() < c.depth_dependent_probability)
            if p["depth_dependent"]:
                p["focus_depth"] = uniform(rng, (0.0, 0.6))
        else:
            p["sigma"] = uniform(rng, c.range("sigma", level))
        return p

    def needs(self, params):
        if params["mode"] == "object":
            return {"subject"}
        if params["mode"] == "defocus" and params.get("depth_dependent"):
            return {"depth", "subject"}
        return set()

    def bind(self, image, params, aux):
        if params["mode"] == "object":
            return {"object_form": "subject" if scene_of(image, aux).has_subject else "camera"}
        if params["mode"] == "defocus" and params.get("depth_dependent"):
            sc = scene_of(image, aux)
            form = "depth" if sc.has_depth else ("subject_background" if sc.has_subject else "uniform")
            return {"defocus_form": form}
        return {}

    def pixels(self, params: dict, key: str, size: int) -> float:
        """A spatial parameter in pixels at short side ``size``, floored per level (always a blur)."""
        floor = dict(zip(("length", "radius", "sigma"), self.config.MIN_PX[params.get("severity", "light")]))[key]
        return max(params[key] * size, floor)

    def kernel(self, params: dict, size: int) -> np.ndarray:
        """The blur kernel for a short side of ``size`` px (defocus: the maximum-radius disk)."""
        mode = params["mode"]
        if mode == "shake":
            return render_path(np.asarray(params["trajectory"]) * self.pixels(params, "length", size))
        if mode in ("linear", "object"):
            return linear_kernel(self.pixels(params, "length", size), params["angle"])
        if mode == "defocus":
            return disk_kernel(self.pixels(params, "radius", size))
        s = self.pixels(params, "sigma", size)
        half = int(np.ceil(3 * s)) + 1
        g = np.exp(-0.5 * (np.arange(-half, half + 1) / max(s, 1e-3)) ** 2)
        return (np.outer(g, g) / np.outer(g, g).sum()).astype(np.float32)

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        lin = image_to_linear(image)
        size = short_side(image)
        mode = params["mode"]
        if mode == "gaussian":
            out = gaussian(lin, self.pixels(params, "sigma", size))
        elif mode == "object" and params.get("object_form", "subject") == "subject" \
                and scene_of(image, aux).has_subject:
            m = scene_of(image, aux).subject(image.shape[:2])
            k = self.kernel(params, size)
            km = convolve(m, k)[..., None]
            out = (1.0 - km) * lin + convolve(lin * m[..., None], k)
        elif mode == "defocus" and params.get("depth_dependent") and params.get("defocus_form") != "uniform":
            out = self._depth_defocus(lin, image, params, aux, size)
        else:
            out = convolve(lin, self.kernel(params, size))
        return linear_to_uint8(out)

    def _depth_defocus(self, lin, image, params, aux, size):
        sc = scene_of(image, aux)
        form = params.get("defocus_form") or ("depth" if sc.has_depth else "subject_background")
        if form == "depth":
            depth = sc.depth(image.shape[:2])
            f = params["focus_depth"]
            coc = np.abs(depth - f) / max(f, 1.0 - f)  # 0 in the focal plane .. 1 at the far extreme
        else:  # focused on the subject, the background behind it at the maximum blur
            m = sc.subject(image.shape[:2])
            coc = np.ones(image.shape[:2], np.float32) if m is None else 1.0 - m
        r_max = self.pixels(params, "radius", size)
        levels = np.linspace(0.0, 1.0, 4)
        stack = [lin if lv == 0 else convolve(lin, disk_kernel(lv * r_max)) for lv in levels]
        pos = np.clip(coc, 0.0, 1.0) * (len(levels) - 1)
        i0 = np.clip(np.floor(pos).astype(np.int32), 0, len(levels) - 2)
        t = (pos - i0).astype(np.float32)[..., None]
        out = np.zeros_like(lin)
        for i in range(len(levels) - 1):
            sel = (i0 == i)[..., None]
            out = np.where(sel, (1 - t) * stack[i] + t * stack[i + 1], out)
        return out

    def statistic(self, hq, lq, params, aux=None):
        g0, g1 = gray(hq), gray(lq)
        st = {"hf_ratio": laplacian_energy(g1) / max(laplacian_energy(g0), 1e-12)}
        if "angle" in params:
            a = params["angle"]
            st["along_ratio"] = directional_energy(g1, a) / max(directional_energy(g0, a), 1e-12)
            st["across_ratio"] = directional_energy(g1, a + 90) / max(directional_energy(g0, a + 90), 1e-12)
        return st
