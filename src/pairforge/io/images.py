"""Image decoding and encoding that either converts an input correctly or says why it cannot.

Decoding handles what real folders contain: EXIF-rotated photos, palette/CMYK/gray/alpha images, 16-bit
PNG/TIFF, truncated or corrupt files, non-images and decompression bombs. Every failure is an
:class:`ImageRejected` with a stable ``rule`` (for counting) and a human ``reason``.
"""
from __future__ import annotations

import io
import math
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own bomb limit x2


class ImageRejected(Exception):
    def __init__(self, rule: str, reason: str, value=None):
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason
        self.value = value


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_side: int | None = None) -> tuple[np.ndarray, dict]:
    """Decode bytes to an RGB uint8 array; returns (array, info) where info records conversions.

    Memory: about 8 bytes per decoded pixel at the peak (Pillow's buffer and the array), so
    ``max_pixels`` bounds it: a larger image is rejected as ``too_large`` from its header, before any
    pixel is decoded. ``max_side``: an image whose longer side exceeds it is downscaled to it (area
    filter); a JPEG is first decoded at a reduced size (1/2, 1/4 or 1/8, Pillow's ``draft``), so it never
    occupies its full size in memory, and ``max_pixels`` applies to that reduced size."""
    if not data:
        raise ImageRejected("undecodable", f"{name}: empty file")
    steps: list[str] = []
    try:
        with warnings.catch_warnings():
            # the limit is ours (max_pixels, checked below), passed per call: Pillow's process-wide one
            # stays as it is; its warning is silenced here and its hard error becomes a too_large rejection
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            info: dict = {"format": im.format, "mode": im.mode, "decoded_size": [h, w]}
            if max_side and max(w, h) > max_side and im.format == "JPEG":
                scale = max_side / max(w, h)
                im.draft(None, (math.ceil(w * scale), math.ceil(h * scale)))
                if im.size != (w, h):
                    steps.append(f"decoded at reduced size {w}x{h}->{im.size[0]}x{im.size[1]} (JPEG draft)")
            dw, dh = im.size
            if dw * dh > max_pixels:
                hint = "" if max_side else " (source.max_side decodes large JPEGs at a reduced size)"
                raise ImageRejected("too_large", f"{name}: {dw}x{dh} exceeds max_pixels={max_pixels}{hint}", dw * dh)
            raw = _rawmode(im)  # before getexif(): PNG's loads the pixels and drops the tile list
            orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
            im.load()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as e:
        raise ImageRejected("too_large", f"{name}: {e}") from None
    except UnidentifiedImageError:
        raise ImageRejected("undecodable", f"{name}: not an image (unidentified format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageRejected("undecodable", f"{name}: corrupt or truncated image ({e})") from None
    if orientation and orientation != 1:
        im = ImageOps.exif_transpose(im)
        info["exif_orientation"] = int(orientation)
    if raw and raw.split(";")[0] == im.mode and raw != im.mode and ";16" in raw:
        # Pillow decodes 48/64-bit RGB(A) straight to 8 bits per channel (the high byte of each sample)
        steps.append(f"{raw}->{im.mode} (16-bit to 8-bit, high byte)")
    arr = _to_rgb8(im, name, steps)
    del im
    if max_side and max(arr.shape[:2]) > max_side:
        ah, aw = arr.shape[:2]
        scale = max_side / max(ah, aw)
        nw, nh = max(1, round(aw * scale)), max(1, round(ah * scale))
        arr = cv2.resize(arr, (nw, nh), interpolation=cv2.INTER_AREA)
        steps.append(f"downscaled {aw}x{ah}->{nw}x{nh} (max_side={max_side})")
    if steps:
        info["converted"] = "; ".join(steps)
    info["size"] = [int(arr.shape[0]), int(arr.shape[1])]
    return arr, info


def _rawmode(im: Image.Image) -> str | None:
    """How the file stores its pixels (e.g. ``RGB;16B`` for a 48-bit PNG), when the decoder says."""
    try:
        args = im.tile[0][3] if im.tile else None
    except (IndexError, TypeError):
        return None
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else None


def _to_rgb8(im: Image.Image, name: str, steps: list[str]) -> np.ndarray:
    """RGB uint8 pixels; every conversion made on the way is appended to ``steps`` (recorded per sample)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im)
        if a.dtype.kind == "f" or a.min() < 0 or a.max() > 65535:
            raise ImageRejected("unsupported_mode", f"{name}: {mode} values outside 16-bit range")
        a8 = np.clip(np.rint(a.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        steps.append(f"{mode}->RGB (16-bit to 8-bit)")
        return np.repeat(a8[..., None], 3, axis=2)
    if mode == "F":
        raise ImageRejected("unsupported_mode", f"{name}: floating-point images (mode F) are not photographs")
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3]
        if alpha.min() < 255:
            # flatten onto white, as browsers and most datasets do; recorded so users can filter
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, rgba).convert("RGB")
            steps.append(f"{mode}->RGB (alpha composited on white, {float((alpha < 255).mean()):.3f} transparent)")
        else:
            im = rgba.convert("RGB")
            steps.append(f"{mode}->RGB (opaque alpha dropped)")
    elif mode != "RGB":
        im = im.convert("RGB")
        steps.append(f"{mode}->RGB")
    arr = np.asarray(im)
    if arr.dtype != np.uint8:
        raise ImageRejected("unsupported_mode", f"{name}: unexpected dtype {arr.dtype} after conversion")
    return np.ascontiguousarray(arr)


def encode_png(rgb: np.ndarray, compression: int = 1) -> bytes:
    """Lossless PNG (OpenCV's libpng: much faster than Pillow at low compression levels)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"encode_png needs uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise ValueError("not a decodable image")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
