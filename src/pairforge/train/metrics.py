"""Image-quality metrics and the training logs (CSV always, TensorBoard when installed)."""
from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import numpy as np

log = logging.getLogger("pairforge.train")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (all channels)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (scikit-image, Gaussian-free 7x7 window) over RGB uint8 images."""
    from skimage.metrics import structural_similarity

    side = min(a.shape[0], a.shape[1])
    win = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=max(3, win)))


class CSVLog:
    """Append rows to a CSV; the columns are fixed by the first row written (or the existing header).

    ``truncate_after(step)`` drops rows beyond a resumed checkpoint's step, so a resumed run's log
    reads as if it had never been interrupted."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fields: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            self.fields = header or None

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        text = self.path.read_text()
        if text and not text.endswith("\n"):  # a row cut short by a kill mid-write: not a row
            text = text[: text.rfind("\n") + 1]
        rows = [r for r in csv.DictReader(io.StringIO(text, newline=""))
                if r.get("step") and int(float(r["step"])) <= step]
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            if self.fields:
                w = csv.DictWriter(f, fieldnames=self.fields)
                w.writeheader()
                w.writerows(rows)
        tmp.replace(self.path)

    def write(self, row: dict) -> None:
        new = not self.path.exists() or self.fields is None
        if new:
            self.fields = list(row)
        extra = [k for k in row if k not in self.fields]
        if extra:
            log.debug("metrics: columns %s not in %s, dropped", extra, self.path.name)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
            f.flush()

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


def tensorboard_writer(log_dir: Path, mode: str = "auto"):
    """A SummaryWriter, or None when off (or, with ``auto``, when tensorboard is not installed)."""
    if mode == "off":
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as e:
        if mode == "on":
            raise RuntimeError(f"output.tensorboard is 'on' but tensorboard cannot be imported: {e}") from None
        return None
    return SummaryWriter(str(log_dir))
