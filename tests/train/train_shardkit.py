"""Write small pairforge-format shards for the trainer's tests (HQ crops of scikit-image photos)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from pairforge.io.dataset import DatasetWriter
from pairforge.io.storage import LocalStorage

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
_cache: dict[str, np.ndarray] = {}


def photo(name: str) -> np.ndarray:
    if name not in _cache:
        _cache[name] = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    return _cache[name]


def hq_crop(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    name = PHOTOS[int(rng.integers(len(PHOTOS)))]
    img = photo(name)
    y = int(rng.integers(img.shape[0] - size + 1))
    x = int(rng.integers(img.shape[1] - size + 1))
    return np.ascontiguousarray(img[y: y + size, x: x + size]), name


def degrade(hq: np.ndarray, rng: np.random.Generator, scale: int, noise: float, blur: float = 0.0) -> np.ndarray:
    x = hq.astype(np.float32)
    if blur > 0:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=blur, borderType=cv2.BORDER_REFLECT_101)
    if scale > 1:
        x = cv2.resize(x, (hq.shape[1] // scale, hq.shape[0] // scale), interpolation=cv2.INTER_CUBIC)
    if noise > 0:
        x = x + rng.standard_normal(x.shape).astype(np.float32) * noise
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buf.tobytes()


def write_dataset(out: Path, n: int, *, size: int = 64, scale: int = 2, noise: float = 5.0, per_shard: int = 16, blur: float = 0.0,
                  seed: int = 0, types: dict[str, float] | None = None, variants: int = 1, start_index: int = 0,
                  corrupt: tuple[int, ...] = (), write_index: bool = True, tag: str | None = None) -> Path:
    """A run directory with index.json and shards/shard-NNNNNN.tar (+ .json commit records), written by
    pairforge's own shard writer.

    ``types`` draws a degradation type per sample with these probabilities (only the metadata differs);
    ``variants`` > 1 writes lq_0..lq_{K-1}; ``corrupt`` indices get an undecodable LQ."""
    out = Path(out)
    storage = LocalStorage(out)
    writer = DatasetWriter(storage)
    rng = np.random.default_rng(seed)
    names = list(types) if types else ["noise"]
    probs = np.array(list(types.values()), dtype=float) if types else np.ones(1)
    probs = probs / probs.sum()
    index = {"shards": [], "total_samples": 0}
    for s, lo in enumerate(range(0, n, per_shard)):
        hi = min(n, lo + per_shard)
        with writer.open_shard(s, start_index + lo, start_index + hi) as shard:
            for i in range(lo, hi):
                idx = start_index + i
                key = f"{idx:010d}"
                hq, name = hq_crop(rng, size)
                dtype = names[int(rng.choice(len(names), p=probs))]
                meta = {"key": key, "index": idx, "source": {"kind": "bundled", "photo": name, "tag": tag},
                        "degradation": {"type": dtype, "scale": scale, "ops": [{"op": "noise", "sigma": noise}]},
                        "hq_size": [size, size], "lq_size": [size // scale, size // scale]}
                sample = {"__key__": key, "hq.png": png(hq)}
                if variants > 1:
                    for k in range(variants):
                        sample[f"lq_{k}.png"] = png(degrade(hq, rng, scale, noise, blur))
                else:
                    lq = png(degrade(hq, rng, scale, noise, blur))
                    sample["lq.png"] = b"not a png" if idx in corrupt else lq
                sample["json"] = json.dumps(meta).encode()
                shard.write(sample)
            rec = shard.commit()
        index["shards"].append({"name": rec["tar"], "samples": rec["samples"], "bytes": rec["bytes"]})
        index["total_samples"] += rec["samples"]
    if write_index:
        (out / "index.json").write_text(json.dumps(index))
    return out


NAF_TINY = {"kind": "nafnet", "width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]}
RRDB_TINY_X2 = {"kind": "rrdbnet", "scale": 2, "num_feat": 16, "num_block": 1, "num_grow_ch": 8, "residual": "bicubic"}


def make_config(out: Path, train_url, model=NAF_TINY, val_url=None, **sections) -> dict:
    cfg = {
        "model": dict(model),
        "data": {"datasets": [{"name": "pairs", "url": str(train_url)}], "patch_size": 48, "batch_size": 8,
                 "num_workers": 0, "shuffle_buffer": 64, "shuffle_initial": 16},
        "optim": {"lr": 2e-3, "warmup_steps": 10},
        # one torch thread: the same numbers on any machine, and no spinning OpenMP threads on a busy one
        "train": {"max_steps": 150, "log_every": 5, "ckpt_every": 1000, "ema": {"decay": 0.9}, "threads": 1},
        "output": {"dir": str(out), "tensorboard": "off"},
    }
    if val_url is not None:
        cfg["val"] = {"url": str(val_url), "every": 1000, "max_samples": 8}
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    return cfg


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
