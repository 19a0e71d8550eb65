"""``pairforge evaluate``: measure a restorer on pairforge data (or HQ/LQ folders, or LQ-only photos).

- :mod:`.models`  the restorer: a bundled-trainer checkpoint or a Real-ESRGAN/BasicSR state dict
- :mod:`.data`    evaluation pairs from datasets (local or s3://, shards or folder), HQ/LQ folders, LQ-only images
- :mod:`.metrics` full-reference (PSNR/SSIM on Y and RGB with SR border crop, LPIPS) and no-reference scores
- :mod:`.run`     the evaluation loop and per-sample rows
- :mod:`.report`  breakdowns by type/severity/source, terminal table, JSON, image grid
"""
from __future__ import annotations

__all__ = ["EvalResult", "evaluate"]


def __getattr__(name: str):
    """Import the evaluation loop (torch) only when it is used, not when the CLI registers its command."""
    if name in __all__:
        from pairforge.evaluate import run

        return getattr(run, name)
    raise AttributeError(name)
