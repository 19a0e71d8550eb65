"""The restorer ``pairforge evaluate`` measures: a bundled-trainer checkpoint (file or training output
dir, EMA weights by default) or a public RRDBNet/NAFNet state dict (Real-ESRGAN / BasicSR layouts,
mapped by :mod:`pairforge.train.statedicts`)."""
from __future__ import annotations

from pathlib import Path

import torch

from pairforge.train.checkpoint import FORMAT
from pairforge.train.restore import Restorer, load_restorer, pick_device


def _is_trainer_checkpoint(path: Path) -> bool:
    if path.is_dir():
        return True
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=path.suffix != ".safetensors")
    except Exception:  # noqa: BLE001 - safetensors or another format: not ours
        return False
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_model(path: str | Path, *, use_ema: bool = True, device: str = "auto",
               residual: str = "none") -> tuple[Restorer, dict]:
    """(restorer, description for the report). ``residual`` applies to foreign RRDBNet weights only."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"--checkpoint {path}: no such file or directory")
    if _is_trainer_checkpoint(p):
        r = load_restorer(p, use_ema, device)
        ck = torch.load(r.source, map_location="cpu", weights_only=True, mmap=True)
        cfg = ck["config"]
        info = {"kind": "pairforge", "path": str(r.source), "step": r.step, "model": cfg["model"],
                "weights": "ema" if use_ema and ck.get("ema") is not None else "model",
                "split": cfg.get("split"), "heldout": ck.get("heldout")}
        return r, info
    from pairforge.train.statedicts import load_state_dict_file

    cfg, model = load_state_dict_file(p, residual)
    dev = pick_device(device)
    r = Restorer(model.to(dev), cfg.scale, dev, -1, p)
    return r, {"kind": "state_dict", "path": str(p), "step": None, "model": cfg.model_dump(mode="json")}
