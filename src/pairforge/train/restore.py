"""Apply a trained restorer to images: one file or a folder, tiled so that large images fit in memory.

Tiles are processed with ``tile_pad`` pixels of real context on every side and only their centre is
kept, so for networks whose receptive field fits in the padding (RRDBNet at a modest pad) the result
matches a whole-image pass; there is no seam blending to hide.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from pydantic import TypeAdapter
from torch import nn

from pairforge.io.images import decode_image, encode_png
from pairforge.train.checkpoint import load_checkpoint, resolve_checkpoint
from pairforge.train.config import ModelConfig
from pairforge.train.nets import build_generator

log = logging.getLogger("pairforge.train")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class Restorer:
    model: nn.Module
    scale: int
    device: torch.device
    step: int
    source: Path


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_restorer(checkpoint: Path, use_ema: bool = True, device: str = "auto") -> Restorer:
    """The generator of a training checkpoint (its EMA weights when present and ``use_ema``)."""
    path = resolve_checkpoint(checkpoint)
    ck = load_checkpoint(path)
    model_cfg = TypeAdapter(ModelConfig).validate_python(ck["config"]["model"])  # only what inference needs
    model = build_generator(model_cfg)
    weights = ck["ema"] if use_ema and ck.get("ema") is not None else ck["model"]
    model.load_state_dict(weights)
    dev = pick_device(device)
    return Restorer(model.to(dev).eval(), model_cfg.scale, dev, int(ck["step"]), path)


@torch.no_grad()
def restore_array(r: Restorer, img: np.ndarray, tile: int | None = 512, tile_pad: int = 32) -> np.ndarray:
    """Restore one uint8 RGB image; tiles of ``tile`` input pixels (None: the whole image at once)."""
    img = np.ascontiguousarray(img) if img.flags.writeable else img.copy()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(r.device)
    h, w = img.shape[:2]
    s = r.scale
    if tile is None or (h <= tile and w <= tile):
        y = r.model(x)
    else:
        y = torch.empty(1, 3, h * s, w * s, device=r.device)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                py0, px0 = max(0, y0 - tile_pad), max(0, x0 - tile_pad)
                py1, px1 = min(h, y1 + tile_pad), min(w, x1 + tile_pad)
                out = r.model(x[..., py0:py1, px0:px1])
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                y[..., y0 * s: y1 * s, x0 * s: x1 * s] = out[..., oy: oy + (y1 - y0) * s, ox: ox + (x1 - x0) * s]
    return y[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def _inputs(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if src.is_dir():
        return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    raise FileNotFoundError(f"input not found: {src}")


def restore_paths(checkpoint: Path, src: Path, dst: Path, *, tile: int | None = 512, tile_pad: int = 32,
                  use_ema: bool = True, device: str = "auto", pre_upscale: int | None = None) -> list[Path]:
    """Restore an image or every image under a folder; outputs are PNGs. Returns the written paths.

    ``pre_upscale`` bicubic-upsamples inputs first (for scale-1 models trained with data.lq_upsample)."""
    src, dst = Path(src), Path(dst)
    r = load_restorer(checkpoint, use_ema, device)
    files = _inputs(src)
    if not files:
        raise FileNotFoundError(f"no images under {src} (looked for {sorted(IMAGE_SUFFIXES)})")
    single_target = src.is_file() and dst.suffix.lower() in IMAGE_SUFFIXES
    written = []
    for f in files:
        img, _ = decode_image(f.read_bytes(), str(f))
        if pre_upscale and pre_upscale > 1:
            img = cv2.resize(img, (img.shape[1] * pre_upscale, img.shape[0] * pre_upscale),
                             interpolation=cv2.INTER_CUBIC)
        out = restore_array(r, img, tile, tile_pad)
        if single_target:
            target = dst
        else:
            rel = f.name if src.is_file() else str(f.relative_to(src))
            target = (dst / rel).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode_png(out, 3))
        written.append(target)
        log.info("restored %s -> %s (%dx%d -> %dx%d)", f, target, img.shape[1], img.shape[0], out.shape[1], out.shape[0])
    return written
