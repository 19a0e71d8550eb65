"""Rain: depth-aware streaks and splashes, with an optional accumulation veil.

Physical model. A falling drop crosses many pixels during the exposure and is recorded as a thin,
semi-transparent, bright streak along its fall direction (a global wind angle with small per-drop
jitter). Drops fill the air between the camera and the scene: a drop at pixel ``x`` lies at a distance
``z <= d(x)`` (the scene depth there; more volume far away, ``z = d U^(1/3)``); nearer drops are
longer (the apparent speed grows as 1/z), thicker and more opaque, and far ones are attenuated
(``exp(-alpha z)``) and slightly out of focus. Drops hitting near surfaces splash into small crowns of
droplets (probability gated by nearness^1.5). Heavy rain also scatters light like fog: an accumulation
veil ``A = 1 - exp(-beta d)`` of brightness ``A0``. Composite (a form of the heavy-rain model
``O = I(1 - R - A) + R + A0 A``, with the streak layer in front of the veil):
``O = (I (1 - A) + A0 A)(1 - R) + c R``.

A drop is a small lens: it refracts light from a wide field of view, so its radiance is close to the
average radiance of the environment (plus a specular glint), not a fixed white. The streak colour is
therefore the blurred scene's mean, lifted: streaks are brighter than dark backgrounds and darker than
a bright sky, visible on both (a minimum contrast to the local background is kept).

Splashes need a surface to land on: they are drawn only on near, horizontal surfaces the scene model
found (the ground of an outdoor layout, or a floor in a measured depth map), else not at all. Rain is
outdoor weather: the composition does not put it on documents or close-ups without an outdoor layout
unless ``scenes: any`` asks for it (see :class:`RainConfig`).

Streaks are drawn anti-aliased with OpenCV at sub-pixel precision into depth layers (one polyline call
per layer and opacity step). Angle convention: degrees from the +x axis in image coordinates (y down);
90 = vertical.
"""
from __future__ import annotations

import itertools
from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from pairforge.configbase import FloatRange
from pairforge.degradations.realworld.common import (
    RealWorldType,
    TypeConfig,
    gaussian,
    new_seed,
    require_rgb8,
    rnd,
    to_float,
    to_uint8,
    uniform,
)
from pairforge.degradations.realworld.scene import scene_of
from pairforge.degradations.realworld.strength import gray, streak_orientation
from pairforge.registry import REALWORLD_TYPES

SHIFT = 4  # fixed-point bits for sub-pixel line end points


@REALWORLD_TYPES.register("rain", type="pairforge.degradations.realworld.rain:Rain", rank=20)
class RainConfig(TypeConfig):
    density: FloatRange | None = Field(None, description="drops per 1000 pixels")
    opacity: FloatRange | None = Field(None, description="opacity of the nearest streaks")
    veil: FloatRange | None = Field(None, description="accumulation veil beta (0 = none)")
    angle: FloatRange = Field((75.0, 105.0), description="fall direction, degrees (90 = vertical)")
    length: FloatRange = Field((0.01, 0.09), description="streak length far..near, fraction of short side")
    splash_rate: FloatRange = Field((0.02, 0.07), description="splashes per drop, before depth gating")
    scenes: Literal["outdoor", "any"] = Field(
        "outdoor", description="which scenes get rain in a composition: outdoor layouts only (the "
        "composition draws another type for documents and close-ups), or any")
    min_contrast: float = Field(0.06, ge=0.0, le=0.5, description="least streak/background contrast (linear)")

    LEVELS: ClassVar[dict] = {
        "light": {"density": (3.0, 7.0), "opacity": (0.2, 0.35), "veil": (0.0, 0.25)},
        "medium": {"density": (7.0, 15.0), "opacity": (0.3, 0.5), "veil": (0.15, 0.6)},
        "heavy": {"density": (15.0, 30.0), "opacity": (0.4, 0.65), "veil": (0.5, 1.2)},
    }


