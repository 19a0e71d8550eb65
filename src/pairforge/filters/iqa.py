"""No-reference image-quality assessment with pyiqa, and the rules that turn scores into decisions.

Rules per metric: an absolute ``threshold``, or ``keep_top`` (FluxGen's "top 95%") whose threshold is a
quantile of the scores of a calibration sample. Calibrated thresholds are a run-level fact: they are
computed once on the driver, persisted in the run directory before any shard is written, and every
worker and every resume loads the same file (see :class:`ThresholdStore`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from pairforge.devices import resolve_device
from pairforge.envutil import temporary_env
from pairforge.errors import ModelLoadError
from pairforge.filters.config import IQAFilterConfig, IQAMetricRule

THRESHOLDS_VERSION = 1

# pyiqa imports OpenAI's clip, which imports pkg_resources and so prints setuptools' deprecation warning
# in every process that loads a metric (each Ray worker of `make demo` too): not the user's concern.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API", category=UserWarning)


@dataclass
class MetricInfo:
    name: str
    lower_better: bool
    score_range: str | None = None


class MissingWeightsError(ModelLoadError):
    """A metric's weight file is not on disk; runs never download (``pairforge models pull`` does)."""


@contextmanager
def refuse_downloads(metric: str) -> Iterator[None]:
    """Make pyiqa's (and CLIP's) downloaders fail with a clear error instead of fetching weights.

    pyiqa fetches a missing weight file silently from inside ``create_metric``; on an air-gapped node
    that hangs or fails obscurely, and on a networked one it downloads mid-run. ``pairforge models
    pull`` is the one place that downloads (it calls pyiqa without this guard)."""
    import pyiqa.utils.download_util as du

    def refuse(url, dst, *args, **kwargs):
        raise MissingWeightsError(
            f"IQA metric {metric!r} needs the weight file {os.path.basename(str(dst))} at {dst} (from {url}); "
            "nothing is downloaded during a run: fetch it with `pairforge models pull CONFIG --cache DIR` "
            "and set TORCH_HOME=DIR/torch on the workers"
        )

    patches = [(du, "download_url_to_file", refuse)]
    try:
        import clip.clip as clip_mod

        def refuse_clip(url, root, *args, **kwargs):
            target = os.path.join(root, os.path.basename(url))
            if os.path.isfile(target):
                return target
            refuse(url, target)

        patches.append((clip_mod, "_download", refuse_clip))
    except ImportError:
        pass
    saved = [(mod, attr, getattr(mod, attr)) for mod, attr, _ in patches]
    try:
        for mod, attr, fn in patches:
            setattr(mod, attr, fn)
        with temporary_env(HF_HUB_OFFLINE="1"):
            yield
    finally:
        for mod, attr, fn in saved:
            setattr(mod, attr, fn)


_METRICS: dict[tuple, object] = {}
_METRICS_LOCK = threading.Lock()


def load_metric(name: str, device: str = "cpu", options: dict | None = None):
    """A pyiqa metric in eval mode, created once per process for each (name, device, options).

    Metrics are inference-only here, so one instance serves every stage of the process (the calibration
    pass on the driver and a local executor's workers share it)."""
    import pyiqa
    import torch

    options = dict(options or {})
    key = (name, device, json.dumps(options, sort_keys=True, default=str))
    with _METRICS_LOCK:
        metric = _METRICS.get(key)
        if metric is None:
            try:
                with refuse_downloads(name):
                    metric = pyiqa.create_metric(name, device=torch.device(device), **options)
            except MissingWeightsError:
                raise
            except Exception as e:  # pyiqa raises bare exceptions for unknown names / missing weights
                raise RuntimeError(
                    f"could not load IQA metric {name!r}: {e}. Metric weights must be present offline "
                    f"(see `pairforge models pull`); metrics that need none: piqe, entropy"
                ) from e
            metric.eval()
            _METRICS[key] = metric
    return metric


class IQAScorer:
    """Scores batches of uint8 RGB images with several pyiqa metrics (grouped by size, chunked)."""

    def __init__(
        self,
        rules: list[IQAMetricRule],
        device: str = "cpu",
        max_side: int | None = None,
        batch_size: int = 8,
    ):
        self.rules = rules
        self.device = resolve_device(device)
        self.max_side = max_side
        self.batch_size = batch_size
        self._metrics: dict = {}
        self.info: dict[str, MetricInfo] = {}

    def load(self) -> None:
        for rule in self.rules:
            metric = load_metric(rule.name, self.device, rule.options)
            self._metrics[rule.name] = metric
            rng = getattr(metric, "score_range", None)
            self.info[rule.name] = MetricInfo(rule.name, bool(metric.lower_better), None if rng is None else str(rng))

    def score(self, images: list[np.ndarray]) -> dict[str, list[float]]:
        """Scores per metric name, one float per image (same order); NaN where a metric failed."""
        import torch

        if not self._metrics:
            self.load()
        out = {name: [math.nan] * len(images) for name in self._metrics}
        tensors = [self._to_tensor(img) for img in images]
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(tuple(t.shape), []).append(i)
        with torch.inference_mode():
            for idx in groups.values():
                for c in range(0, len(idx), self.batch_size):
                    chunk = idx[c : c + self.batch_size]
                    x = torch.stack([tensors[i] for i in chunk]).to(self.device)
                    for name, metric in self._metrics.items():
                        s = metric(x).detach().float().reshape(len(chunk), -1)[:, 0].cpu().numpy()
                        for j, i in enumerate(chunk):
                            out[name][i] = float(s[j])
        return out

    def _to_tensor(self, img: np.ndarray):
        import torch
        import torch.nn.functional as F

        arr = np.ascontiguousarray(img)
        if not arr.flags.writeable:  # e.g. decoded from a read-only buffer; torch wants writable memory
            arr = arr.copy()
        t = torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)
        if self.max_side is not None and max(t.shape[1:]) > self.max_side:
            s = self.max_side / max(t.shape[1:])
            size = (max(1, round(t.shape[1] * s)), max(1, round(t.shape[2] * s)))
            t = F.interpolate(t[None], size=size, mode="area")[0]
        return t


