"""A sample's provenance (its ``KEY.json``) as short labels and counting keys, for people: the preview's
captions, ``info``'s breakdowns.

What the degraders record in ``meta["degradation"]`` (one dict, or a list of K dicts for K LQ variants):

- real-world types: ``{"chain": "realworld", "type": "blur+noise", "types": [...], "ops": [{"op": "blur",
  "severity": "heavy", ...}, ...], "web_tail": bool, "strength": {"psnr": ...}}``
- Real-ESRGAN-style chains: ``{"chain": PRESET or "custom", "scale": 4, "ops": [...]}``
- the simple baseline: ``{"chain": "simple", "scale": 4, ...}``

and ``meta["source"]`` holds ``kind`` (bundled, files, synthesis) plus the photo, path or model.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass


@dataclass(frozen=True)
class Degradation:
    """One LQ's degradation in words: its model, its types with their severities, its strength."""

    model: str  # "realworld", "chain", "simple" or what the record calls itself
    preset: str | None  # the chain preset (realesrgan, bsrgan, ...), None for real-world types
    components: tuple[tuple[str, str | None], ...]  # (type, severity) in the order applied
    web_tail: bool = False
    scale: int | None = None
    psnr: float | None = None

    @property
    def types(self) -> list[str]:
        return [t for t, _ in self.components]

    @property
    def label(self) -> str:
        """``haze heavy``, ``blur light + noise medium + web tail``, ``chain realesrgan x4``."""
        if self.preset is not None or self.model == "simple" or not self.components:
            text = f"{self.model} {self.preset}" if self.preset else self.model
            if self.scale and self.scale != 1 and not text.endswith(f"x{self.scale}"):
                text += f" x{self.scale}"
            return text
        parts = [t if s is None else f"{t} {s}" for t, s in self.components]
        return " + ".join(parts) + (" + web tail" if self.web_tail else "")


def variant_params(meta: dict) -> list[dict]:
    """The degradation parameters of each LQ of a sample (one per variant; [] when none recorded)."""
    deg = meta.get("degradation")
    if isinstance(deg, list):
        return [d if isinstance(d, dict) else {} for d in deg]
    return [deg] if isinstance(deg, dict) else []


def describe_degradation(deg: dict) -> Degradation:
    """Read one degradation record (see the module docstring); unknown shapes become ``unknown``."""
    if not isinstance(deg, dict):
        return Degradation("unknown", None, ())
    types = deg.get("types")
    scale = deg.get("scale") if isinstance(deg.get("scale"), int) else None
    psnr = (deg.get("strength") or {}).get("psnr") if isinstance(deg.get("strength"), dict) else None
    psnr = float(psnr) if isinstance(psnr, (int, float)) else None
    if isinstance(types, list) and types:
        severity = {}
        for op in deg.get("ops") or []:
            if isinstance(op, dict) and op.get("op") in types and op["op"] not in severity:
                severity[op["op"]] = op.get("severity")
        comps = tuple((str(t), severity.get(t)) for t in types)
        return Degradation(str(deg.get("chain") or "realworld"), None, comps, bool(deg.get("web_tail")), scale, psnr)
    chain = deg.get("chain")
    if isinstance(chain, str) and chain:
        if chain == "simple":
            return Degradation("simple", None, (("simple", None),), scale=scale, psnr=psnr)
        return Degradation("chain", chain, ((chain, None),), scale=scale, psnr=psnr)
    # a wrapper (e.g. a mixture recording its component): describe the nested record
    for v in deg.values():
        if isinstance(v, dict) and ("types" in v or "chain" in v):
            return describe_degradation(v)
    kind = deg.get("kind") or deg.get("type")
    return Degradation(str(kind) if kind else "unknown", None, ())


def degradations(meta: dict) -> list[Degradation]:
    """One :class:`Degradation` per LQ of the sample."""
    return [describe_degradation(d) for d in variant_params(meta)]


def source_label(meta: dict) -> str:
    """``bundled astronaut``, ``files /data/photos``, ``synthesis black-forest-labs/FLUX.1-dev``."""
    src = meta.get("source")
    if not isinstance(src, dict):
        return "unknown"
    kind = str(src.get("kind") or "unknown")
    if kind == "bundled" and src.get("photo"):
        return f"bundled {src['photo']}"
    if kind == "files" and isinstance(src.get("path"), str):
        return f"files {posixpath.dirname(src['path'].replace(chr(92), '/')) or '.'}"
    if kind == "synthesis" and src.get("model"):
        quality = f" ({src['quality']})" if src.get("quality") and src.get("quality") != "positive" else ""
        return f"synthesis {src['model']}{quality}"
    return kind
