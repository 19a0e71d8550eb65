"""A synthetic run directory for the run report's tests and benchmark: written through the real dataset
writer and ledger (commit records, run.json, index.json), with the metadata shapes the stages record
(sanity and IQA scores, a dedup rejection, real-world types with severities and strength, Real-ESRGAN
chain ops with sampled parameters, synthesis prompts) and thumbnails of rejected inputs. Seconds for
thousands of samples, no Ray, no model."""
from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np

from pairforge.batch import new_batch
from pairforge.config import config_to_dict, parse_config
from pairforge.io.dataset import DatasetWriter
from pairforge.io.storage import LocalStorage
from pairforge.io.thumbnails import make_thumbnail
from pairforge.pipeline import ledger
from pairforge.pipeline.plan import ShardSpec

CONFIG = {
    "run": {"name": "synthetic", "seed": 3},
    "source": {"kind": "bundled", "crop": {"mode": "tiles", "size": 64}},
    "filters": [
        {"kind": "sanity", "min_size": 16, "min_std": 6.0},
        {"kind": "iqa", "metrics": [{"name": "piqe", "threshold": 50.0}]},
        {"kind": "dedup"},
    ],
    "degrade": {"kind": "realworld"},
    "output": {"samples_per_shard": 32, "license": "cc-by-4.0"},
}
#: anything a page could load from elsewhere: URLs with a scheme or protocol-relative, CSS imports/urls
REMOTE = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(\s*['\"]?(?!data:)", re.IGNORECASE)


def remote_references(text: str) -> list[str]:
    """Every reference to a resource outside the file (the report and the card must have none)."""
    return [m.group(0) for m in REMOTE.finditer(text)]


TYPES = ("blur", "noise", "haze")
SEVERITIES = ("light", "medium", "heavy")


def _image(rng: np.random.Generator, size: int) -> np.ndarray:
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.int16) + rng.integers(-12, 12, img.shape), 0, 255).astype(np.uint8)


def _chain(rng: np.random.Generator) -> dict:
    return {"chain": "realesrgan", "scale": 2, "ops": [
        {"op": "blur", "name": "blur1", "applied": True, "kernel": {"type": "iso", "sigma_x": float(rng.uniform(0.2, 3)), "sigma_y": 1.0}},
        {"op": "gaussian_noise", "name": "gaussian1", "applied": True, "sigma": float(rng.uniform(1, 30))},
        {"op": "jpeg", "name": "jpeg1", "applied": True, "quality": int(rng.integers(30, 95))},
        {"op": "blur", "name": "blur2", "applied": False},
    ]}


def _realworld(rng: np.random.Generator, i: int) -> dict:
    typ = TYPES[i % len(TYPES)]
    sev = SEVERITIES[(i // len(TYPES)) % len(SEVERITIES)]
    types = [typ, "noise" if typ != "noise" else "blur"] if i % 10 == 0 else [typ]  # some stacked
    return {"chain": "realworld", "type": "+".join(types), "types": types, "web_tail": False,
            "ops": [{"op": t, "severity": sev, "amount": float(rng.uniform(0, 1))} for t in types],
            "strength": {"psnr": float(rng.uniform(18, 35)), "ssim": float(rng.uniform(0.4, 0.95))}}


def write_synthetic_run(out: Path, n: int = 96, per_shard: int = 32, size: int = 64, seed: int = 0,
                        thumbnails: int = 2, layout: str = "webdataset") -> Path:
    """A complete run directory of ``n`` inputs (about 1 in 8 rejected by piqe, 1 in 31 as a duplicate)."""
    cfg = parse_config({**CONFIG, "output": {**CONFIG["output"], "samples_per_shard": per_shard}})
    storage = LocalStorage(out)
    shards = [ShardSpec(s, s * per_shard, min(n, (s + 1) * per_shard)) for s in range(-(-n // per_shard))]
    resolved = config_to_dict(cfg)
    resolved["run"]["num_samples"] = n
    ledger.start_run(storage, resolved, {"num_samples": n, "samples_per_shard": per_shard, "shards": len(shards)})
    writer = DatasetWriter(storage, layout=layout, rejected_thumbnails=thumbnails)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for spec in shards:
        batch = new_batch(list(range(spec.start, spec.end)))
        batch["lq"] = [None] * len(batch["index"])
        batch["thumb"] = [None] * len(batch["index"])
        for row, i in enumerate(batch["index"]):
            hq = _image(rng, size)
            piqe = float(rng.uniform(10, 60))
            meta = batch["meta"][row]
            meta["source"] = ({"kind": "synthesis", "model": "tiny-flux", "prompt_source": "template",
                               "prompt": f"a photo of object {i % 17} on a table", "prompt_origin": "template"}
                              if i % 3 == 0 else {"kind": "bundled", "photo": "astronaut", "crop": [0, 0, size, size]})
            meta["filters"] = {"sanity": {"luma_std": float(rng.uniform(8, 80)), "aspect": 1.0, "clipped_fraction": 0.01}}
            if i % 31 == 30:
                batch["reject"][row] = {"stage": "dedup", "rule": "near_duplicate", "reason": f"near-duplicate of {i - 1:010d}",
                                        "value": {"kept": f"{i - 1:010d}", "distance": 2, "scope": "batch"}}
                batch["thumb"][row] = make_thumbnail(hq)
                continue
            if piqe > 54:
                batch["reject"][row] = {"stage": "iqa", "rule": "piqe", "reason": f"piqe score {piqe:.4g} > threshold 50", "value": piqe}
                batch["thumb"][row] = make_thumbnail(hq)
                continue
            meta["filters"]["iqa"] = {"piqe": {"score": piqe, "threshold": 50.0, "rule": "threshold", "passed": True, "lower_better": True}}
            meta["filters"]["dedup"] = {"hash": "phash", "value": f"{i:016x}"}
            if i % 2:
                meta["degradation"] = _chain(rng)
                lq = cv2.resize(hq, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
            else:
                meta["degradation"] = _realworld(rng, i)
                lq = cv2.GaussianBlur(hq, (5, 5), 1.5)
            batch["hq"][row] = hq
            batch["lq"][row] = lq
        writer.write_batch(spec.shard, spec.start, spec.end, batch, extra={"stage_seconds": {"source": 0.01, "iqa": 0.2, "degrade": 0.05}})
    records = ledger.committed_records(storage)
    ledger.write_index(storage, records, shards)
    ledger.finish_run(storage, {"finished": time.time(), "seconds": round(time.perf_counter() - t0, 3), "executor": "local",
                                "shards_written": len(shards), "inputs": n, "accepted": sum(r["samples"] for r in records.values())})
    return out