class Rain(RealWorldType):
    name = "rain"
    config_cls = RainConfig

    def _sample(self, rng, level):
        c = self.config
        return {
            "angle": uniform(rng, c.angle),
            "angle_jitter": uniform(rng, (0.5, 3.0)),
            "density": uniform(rng, c.range("density", level)),
            "opacity": uniform(rng, c.range("opacity", level)),
            "length": [rnd(v, 5) for v in c.length],
            "length_scale": uniform(rng, (0.75, 1.3)),
            "thick_probability": 0.25,
            "attenuation": uniform(rng, (0.3, 1.0)),
            "color": rnd(uniform(rng, (0.8, 0.95)), 4),
            "splash_rate": uniform(rng, c.splash_rate),
            "veil": uniform(rng, c.range("veil", level)),
            "veil_level": uniform(rng, (0.7, 0.9)),
            "seed": new_seed(rng),
        }

    def needs(self, params):
        return {"depth"}

    def bind(self, image, params, aux):
        sc = scene_of(image, aux)
        return {"depth_form": sc.depth_form, "splashes": sc.ground(image.shape[:2]) is not None}

    def applicable(self, image: np.ndarray, aux: dict | None) -> str | None:
        """Why this image gets no rain in a composition (None: it does)."""
        if self.config.scenes == "any":
            return None
        sc = scene_of(image, aux)
        if sc.document:
            return "document"
        if not sc.outdoor and sc.depth_form != "model":
            return "no outdoor layout (close-up or indoor)"
        return None

    def streaks(self, image: np.ndarray, params: dict, depth: np.ndarray,
                ground: np.ndarray | None = None) -> np.ndarray:
        """The streak/splash opacity layer R in [0, 1] (H x W)."""
        h, w = image.shape[:2]
        s = float(min(h, w))
        unit = max(s / 512.0, 0.25)
        rng = np.random.Generator(np.random.PCG64(params["seed"]))
        n = round(params["density"] * h * w / 1000.0)
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        d_here = depth[np.clip(ys.astype(int), 0, h - 1), np.clip(xs.astype(int), 0, w - 1)]
        z = d_here * rng.random(n) ** (1.0 / 3.0)
        near = 1.0 - z
        lo, hi = params["length"]
        length = s * (lo + (hi - lo) * near) * params["length_scale"] * rng.uniform(0.8, 1.2, n)
        ang = np.deg2rad(params["angle"] + rng.normal(scale=params["angle_jitter"], size=n))
        op = params["opacity"] * (0.35 + 0.65 * near) * np.exp(-params["attenuation"] * z) * rng.uniform(0.8, 1.0, n)
        thick = np.where((near > 0.7) & (rng.random(n) < params["thick_probability"]), 2, 1)
        thick = np.maximum(1, np.rint(thick * unit)).astype(int)
        dx, dy = np.cos(ang) * length / 2, np.sin(ang) * length / 2
        f = float(1 << SHIFT)
        p1 = np.stack([(xs - dx) * f, (ys - dy) * f], axis=1).round().astype(np.int64)
        p2 = np.stack([(xs + dx) * f, (ys + dy) * f], axis=1).round().astype(np.int64)
        val = np.clip(np.rint(op * 16), 1, 16).astype(int) * 16 - 1  # 16 opacity steps
        edges = [0.0, 0.35, 0.6, 0.8, 1.01]
        clear = None  # prod over layers of (1 - layer): the share of light no drop blocks
        # splashes: drops meeting near, horizontal surfaces (none when the scene shows none)
        m = round(n * params["splash_rate"]) if ground is not None and params.get("splashes", True) else 0
        sx, sy = rng.uniform(0, w, m), rng.uniform(0, h, m)
        if m:
            gi = ground[np.clip(sy.astype(int), 0, h - 1), np.clip(sx.astype(int), 0, w - 1)]
            near_scene = 1.0 - depth[np.clip(sy.astype(int), 0, h - 1), np.clip(sx.astype(int), 0, w - 1)]
            keep = gi & (rng.random(m) < near_scene**1.5)
        else:
            keep = np.zeros(0, bool)
        pts = np.stack([p1, p2], axis=1).astype(np.int32)
        for li, (a, b) in enumerate(itertools.pairwise(edges)):
            canvas = np.zeros((h, w), np.uint8)
            in_layer = (near >= a) & (near < b)
            for th in np.unique(thick[in_layer]):
                for v in np.unique(val[in_layer & (thick == th)]):
                    sel = np.nonzero(in_layer & (thick == th) & (val == v))[0]
                    cv2.polylines(canvas, list(pts[sel]), False, int(v), int(th), cv2.LINE_AA, SHIFT)
            if li == len(edges) - 2:
                for j in np.nonzero(keep)[0]:
                    for _ in range(int(rng.integers(3, 7))):
                        r = rng.uniform(1.0, 4.0) * unit
                        t = rng.uniform(np.pi, 2 * np.pi)  # crown above the impact point
                        c = (round((sx[j] + r * np.cos(t)) * f), round((sy[j] + 0.6 * r * np.sin(t)) * f))
                        cv2.circle(canvas, c, round(max(0.6, 0.8 * unit) * f),
                                   int(255 * params["opacity"]), -1, cv2.LINE_AA, SHIFT)
            if not canvas.any():
                continue  # an empty layer blocks nothing
            layer = to_float(canvas)
            # soft edges for all (drops are transparent lenses, not paint); far drops out of focus
            layer = gaussian(layer, (0.35 + (1.0 - b) * 1.2) * unit)
            np.subtract(np.float32(1.0), layer, out=layer)
            if clear is None:
                clear = layer
            else:
                clear *= layer
        if clear is None:
            return np.zeros((h, w), np.float32)
        np.subtract(np.float32(1.0), clear, out=clear)
        return np.clip(clear, 0.0, 1.0, out=clear)

    def apply(self, image, params, aux=None):
        require_rgb8(image)
        sc = scene_of(image, aux)
        h, w = image.shape[:2]
        depth = sc.depth((h, w))
        ground = sc.ground((h, w)) if params.get("splashes", True) else None
        r = self.streaks(image, params, depth, ground)[..., None]
        # veiled = x (1 - a) + level a = (x - level) e^(-veil depth) + level; then the drops over it
        level = np.float32(params["veil_level"])
        keep = np.exp(np.asarray(depth, np.float32) * np.float32(-params["veil"]))[..., None]
        veiled = to_float(image)
        veiled -= level
        veiled *= keep
        veiled += level
        out = self.drop_colour(veiled, params)
        out -= veiled
        out *= r
        out += veiled
        return to_uint8(out)

    def drop_colour(self, veiled: np.ndarray, params: dict) -> np.ndarray:
        """The radiance of a drop (sRGB, per pixel): the environment's mean (global and wide local),
        lifted by ``color`` as a glint, kept at least ``min_contrast`` away from the background."""
        h, w = veiled.shape[:2]
        f = min(1.0, 64.0 / min(h, w))
        small = cv2.resize(veiled, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        env = 0.5 * small.reshape(-1, 3).mean(0) + 0.5 * gaussian(small, 0.25 * min(small.shape[:2]))
        env = env * 0.55 + 0.45 * params["color"]
        bg = gaussian(small, 1.0)
        lum = lambda z: z @ np.asarray([0.2126, 0.7152, 0.0722], np.float32)
        diff = lum(env) - lum(bg)
        need = self.config.min_contrast + 0.1 * params["opacity"]
        push = np.where(np.abs(diff) < need, np.where(lum(bg) > 0.6, -need, need) - diff, 0.0)
        env = np.clip(env + push[..., None], 0.0, 1.0).astype(np.float32)
        return cv2.resize(env, (w, h), interpolation=cv2.INTER_LINEAR)

    def statistic(self, hq, lq, params, aux=None):
        res = np.maximum(gray(lq) - gray(hq), 0.0)
        hp = res - gaussian(res, 3.0)  # thin structures, not the smooth veil
        o = streak_orientation(np.maximum(hp, 0.0))
        return {"streak_angle": o["angle"], "coherence": o["coherence"],
                "coverage": float((hp > 0.02).mean())}
