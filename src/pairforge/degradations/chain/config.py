"""The ``kind: chain`` degradation config: a list of ops (see :mod:`.ops`), optionally starting from a
named preset.

YAML forms (all equivalent ways to reach a full config; the resolved config lists every op and range)::

    degrade: {kind: chain, preset: realesrgan}                 # a preset as is
    degrade:
      kind: chain
      preset: realesrgan
      scale: 2                                                 # top-level fields replace the preset's
      lq_size: hq
      set:                                                     # edit ops by name, field by field
        gaussian1: {sigma_range: [1, 20]}
        jpeg2: {quality_range: [60, 95]}
    degrade: {kind: chain, preset: my_chain.yaml}              # a copied & edited configs/degradations/*.yaml
    degrade: {kind: chain, ops: [...]}                         # a chain written out in full
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pairforge.configbase import Resources, StrictModel
from pairforge.degradations.base import Variants, build_degrader
from pairforge.degradations.chain.ops import Op, OpBase, walk
from pairforge.degradations.chain.presets import load_preset, preset_names
from pairforge.registry import DEGRADERS


class CropConfig(StrictModel):
    """Aligned random crops for patch datasets."""

    size: int = Field(ge=1, description="HQ patch size in pixels (a multiple of the scale); the LQ patch is size/scale")
    when: Literal["after", "before"] = Field(
        "after",
        description="after: degrade the whole image, then crop HQ and LQ at aligned positions (upstream); "
        "before: crop the HQ first and degrade only the patch (faster, borders see reflect padding)",
    )


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _set_by_name(ops: list, name: str, fields: dict) -> bool:
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            continue
        if op.get("name") == name:
            ops[i] = _deep_merge(op, fields)
            return True
        if isinstance(op.get("ops"), list) and _set_by_name(op["ops"], name, fields):
            return True
    return False


def _names(ops: list) -> list[str]:
    out = []
    for op in ops:
        if isinstance(op, dict):
            if op.get("name"):
                out.append(op["name"])
            if isinstance(op.get("ops"), list):
                out += _names(op["ops"])
    return out


@DEGRADERS.register(degrader="pairforge.degradations.chain.engine:ChainDegrader", thread_safe=True, max_pixels=64_000_000)
class ChainDegradeConfig(StrictModel):
    """A Real-ESRGAN-style degradation chain (high-order, shuffled, or web-style, by its ops)."""

    kind: Literal["chain"] = "chain"
    preset: str | None = Field(
        None, description=f"start from a named preset ({', '.join(preset_names())}) or a chain YAML file (path ending .yaml)"
    )
    notes: str | None = Field(None, description="free text (presets say where their numbers come from)")
    scale: int = Field(4, ge=1, le=16, description="HQ/LQ size ratio; LQ native size is (H // scale, W // scale)")
    lq_size: Literal["native", "hq"] = Field("native", description="hq: resize the final LQ back to the HQ size")
    lq_upsample_mode: Literal["bilinear", "bicubic", "nearest"] = "bicubic"
    crop: CropConfig | None = None
    jpeg_backend: Literal["libjpeg", "diffjpeg"] = Field(
        "libjpeg", description="libjpeg: a real encoder (default); diffjpeg: Real-ESRGAN's float JPEG model, for parity"
    )
    resize_grid: Literal["registered", "upstream"] = Field(
        "registered",
        description="registered: every resize maps the exact field of view (sizes first, coordinates by the size "
        "ratio), so HQ and LQ stay on one grid; upstream: Real-ESRGAN's scale_factor resizes (sub-pixel drift), "
        "for parity experiments",
    )
    batch_shared: bool = Field(
        False,
        description="reproduce Real-ESRGAN's per-batch sharing of resize/noise-type/order/gate/crop draws "
        "(a quirk; off = every draw per sample)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda if available")
    threads: int = Field(0, ge=0, description="CPU: samples degraded in parallel threads (0 = torch's thread count)")
    ops: list[Op] = Field(default_factory=list)
    variants: Variants = 1
    resources: Resources = Resources()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        edits = data.pop("set", None)
        if data.get("preset") is not None:
            base = load_preset(str(data["preset"]))
            data = _deep_merge(base, data)
        if edits:
            if not isinstance(edits, dict):
                raise ValueError("set: must map op names to field overrides")
            ops = [dict(o) if isinstance(o, dict) else o for o in data.get("ops", [])]
            for name, fields in edits.items():
                if not isinstance(fields, dict):
                    raise ValueError(f"set.{name}: must be a mapping of fields")
                if not _set_by_name(ops, name, fields):
                    raise ValueError(f"set: no op named {name!r}; ops here: {', '.join(_names(ops)) or '(none)'}")
            data["ops"] = ops
        return data

    @model_validator(mode="after")
    def _names_unique(self):
        counts: dict[str, int] = {}
        for op in walk(list(self.ops)):
            if op.name is None:
                counts[op.op] = counts.get(op.op, 0) + 1
                object.__setattr__(op, "name", f"{op.op}{counts[op.op]}")
        seen = set()
        for op in walk(list(self.ops)):
            if op.name in seen:
                raise ValueError(f"op name {op.name!r} is used twice")
            seen.add(op.name)
        if self.crop is not None and self.crop.size % self.scale:
            raise ValueError(f"crop.size {self.crop.size} must be a multiple of scale {self.scale}")
        if self.crop is not None and self.variants > 1:
            raise ValueError(f"variants: {self.variants} with crop: each variant would crop its own patch of the HQ "
                             "(drop crop, or use variants: 1)")
        return self

    def build(self):
        return build_degrader(self)

    def op_by_name(self, name: str) -> OpBase:
        for op in walk(list(self.ops)):
            if op.name == name:
                return op
        raise KeyError(name)
