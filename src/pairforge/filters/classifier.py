"""A small binary quality classifier in the GenIR sense: trained on positive (high-quality) and negative
(cartoon, painting, over-smooth, dirty...) images, used as a filter by predicted probability.

Model: L2-regularised logistic regression on 17 cheap, interpretable image statistics (sharpness at two
scales, gradient and high-frequency energy, flat-area fraction, edge density, noise level, colourfulness,
saturation, palette size, exposure, entropy, clipping). It trains in seconds on CPU from a few hundred
images and runs at thousands of images per second, which is what a filter in front of a GPU stage
needs; it is not a deep aesthetic model and does not pretend to be one. The file it writes is plain
JSON (feature names, standardisation, weights), readable and versioned.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from pairforge.filters.imagesets import iter_images

FORMAT = "pairforge-quality-classifier"
VERSION = 1
WORK_SIDE = 256  # features are computed on a copy whose long side is this

FEATURES = (
    "log_laplacian_var",
    "log_laplacian_var_half",
    "sharpness_ratio",
    "log_grad_mean",
    "log_grad_p90",
    "log_highfreq_ratio",
    "flat_fraction",
    "log_local_std_median",
    "edge_density",
    "log_noise_sigma",
    "colorfulness",
    "saturation_mean",
    "saturation_std",
    "palette_ratio",
    "luma_mean",
    "luma_std",
    "entropy",
)


def image_features(img: np.ndarray) -> np.ndarray:
    """The feature vector (float64, len(FEATURES)) of a uint8 RGB image."""
    h, w = img.shape[:2]
    s = WORK_SIDE / max(h, w)
    if s < 1:
        img = cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(img)
    g8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    g = g8.astype(np.float32) / 255.0
    eps = 1e-6
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=3)
    lv = float(lap.var())
    half = cv2.resize(g, (max(4, g.shape[1] // 2), max(4, g.shape[0] // 2)), interpolation=cv2.INTER_AREA)
    lv2 = float(cv2.Laplacian(half, cv2.CV_32F, ksize=3).var())
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(g - g.mean()))) ** 2
    yy, xx = np.mgrid[: g.shape[0], : g.shape[1]]
    r = np.hypot((yy - g.shape[0] / 2) / (g.shape[0] / 2), (xx - g.shape[1] / 2) / (g.shape[1] / 2))
    hf = float(spec[r > 0.5].sum() / (spec.sum() + eps))
    mu = cv2.blur(g, (7, 7))
    lstd = np.sqrt(np.maximum(cv2.blur(g * g, (7, 7)) - mu * mu, 0))
    edges = cv2.Canny(g8, 50, 150)
    # Immerkaer's fast noise estimate: a Laplacian-difference kernel that cancels smooth structure
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    sigma = float(np.abs(cv2.filter2D(g, cv2.CV_32F, k)).mean() * math.sqrt(math.pi / 2) / 6.0)
    f = rgb.astype(np.float32)
    rg, yb = f[..., 0] - f[..., 1], 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    colorful = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())) / 100.0
    sat = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32) / 255.0
    q = (rgb >> 3).astype(np.int32)
    palette = len(np.unique(q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2])) / min(q.shape[0] * q.shape[1], 32768)
    hist = np.bincount(g8.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    return np.array(
        [
            math.log(lv + eps),
            math.log(lv2 + eps),
            math.log((lv + eps) / (lv2 + eps)),
            math.log(float(mag.mean()) + eps),
            math.log(float(np.percentile(mag, 90)) + eps),
            math.log(hf + eps),
            float((lstd < 0.01).mean()),
            math.log(float(np.median(lstd)) + eps),
            float((edges > 0).mean()),
            math.log(sigma + eps),
            colorful,
            float(sat.mean()),
            float(sat.std()),
            float(palette),
            float(g.mean()),
            float(g.std()),
            entropy,
        ],
        dtype=np.float64,
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class QualityClassifier:
    """Logistic regression on :data:`FEATURES`; ``predict_proba`` = P(high quality)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, weights: np.ndarray, bias: float, info: dict | None = None):
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)
        self.weights = np.asarray(weights, np.float64)
        self.bias = float(bias)
        self.info = dict(info or {})

    def predict_proba_features(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, np.float64) - self.mean) / self.std
        return _sigmoid(Z @ self.weights + self.bias)

    def predict_proba(self, images: list[np.ndarray]) -> np.ndarray:
        if not images:
            return np.zeros(0)
        return self.predict_proba_features(np.stack([image_features(im) for im in images]))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": "logistic_regression",
            "work_side": WORK_SIDE,
            "features": list(FEATURES),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            **self.info,
        }

    def save(self, path: str | Path) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(p)

    @classmethod
    def load(cls, path: str | Path) -> QualityClassifier:
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"classifier file not found: {path} (train one with `pairforge train-classifier`)") from None
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError(f"{path}: not a {FORMAT} v{VERSION} file")
        if list(doc["features"]) != list(FEATURES) or doc.get("work_side") != WORK_SIDE:
            raise ValueError(f"{path}: trained on different features than this pairforge computes; retrain it")
        info = {k: v for k, v in doc.items() if k not in ("format", "version", "model", "work_side", "features", "mean", "std", "weights", "bias")}
        return cls(doc["mean"], doc["std"], doc["weights"], doc["bias"], info)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Class-balanced, L2-regularised logistic regression (L-BFGS). Returns (mean, std, weights, bias)."""
    from scipy.optimize import minimize

    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std < 1e-9] = 1.0
    Z = (X - mean) / std
    n_pos, n_neg = max(1.0, y.sum()), max(1.0, (1 - y).sum())
    sw = np.where(y > 0.5, len(y) / (2 * n_pos), len(y) / (2 * n_neg))

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        z = Z @ w + b
        # log(1 + e^-z) for y=1, log(1 + e^z) for y=0, numerically stable
        ll = np.logaddexp(0.0, np.where(y > 0.5, -z, z))
        p = _sigmoid(z)
        g = sw * (p - y)
        val = float((sw * ll).mean() + 0.5 * l2 * (w @ w))
        grad = np.concatenate([Z.T @ g / len(y) + l2 * w, [g.mean()]])
        return val, grad

    res = minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B")
    return mean, std, res.x[:-1], float(res.x[-1])


def _auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    pos, neg = scores[y > 0.5], scores[y < 0.5]
    if len(pos) == 0 or len(neg) == 0:
        return None
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _collect(sources: str | Path | Iterable[str | Path], limit: int | None) -> tuple[np.ndarray, int]:
    if isinstance(sources, (str, Path)):
        sources = [sources]
    feats = []
    for src in sources:
        for _name, img in iter_images(src):
            feats.append(image_features(img))
            if limit is not None and len(feats) >= limit:
                break
        if limit is not None and len(feats) >= limit:
            break
    if not feats:
        raise ValueError(f"no decodable image found in {list(map(str, sources))}")
    return np.stack(feats), len(feats)


def train_classifier(
    pos_dir_or_shards: str | Path | Iterable[str | Path],
    neg_dir_or_shards: str | Path | Iterable[str | Path],
    out: str | Path,
    val_fraction: float = 0.2,
    l2: float = 1e-2,
    seed: int = 0,
    max_images: int | None = None,
) -> dict:
    """Train on positives and negatives (folders, image files, shard tars or run directories), hold out
    ``val_fraction`` of each class for validation, write the model JSON to ``out``; returns a report."""
    Xp, n_pos = _collect(pos_dir_or_shards, max_images)
    Xn, n_neg = _collect(neg_dir_or_shards, max_images)
    X = np.concatenate([Xp, Xn])
    y = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), bool)
    if val_fraction > 0:
        for cls_rows in (np.flatnonzero(y > 0.5), np.flatnonzero(y < 0.5)):
            k = round(len(cls_rows) * val_fraction)
            if 0 < k < len(cls_rows):
                val[rng.choice(cls_rows, size=k, replace=False)] = True
    mean, std, w, b = fit_logistic(X[~val], y[~val], l2=l2)
    model = QualityClassifier(mean, std, w, b)
    p_train = model.predict_proba_features(X[~val])
    report = {
        "positives": n_pos,
        "negatives": n_neg,
        "train_samples": int((~val).sum()),
        "val_samples": int(val.sum()),
        "train_accuracy": float(((p_train >= 0.5) == (y[~val] > 0.5)).mean()),
        "l2": l2,
        "seed": seed,
    }
    if val.any():
        p_val = model.predict_proba_features(X[val])
        report["val_accuracy"] = float(((p_val >= 0.5) == (y[val] > 0.5)).mean())
        report["val_auc"] = _auc(p_val, y[val])
    model.info = {"training": report}
    model.save(out)
    return {**report, "out": str(out)}
