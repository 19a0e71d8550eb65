"""Checkpoints that survive a kill: written to a temp file, fsynced, then renamed into place.

A checkpoint holds everything needed to continue the same trajectory: model, EMA, discriminator,
optimisers, schedulers, step, RNG states and the data streams' positions. ``latest.json`` (also
replaced atomically, after the checkpoint) names the newest one for other tools; resuming takes the
newest complete ``ckpt-NNNNNNNN.pt`` whatever latest.json says (it lags after a kill between the two).
Files are plain tensors and containers, loadable with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import uuid
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("pairforge.train")

FORMAT = "pairforge.train.checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")
_TMP = ".tmp-"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{_TMP}{uuid.uuid4().hex}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    random.setstate(state["python"])


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    return Path(ckpt_dir) / f"ckpt-{step:08d}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    out = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return sorted(out)


def save_checkpoint(ckpt_dir: Path, step: int, state: dict, keep: int = 3) -> Path:
    """Write ``state`` as the checkpoint for ``step`` atomically, point latest.json at it, prune old ones."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(ckpt_dir, step)
    tmp = path.with_name(f"{path.name}{_TMP}{uuid.uuid4().hex}")
    payload = {"format": FORMAT, "version": VERSION, "step": int(step), **state}
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(ckpt_dir)
    atomic_write_bytes(ckpt_dir / "latest.json", json.dumps({"step": int(step), "file": path.name}).encode())
    for s, p in list_checkpoints(ckpt_dir)[:-keep]:
        if s != step:
            p.unlink(missing_ok=True)
    return path


def clean_temporaries(ckpt_dir: Path) -> int:
    """Remove half-written files a killed run left behind; returns how many."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return 0
    n = 0
    for p in d.iterdir():
        if _TMP in p.name:
            p.unlink(missing_ok=True)
            n += 1
    return n


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    state = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pairforge training checkpoint")
    return state


def find_latest(ckpt_dir: Path) -> Path | None:
    """The newest loadable checkpoint in ``ckpt_dir``.

    Why not simply what latest.json names: a checkpoint is renamed into place before latest.json is
    rewritten, so a kill between the two leaves latest.json one checkpoint behind. Every file under a
    final ``ckpt-NNNNNNNN.pt`` name is complete (temp + fsync + rename), so the highest step wins;
    latest.json only adds a candidate whose name does not follow the pattern."""
    d = Path(ckpt_dir)
    candidates: list[Path] = [p for _, p in reversed(list_checkpoints(d))]
    try:
        name = json.loads((d / "latest.json").read_text())["file"]
        if not _NAME.match(str(name)):
            candidates.append(d / name)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for p in candidates:
        if not p.is_file():
            continue
        try:
            torch.load(p, map_location="cpu", weights_only=True, mmap=True)
            return p
        except Exception as e:  # a damaged file (e.g. a disk error): fall back to an older one
            log.warning("checkpoint %s is unreadable (%s); trying an older one", p, e)
    return None


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file, or the newest one under a training output dir / its checkpoints dir."""
    p = Path(path)
    if p.is_file():
        return p
    for d in (p / "checkpoints", p):
        found = find_latest(d)
        if found is not None:
            return found
    raise FileNotFoundError(f"no checkpoint at {path}")
