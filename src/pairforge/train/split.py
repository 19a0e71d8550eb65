"""Held-out splits by source: which samples validation and test may use, and which training never sees.

Why by source and never by sample index: pairforge tiles a photo into overlapping crops and degrades one
HQ several ways, so samples with neighbouring indices share pixels. A model validated on another tile of a
photo it trained on is measured on what it memorised. The unit of a split is therefore the *source
group* of a sample (read from its ``KEY.json``): the bundled photo, the input file, or for synthetic
images the prompt (several seeds of one prompt are near-duplicates), falling back to the seed.

A group is held out when it is listed in ``split.held_out`` or, without a list, when a hash of (seed,
group) falls below ``split.fraction``; the decision needs no pass over the data, so it is the same in
every stream, worker, resume and in ``pairforge evaluate``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pairforge.train.config import SplitConfig


def source_group(meta: dict, key: str = "?") -> str:
    """The source a sample was made from: ``bundled:astronaut``, ``files:/data/a.jpg``,
    ``prompt:<text>``, ``seed:<n>``; ``key:<key>`` when the metadata names no source."""
    src = meta.get("source") if isinstance(meta, dict) else None
    src = src if isinstance(src, dict) else {}
    kind = src.get("kind")
    if kind == "bundled" and src.get("photo"):
        return f"bundled:{src['photo']}"
    if kind == "files" and src.get("path"):
        return f"files:{src['path']}"
    if kind == "synthesis" or meta.get("synthesis"):
        prompt = src.get("prompt")
        if prompt is None and isinstance(meta.get("prompt"), str):
            prompt = meta["prompt"]
        if isinstance(prompt, str) and prompt.strip():
            return f"prompt:{prompt.strip()}"
        syn = meta.get("synthesis") if isinstance(meta.get("synthesis"), dict) else {}
        if syn.get("seed") is not None:
            return f"seed:{syn['seed']}"
    for field in ("photo", "path", "id"):
        if isinstance(src.get(field), (str, int)):
            return f"{kind or 'source'}:{src[field]}"
    return f"key:{key}"


def _short(group: str) -> str:
    """The part after ``kind:``, so ``held_out: [astronaut]`` matches ``bundled:astronaut``."""
    return group.split(":", 1)[1] if ":" in group else group


@dataclass(frozen=True)
class Splitter:
    """Decides, from a sample's metadata, whether it belongs to the held-out part."""

    config: SplitConfig

    def group(self, meta: dict, key: str = "?") -> str:
        return source_group(meta, key)

    def held_out_group(self, group: str) -> bool:
        c = self.config
        if c.held_out is not None:
            return group in c.held_out or _short(group) in c.held_out
        h = hashlib.sha256(f"{c.seed}:{group}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2.0 ** 64 < c.fraction

    def held_out(self, meta: dict, key: str = "?") -> bool:
        return self.held_out_group(self.group(meta, key))

    def raw_predicate(self, keep_held_out: bool):
        """A webdataset ``select`` predicate on undecoded samples (reads only the JSON member)."""
        def pred(sample: dict) -> bool:
            raw = sample.get("json")
            try:
                meta = json.loads(raw) if raw is not None else {}
            except (ValueError, UnicodeDecodeError):
                meta = {}
            return self.held_out(meta if isinstance(meta, dict) else {}, sample.get("__key__", "?")) == keep_held_out
        return pred
