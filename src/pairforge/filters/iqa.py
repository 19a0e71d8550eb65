"""No-reference image-quality assessment with pyiqa, and the rules that turn scores into decisions."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pairforge.filters.config import IQAMetricRule


@dataclass
class MetricInfo:
    name: str
    lower_better: bool
    score_range: tuple | None = None


class IQAScorer:
    """Loads pyiqa metrics once and scores batches of uint8 RGB images (grouped by size)."""

    def __init__(self, rules: list[IQAMetricRule], device: str = "cpu", max_side: int | None = None):
        self.rules = rules
        self.device = device
        self.max_side = max_side
        self._metrics: dict = {}
        self.info: dict[str, MetricInfo] = {}

    def load(self) -> None:
        import pyiqa
        import torch

        for rule in self.rules:
            try:
                metric = pyiqa.create_metric(rule.name, device=torch.device(self.device), **rule.options)
            except Exception as e:  # pyiqa raises bare exceptions for unknown names / missing weights
                raise RuntimeError(
                    f"could not load IQA metric {rule.name!r}: {e}. Metric weights must be present offline "
                    f"(see `pairforge models pull`); metrics that need none: piqe, entropy"
                ) from e
            metric.eval()
            self._metrics[rule.name] = metric
            rng = getattr(metric, "score_range", None)
            self.info[rule.name] = MetricInfo(rule.name, bool(metric.lower_better), tuple(rng) if isinstance(rng, (list, tuple)) else rng)

    def score(self, images: list[np.ndarray]) -> dict[str, list[float]]:
        """Scores per metric name, one float per image (same order)."""
        import torch

        if not self._metrics:
            self.load()
        out = {name: [math.nan] * len(images) for name in self._metrics}
        tensors = [self._to_tensor(img) for img in images]
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(tuple(t.shape), []).append(i)
        with torch.inference_mode():
            for _shape, idx in groups.items():
                x = torch.stack([tensors[i] for i in idx]).to(self.device)
                for name, metric in self._metrics.items():
                    s = metric(x).detach().float().reshape(len(idx), -1)[:, 0].cpu().numpy()
                    for j, i in enumerate(idx):
                        out[name][i] = float(s[j])
        return out

    def _to_tensor(self, img: np.ndarray):
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
        if self.max_side is not None and max(t.shape[1:]) > self.max_side:
            s = self.max_side / max(t.shape[1:])
            size = (max(1, round(t.shape[1] * s)), max(1, round(t.shape[2] * s)))
            t = F.interpolate(t[None], size=size, mode="area")[0]
        return t


def passes(score: float, threshold: float, lower_better: bool) -> bool:
    """Whether a score is at least as good as the threshold in the metric's direction."""
    if math.isnan(score):
        return False
    return score <= threshold if lower_better else score >= threshold