def passes(score: float, threshold: float, lower_better: bool) -> bool:
    """Whether a score is at least as good as the threshold in the metric's direction (NaN never passes)."""
    if math.isnan(score):
        return False
    return score <= threshold if lower_better else score >= threshold


def percentile_threshold(scores: list[float] | np.ndarray, keep_top: float, lower_better: bool) -> float:
    """The threshold that keeps the best ``keep_top`` fraction of ``scores`` (NaN scores are ignored).

    Higher-better: the (1 - keep_top) quantile, keep ``score >= t``; lower-better: the keep_top quantile,
    keep ``score <= t``. Linear interpolation between order statistics (numpy's default)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite score to estimate a percentile threshold from")
    q = keep_top if lower_better else 1.0 - keep_top
    return float(np.quantile(s, q))


def rules_fingerprint(cfg: IQAFilterConfig) -> str:
    """A digest of everything that determines the calibrated thresholds (not the thresholds' consumers)."""
    payload = {
        "metrics": [m.model_dump(mode="json") for m in cfg.metrics if m.keep_top is not None],
        "max_side": cfg.max_side,
        "calibration_samples": cfg.calibration_samples,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def calibrate(cfg: IQAFilterConfig, scores: dict[str, list[float]], info: dict[str, MetricInfo]) -> dict:
    """The thresholds document for the percentile rules of ``cfg`` from calibration scores."""
    metrics = {}
    for rule in cfg.metrics:
        if rule.keep_top is None:
            continue
        s = np.asarray(scores[rule.name], dtype=np.float64)
        lower = info[rule.name].lower_better
        t = percentile_threshold(s, rule.keep_top, lower)
        finite = s[np.isfinite(s)]
        kept = float(np.mean([passes(float(v), t, lower) for v in finite])) if finite.size else 0.0
        metrics[rule.name] = {
            "threshold": t,
            "keep_top": rule.keep_top,
            "lower_better": lower,
            "samples": int(finite.size),
            "calibration_keep_rate": round(kept, 6),
        }
    n = max((len(v) for v in scores.values()), default=0)
    return {
        "version": THRESHOLDS_VERSION,
        "fingerprint": rules_fingerprint(cfg),
        "calibration_samples": n,
        "metrics": metrics,
    }


class ThresholdStore:
    """Calibrated thresholds persisted in the run directory as ``filters/<name>.thresholds.json``.

    Written atomically (Storage.write_bytes) before any shard exists; on resume the file is read back
    and never recomputed, so every worker and every resume applies the same thresholds."""

    def __init__(self, storage, stage_name: str):
        self.storage = storage
        self.path = f"filters/{stage_name}.thresholds.json"

    def load(self) -> dict | None:
        if self.storage is None or not self.storage.exists(self.path):
            return None
        return json.loads(self.storage.read_bytes(self.path))

    def save(self, doc: dict) -> None:
        if self.storage is not None:
            self.storage.write_bytes(self.path, json.dumps(doc, indent=2, sort_keys=True).encode())


def check_thresholds(doc: dict, cfg: IQAFilterConfig, origin: str) -> dict:
    """Validate a loaded thresholds document against the config; returns ``{metric: threshold}``."""
    if doc.get("version") != THRESHOLDS_VERSION:
        raise RuntimeError(f"{origin}: unsupported thresholds version {doc.get('version')!r}")
    if doc.get("fingerprint") != rules_fingerprint(cfg):
        raise RuntimeError(
            f"{origin} was calibrated for different IQA rules than this config (metrics, keep_top, max_side or "
            "calibration_samples changed); use a new output directory, or delete the file to recalibrate "
            "(samples already written used the old thresholds)"
        )
    wanted = {m.name for m in cfg.metrics if m.keep_top is not None}
    have = set(doc.get("metrics", {}))
    if wanted != have:
        raise RuntimeError(f"{origin}: thresholds for {sorted(have)}, config wants {sorted(wanted)}")
    return {name: float(v["threshold"]) for name, v in doc["metrics"].items()}
