"""The report's charts, drawn with matplotlib (Agg, no display) and embedded as SVG data URIs.

Why SVG data URIs: sharp at any zoom, a few KB each with text kept as text, and each chart is its own
document in an ``<img>``, so ids inside one SVG cannot clash with another's and the page needs no
script and no network to show them.
"""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ACCEPT = "#3b7dd8"
REJECT = "#d9534f"
MARK = "#222222"
PALETTE = ["#3b7dd8", "#e8a33d", "#5cb85c", "#d9534f", "#8e6cc2", "#3fb8b0", "#c76b98", "#7f7f7f", "#b5a33a"]
STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller files, the browser's own font
    "svg.hashsalt": "pairforge",  # deterministic ids
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "figure.constrained_layout.use": True,
}
#: points drawn over each box of a distribution plot (a uniform sample of them beyond this)
MAX_POINTS = 400


def _uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})  # constrained layout: one draw, no "tight" re-draw
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def barh(counts: dict[str, float], title: str, colors: dict[str, str] | None = None, xlabel: str = "",
         fmt: str = "{:.0f}", total: float | None = None) -> str:
    """Horizontal bars, largest first, each labelled with its value (and share of ``total``)."""
    with plt.rc_context(STYLE):
        items = sorted(counts.items(), key=lambda kv: -kv[1])[:30]
        fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(items) + 0.9))
        names = [k for k, _ in items][::-1]
        vals = [v for _, v in items][::-1]
        ax.barh(names, vals, color=[(colors or {}).get(n, ACCEPT) for n in names])
        top = max(vals) if vals else 1
        for y, v in enumerate(vals):
            text = fmt.format(v) + (f"  ({v / total:.1%})" if total else "")
            ax.text(v + top * 0.01, y, text, va="center", fontsize=8)
        ax.set_xlim(0, top * 1.3 if top > 0 else 1)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        return _uri(fig)


def histogram(accepted: list[float], rejected: list[float], title: str, threshold: float | None = None,
              threshold_label: str = "", xlabel: str = "") -> str:
    """Stacked histogram of accepted (blue) and rejected (red) values, the threshold as a dashed line."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 2.7))
        allv = np.asarray(list(accepted) + list(rejected), dtype=float)
        if allv.size:
            lo, hi = float(allv.min()), float(allv.max())
            if threshold is not None:
                lo, hi = min(lo, threshold), max(hi, threshold)
            if hi <= lo:
                hi = lo + 1.0
            bins = np.linspace(lo, hi, 31)
            data, colors, labels = [], [], []
            if len(accepted):
                data.append(np.asarray(accepted, float)); colors.append(ACCEPT); labels.append(f"accepted ({len(accepted)})")
            if len(rejected):
                data.append(np.asarray(rejected, float)); colors.append(REJECT); labels.append(f"rejected ({len(rejected)})")
            ax.hist(data, bins=bins, stacked=True, color=colors, label=labels)
        if threshold is not None:
            ax.axvline(threshold, color=MARK, linestyle="--", linewidth=1.2, label=threshold_label or f"threshold {threshold:.4g}")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("samples")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, frameon=False)
        return _uri(fig)


def small_histograms(series: dict[str, list[float]], title: str, cols: int = 3) -> str:
    """A grid of small histograms (the chain's sampled parameters)."""
    with plt.rc_context(STYLE):
        names = list(series)
        rows = max(1, -(-len(names) // cols))
        fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 1.8 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            ax.hist(np.asarray(series[name], float), bins=25, color=PALETTE[names.index(name) % len(PALETTE)])
            ax.set_title(name, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        fig.suptitle(title, fontsize=10)
        return _uri(fig)


def distributions(series: dict[str, list[float]], title: str, xlabel: str) -> str:
    """One horizontal box plot per group, the values drawn as jittered points over it."""
    with plt.rc_context(STYLE):
        names = list(series)
        fig, ax = plt.subplots(figsize=(4.6, 0.42 * len(names) + 1.0))
        data = [np.asarray(series[n], float) for n in names]
        ax.boxplot(data, vert=False, showfliers=False, widths=0.6)
        rng = np.random.default_rng(0)
        for i, d in enumerate(data):
            pts = d if d.size <= MAX_POINTS else rng.choice(d, MAX_POINTS, replace=False)
            ax.scatter(pts, i + 1 + rng.uniform(-0.18, 0.18, pts.size), s=4, alpha=0.35, color=PALETTE[i % len(PALETTE)])
        ax.set_yticks(range(1, len(names) + 1), [f"{n} ({len(series[n])})" for n in names])
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        return _uri(fig)


def severity_bars(by_severity: dict[str, dict[str, int]], order: tuple[str, ...]) -> str:
    """LQs per type, stacked by severity."""
    with plt.rc_context(STYLE):
        types = sorted(by_severity, key=lambda t: -sum(by_severity[t].values()))
        levels = [s for s in order if any(s in r for r in by_severity.values())]
        levels += sorted({s for r in by_severity.values() for s in r} - set(levels))
        fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(types) + 1.0))
        left = np.zeros(len(types))
        for j, lev in enumerate(levels):
            vals = np.array([by_severity[t].get(lev, 0) for t in types], float)
            ax.barh(types[::-1], vals[::-1], left=left[::-1], label="no severity" if lev == "-" else lev,
                    color=PALETTE[j % len(PALETTE)])
            left += vals
        ax.set_title("LQs by degradation type and severity")
        ax.set_xlabel("LQs")
        ax.legend(fontsize=7, frameon=False, ncols=min(4, len(levels)))
        return _uri(fig)
