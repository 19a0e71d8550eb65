"""Refactors must not change what a run makes: the same config and seed give the same pixels and the
same per-sample metadata as the recorded digests (tests/foundation/golden_outputs.json).

Digests are taken over decoded pixels and canonical JSON, not tar bytes, so a different libpng build
does not count as a change. When a change alters outputs on purpose (a degradation model fixed), run
this file with PAIRFORGE_UPDATE_GOLDEN=1 and say why in the commit message.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from pairforge.config import parse_config
from pairforge.io.images import decode_png
from pairforge.pipeline.runner import run_pipeline

GOLDEN = Path(__file__).with_name("golden_outputs.json")

#: metadata fields that legitimately vary between runs (timings, absolute paths of temp folders)
VOLATILE = {"seconds", "elapsed", "path"}

CASES = {
    "simple-webdataset": {"degrade": {"kind": "simple", "scale": 2}, "output": {"samples_per_shard": 3}},
    "chain-realesrgan": {"degrade": {"kind": "chain", "preset": "realesrgan"}, "output": {"samples_per_shard": 4}},
    "realworld-folder": {"degrade": {"kind": "realworld"}, "output": {"samples_per_shard": 4, "format": "folder"}},
}


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in VOLATILE and not k.endswith("_seconds")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def run_digest(out: Path) -> dict[str, str]:
    """key -> sha256 over (HQ pixels, LQ pixels, canonical metadata) for every accepted sample."""
    out_digest = {}
    tars = sorted((out / "shards").glob("*.tar"))
    samples: dict[str, dict[str, bytes]] = {}
    if tars:
        import tarfile

        for t in tars:
            with tarfile.open(t) as tar:
                for m in tar.getmembers():
                    key, _, ext = m.name.partition(".")
                    samples.setdefault(key, {})[ext] = tar.extractfile(m).read()
    else:
        for sub, ext in (("hq", "hq.png"), ("lq", "lq.png"), ("meta", "json")):
            for f in sorted((out / sub).glob("*")):
                samples.setdefault(f.name.partition(".")[0], {})[ext] = f.read_bytes()
    for key, members in sorted(samples.items()):
        h = hashlib.sha256()
        for ext in ("hq.png", "lq.png"):
            arr = decode_png(members[ext])
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        meta = _strip(json.loads(members["json"]))
        h.update(json.dumps(meta, sort_keys=True).encode())
        out_digest[key] = h.hexdigest()
    return out_digest


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_recorded_digests(case, tmp_path):
    data = {
        "run": {"seed": 11},
        "source": {"kind": "bundled", "photos": ["astronaut", "coffee"], "crop": {"mode": "tiles", "size": 96, "stride": 160}},
        "filters": [{"kind": "sanity", "min_size": 32}],
        **CASES[case],
    }
    out = tmp_path / case
    run_pipeline(parse_config(data), str(out), limit=8, executor="local")
    got = run_digest(out)
    assert len(got) >= 6, f"{case}: only {len(got)} accepted samples"
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("PAIRFORGE_UPDATE_GOLDEN") == "1":
        recorded[case] = got
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        return
    assert case in recorded, f"no recorded digest for {case}; run with PAIRFORGE_UPDATE_GOLDEN=1"
    changed = sorted(k for k in set(got) | set(recorded[case]) if got.get(k) != recorded[case].get(k))
    assert not changed, f"{case}: samples {changed} differ from the recorded outputs"
