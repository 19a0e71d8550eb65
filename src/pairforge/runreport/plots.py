"""The report's charts, drawn as small hand-written SVG documents and embedded as data URIs.

Why by hand: each chart is a few dozen rectangles, lines and labels. Drawing the ~10 charts of a report
with a plotting library cost seconds of CPU per run (its import, then layout and ``savefig`` of every
figure) whatever the run size, as much as degrading a 64-photo run; here they cost milliseconds, and
the bytes are deterministic by construction.

Why SVG data URIs: sharp at any zoom, a few KB each with text kept as text, and each chart is its own
document in an ``<img>``, so ids inside one SVG cannot clash with another's and the page needs no
script and no network to show them.

Sizes follow the page's old charts (inches at 96 px per inch, font sizes in points); the left margin
is sized from DejaVu Sans advance widths so long category names are never cut off.
"""
from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

import numpy as np

ACCEPT = "#3b7dd8"
REJECT = "#d9534f"
MARK = "#222222"
MEDIAN = "#ff7f0e"
PALETTE = ["#3b7dd8", "#e8a33d", "#5cb85c", "#d9534f", "#8e6cc2", "#3fb8b0", "#c76b98", "#7f7f7f", "#b5a33a"]
#: points drawn over each box of a distribution plot (a uniform sample of them beyond this)
MAX_POINTS = 400

DPI = 96  # px per inch: the size a browser shows an SVG's px at 100% zoom
PT = DPI / 72  # px per point
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
TICK = 3.5 * PT  # tick mark length
#: DejaVu Sans advance widths of the ASCII characters 32..126, per 1000 units of font size
_WIDTHS = (318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636,
           636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295,
           295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838,
           500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521,
           392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838)


def text_width(s: str, size: float) -> float:
    """Width in px of ``s`` at ``size`` px in DejaVu Sans (other characters counted wide), to lay out
    margins without a font renderer; a browser falling back to another sans font is within a few %."""
    return sum(_WIDTHS[ord(c) - 32] if 32 <= ord(c) < 127 else 850 for c in s) * size / 1000


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


class _Svg:
    """An SVG document being written: shapes in px, text escaped."""

    def __init__(self, width: float, height: float):
        self.w, self.h = width, height
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str | None = None) -> None:
        if w <= 0 or h <= 0:
            return
        s = f' stroke="{stroke}" stroke-width="1"' if stroke else ""
        self.parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{fill}"{s}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = MARK, width: float = 1.0,
             dash: str | None = None) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}" '
                          f'stroke-width="{_n(width)}"{d}/>')

    def text(self, x: float, y: float, s: str, size: float, anchor: str = "start", middle: bool = True,
             rotate: bool = False, fill: str = MARK) -> None:
        """``s`` at (x, y): vertically centred on y (``middle``) or with its baseline on y."""
        dy = ' dy="0.35em"' if middle else ""
        rot = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
        self.parts.append(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" '
                          f'fill="{fill}"{dy}{rot}>{html.escape(s)}</text>')

    def uri(self) -> str:
        doc = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(self.w)}" height="{_n(self.h)}" '
               f'viewBox="0 0 {_n(self.w)} {_n(self.h)}" font-family="{FONT}">'
               f'<rect width="100%" height="100%" fill="#ffffff"/>{"".join(self.parts)}</svg>')
        return "data:image/svg+xml;base64," + base64.b64encode(doc.encode("utf-8")).decode("ascii")


def nice_ticks(lo: float, hi: float, most: int = 6, integer: bool = False) -> tuple[list[float], float]:
    """At most ``most`` round tick values (1, 2, 2.5, 5 x 10^k apart) within [lo, hi], and their step."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, most - 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, round(step)) if step >= 1 else 1.0
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(k * step)
        k += 1
    return ticks, step


def tick_label(v: float, step: float) -> str:
    """A tick value with as many decimals as its step needs (``2.5`` steps get one more)."""
    if abs(v) < step * 1e-9:
        return "0"
    if max(abs(v), step) >= 1e6 or step < 1e-4:
        return f"{v:.3g}".replace("-", "\u2212")
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6:
        decimals += 1
    return f"{v:.{decimals}f}".replace("-", "\u2212")


class _Axes:
    """A plot area in px with data limits: maps data to px and draws its spines, ticks and labels."""

    def __init__(self, left: float, top: float, right: float, bottom: float,
                 xlim: tuple[float, float], ylim: tuple[float, float] = (0.0, 1.0)):
        self.left, self.top, self.right, self.bottom = left, top, right, bottom
        self.x0, self.x1 = xlim if xlim[1] > xlim[0] else (xlim[0], xlim[0] + 1.0)
        self.y0, self.y1 = ylim if ylim[1] > ylim[0] else (ylim[0], ylim[0] + 1.0)

    def x(self, v: float) -> float:
        return self.left + (v - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def y(self, v: float) -> float:
        return self.bottom - (v - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def spines(self, svg: _Svg) -> None:
        svg.line(self.left, self.top, self.left, self.bottom)
        svg.line(self.left, self.bottom, self.right, self.bottom)

    def xaxis(self, svg: _Svg, size: float, label: str = "", most: int = 8) -> None:
        """Ticks along the bottom: as many round values as fit without their labels touching."""
        while True:
            ticks, step = nice_ticks(self.x0, self.x1, most)
            labels = [tick_label(t, step) for t in ticks]
            widest = max((text_width(s, size) for s in labels), default=0)
            if most <= 2 or len(ticks) * (widest + 8) <= self.right - self.left:
                break
            most -= 1
        for t, s in zip(ticks, labels):
            px = self.x(t)
            svg.line(px, self.bottom, px, self.bottom + TICK)
            svg.text(px, self.bottom + TICK + 2 + size * 0.5, s, size, anchor="middle")
        if label:
            svg.text((self.left + self.right) / 2, self.bottom + TICK + 4 + size * 1.6, label, size, anchor="middle")

    def yaxis(self, svg: _Svg, size: float, label: str = "", integer: bool = False, most: int = 6) -> float:
        """Ticks along the left; returns the width the labels take (for the margin check)."""
        ticks, step = nice_ticks(self.y0, self.y1, most, integer)
        widest = 0.0
        for t in ticks:
            py = self.y(t)
            s = tick_label(t, step)
            widest = max(widest, text_width(s, size))
            svg.line(self.left - TICK, py, self.left, py)
            svg.text(self.left - TICK - 2, py, s, size, anchor="end")
        if label:
            svg.text(self.left - TICK - 6 - widest - size * 0.6, (self.top + self.bottom) / 2, label, size,
                     anchor="middle", rotate=True)
        return widest


def _y_label_width(ylim: tuple[float, float], size: float, integer: bool = False, most: int = 6) -> float:
    ticks, step = nice_ticks(ylim[0], ylim[1], most, integer)
    return max((text_width(tick_label(t, step), size) for t in ticks), default=0.0)


def _legend(svg: _Svg, x: float, y: float, entries: Sequence[tuple[str, str, bool]], size: float,
            anchor: str = "start") -> None:
    """A legend column at (x, y) top-left (or top-right with ``anchor="end"``): (label, colour, dashed line)."""
    width = max(text_width(s, size) for s, _, _ in entries) + 22
    if anchor == "end":
        x -= width
    for i, (s, color, dashed) in enumerate(entries):
        cy = y + i * size * 1.5 + size * 0.6
        if dashed:
            svg.line(x, cy, x + 16, cy, stroke=color, width=1.2 * PT, dash="4,2.5")
        else:
            svg.rect(x + 2, cy - size * 0.35, 12, size * 0.7, color)
        svg.text(x + 22, cy, s, size)


def _limits(values: np.ndarray, extra: Sequence[float] = ()) -> tuple[float, float]:
    """Data limits with a 5% margin each side (a single value gets a unit-wide range)."""
    pool = [float(values.min()), float(values.max())] if values.size else []
    pool += [float(v) for v in extra]
    if not pool:
        return 0.0, 1.0
    lo, hi = min(pool), max(pool)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def barh(counts: dict[str, float], title: str, colors: dict[str, str] | None = None, xlabel: str = "",
         fmt: str = "{:.0f}", total: float | None = None) -> str:
    """Horizontal bars, largest first, each labelled with its value (and share of ``total``)."""
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:30]
    fs, small = 9 * PT, 8 * PT
    svg = _Svg(6.4 * DPI, (0.3 * len(items) + 0.9) * DPI)
    names = [str(k) for k, _ in items]
    vals = [float(v) for _, v in items]
    notes = [fmt.format(v) + (f"  ({v / total:.1%})" if total else "") for v in vals]
    left = 6 + max((text_width(n, fs) for n in names), default=0) + TICK + 4
    top, bottom = 10 * PT * 2.2, svg.h - (TICK + fs * 1.2 + (fs * 1.4 if xlabel else 0) + 6)
    right = svg.w - 12
    plotw = right - left
    top_v = max(vals, default=0.0)
    xmax = top_v * 1.15 if top_v > 0 else 1.0
    for v, s in zip(vals, notes):  # room for every value label right of its bar
        room = plotw - 6 - text_width(s, small)
        if v > 0 and room > 0:
            xmax = max(xmax, v * plotw / room)
    ax = _Axes(left, top, right, bottom, (0.0, xmax))
    slot = (bottom - top) / max(1, len(items))
    for i, (name, v, s) in enumerate(zip(names, vals, notes)):
        cy = top + (i + 0.5) * slot
        svg.rect(ax.x(0), cy - 0.4 * slot, ax.x(v) - ax.x(0), 0.8 * slot, (colors or {}).get(name, ACCEPT))
        svg.line(left - TICK, cy, left, cy)
        svg.text(left - TICK - 2, cy, name, fs, anchor="end")
        svg.text(ax.x(v) + 4, cy, s, small)
    ax.spines(svg)
    ax.xaxis(svg, fs, xlabel)
    svg.text((left + right) / 2, 10 * PT * 1.1, title, 10 * PT, anchor="middle")
    return svg.uri()


def histogram(accepted: list[float], rejected: list[float], title: str, threshold: float | None = None,
              threshold_label: str = "", xlabel: str = "") -> str:
    """Stacked histogram of accepted (blue) and rejected (red) values, the threshold as a dashed line."""
    fs, small = 9 * PT, 7 * PT
    svg = _Svg(4.6 * DPI, 2.7 * DPI)
    acc = np.asarray(list(accepted), dtype=float)
    rej = np.asarray(list(rejected), dtype=float)
    allv = np.concatenate([acc, rej])
    entries: list[tuple[str, str, bool]] = []
    hist_acc = hist_rej = np.zeros(0)
    edges = np.zeros(0)
    if allv.size:
        lo, hi = float(allv.min()), float(allv.max())
        if threshold is not None:
            lo, hi = min(lo, threshold), max(hi, threshold)
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, 31)
        hist_acc = np.histogram(acc, bins=edges)[0] if acc.size else np.zeros(30, int)
        hist_rej = np.histogram(rej, bins=edges)[0] if rej.size else np.zeros(30, int)
        if acc.size:
            entries.append((f"accepted ({acc.size})", ACCEPT, False))
        if rej.size:
            entries.append((f"rejected ({rej.size})", REJECT, False))
    if threshold is not None:
        entries.append((threshold_label or f"threshold {threshold:.4g}", MARK, True))
    stacked = hist_acc + hist_rej
    peak = float(stacked.max()) if stacked.size else 1.0
    xlim = (float(edges[0]), float(edges[-1])) if edges.size else _limits(np.zeros(0), [threshold] if threshold is not None else [])
    pad = (xlim[1] - xlim[0]) * 0.05
    xlim = (xlim[0] - pad, xlim[1] + pad)
    ymax = max(1.0, peak * 1.05)
    # the legend goes in the top corner with less under it (bars, or the threshold line, which no y
    # range avoids); the y range grows to keep the bars below it
    top, bottom = 10 * PT * 2.2, svg.h - (TICK + fs * 1.2 + (fs * 1.4 if xlabel else 0) + 6)
    left = 6 + fs * 1.2 + 6 + _y_label_width((0.0, ymax), fs, integer=True) + TICK + 2
    right = svg.w - 12
    corner, under = "end", 0.0
    if entries:
        span = (max(text_width(e[0], small) for e in entries) + 22 + 12) / (right - left) * (xlim[1] - xlim[0])
        def occupied(a: float, b: float) -> float:
            if threshold is not None and a <= threshold <= b:
                return math.inf
            inside = (edges[1:] > a) & (edges[:-1] < b) if edges.size else np.zeros(0, bool)
            return float(stacked[inside].max()) if inside.any() else 0.0
        right_occ, left_occ = occupied(xlim[1] - span, xlim[1]), occupied(xlim[0], xlim[0] + span)
        corner, under = ("end", right_occ) if right_occ <= left_occ else ("start", left_occ)
        if math.isfinite(under):
            free = 1 - (len(entries) * small * 1.5 + 6) / (bottom - top)  # share of the height below the legend
            ymax = max(ymax, under / max(0.3, free) * 1.02)
            left = 6 + fs * 1.2 + 6 + _y_label_width((0.0, ymax), fs, integer=True) + TICK + 2
    ax = _Axes(left, top, right, bottom, xlim, (0.0, ymax))
    for k in range(edges.size - 1):
        x0, x1 = ax.x(edges[k]), ax.x(edges[k + 1])
        a, r = float(hist_acc[k]), float(hist_rej[k])
        svg.rect(x0, ax.y(a), x1 - x0, ax.y(0) - ax.y(a), ACCEPT)
        svg.rect(x0, ax.y(a + r), x1 - x0, ax.y(a) - ax.y(a + r), REJECT)
    if threshold is not None:
        svg.line(ax.x(threshold), top, ax.x(threshold), bottom, stroke=MARK, width=1.2 * PT, dash="4,2.5")
    ax.spines(svg)
    ax.xaxis(svg, fs, xlabel)
    ax.yaxis(svg, fs, "samples", integer=True)
    if entries:
        _legend(svg, ax.right - 4 if corner == "end" else ax.left + 8, top + 2, entries, small, anchor=corner)
    svg.text((ax.left + ax.right) / 2, 10 * PT * 1.1, title, 10 * PT, anchor="middle")
    return svg.uri()


def small_histograms(series: dict[str, list[float]], title: str, cols: int = 3) -> str:
    """A grid of small histograms (the chain's sampled parameters)."""
    names = list(series)
    rows = max(1, -(-len(names) // cols))
    cw, ch = 2.4 * DPI, 1.8 * DPI
    head = 10 * PT * 2.0
    svg = _Svg(cw * cols, ch * rows + head)
    fs, tick = 8 * PT, 7 * PT
    for i, name in enumerate(names):
        ox, oy = (i % cols) * cw, head + (i // cols) * ch
        v = np.asarray(series[name], dtype=float)
        v = v[np.isfinite(v)]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(v, bins=25, range=(lo, hi))
        pad = (hi - lo) * 0.05
        ymax = max(1.0, float(counts.max()) * 1.05)
        left = ox + 8 + _y_label_width((0.0, ymax), tick, integer=True, most=5) + TICK + 2
        ax = _Axes(left, oy + fs * 2.0, ox + cw - 10, oy + ch - (TICK + tick * 1.2 + 8), (lo - pad, hi + pad), (0.0, ymax))
        color = PALETTE[i % len(PALETTE)]
        for k, c in enumerate(counts):
            x0, x1 = ax.x(edges[k]), ax.x(edges[k + 1])
            svg.rect(x0, ax.y(c), x1 - x0, ax.y(0) - ax.y(c), color)
        ax.spines(svg)
        ax.xaxis(svg, tick, most=6)
        ax.yaxis(svg, tick, integer=True, most=5)
        svg.text((ax.left + ax.right) / 2, oy + fs * 0.9, f"{name} ({v.size})", fs, anchor="middle")
    svg.text(svg.w / 2, head * 0.5, title, 10 * PT, anchor="middle")
    return svg.uri()


def _box_stats(d: np.ndarray) -> tuple[float, float, float, float, float]:
    """Whisker low, Q1, median, Q3, whisker high (whiskers: the farthest values within 1.5 IQR)."""
    q1, med, q3 = (float(x) for x in np.percentile(d, [25, 50, 75]))
    iqr = q3 - q1
    lo = float(d[d >= q1 - 1.5 * iqr].min())
    hi = float(d[d <= q3 + 1.5 * iqr].max())
    return min(lo, q1), q1, med, q3, max(hi, q3)


def distributions(series: dict[str, list[float]], title: str, xlabel: str) -> str:
    """One horizontal box plot per group (first group on top; median in orange, whiskers to the farthest
    values within 1.5 IQR), the values drawn as jittered points over it."""
    fs = 9 * PT
    names = list(series)
    svg = _Svg(4.6 * DPI, (0.42 * len(names) + 1.0) * DPI)
    data = [np.asarray(series[n], dtype=float) for n in names]
    data = [d[np.isfinite(d)] for d in data]
    labels = [f"{n} ({len(series[n])})" for n in names]
    left = 6 + max((text_width(s, fs) for s in labels), default=0) + TICK + 4
    top, bottom = 10 * PT * 2.2, svg.h - (TICK + fs * 1.2 + (fs * 1.4 if xlabel else 0) + 6)
    nonempty = [d for d in data if d.size]
    ax = _Axes(left, top, svg.w - 12, bottom, _limits(np.concatenate(nonempty) if nonempty else np.zeros(0)))
    slot = (bottom - top) / max(1, len(names))
    rng = np.random.default_rng(0)
    for i, (d, s) in enumerate(zip(data, labels)):
        cy = top + (i + 0.5) * slot
        svg.line(left - TICK, cy, left, cy)
        svg.text(left - TICK - 2, cy, s, fs, anchor="end")
        if not d.size:
            continue
        wlo, q1, med, q3, whi = _box_stats(d)
        half = 0.3 * slot
        svg.line(ax.x(wlo), cy, ax.x(q1), cy)
        svg.line(ax.x(q3), cy, ax.x(whi), cy)
        for w in (wlo, whi):
            svg.line(ax.x(w), cy - half / 2, ax.x(w), cy + half / 2)
        svg.rect(ax.x(q1), cy - half, max(0.5, ax.x(q3) - ax.x(q1)), 2 * half, "none", stroke=MARK)
        svg.line(ax.x(med), cy - half, ax.x(med), cy + half, stroke=MEDIAN, width=1.5)
        pts = d if d.size <= MAX_POINTS else rng.choice(d, MAX_POINTS, replace=False)
        jitter = rng.uniform(-0.18, 0.18, pts.size) * slot
        color = PALETTE[i % len(PALETTE)]
        svg.parts.append(f'<g fill="{color}" fill-opacity="0.45">' + "".join(
            f'<circle cx="{_n(ax.x(p))}" cy="{_n(cy + j)}" r="1.6"/>' for p, j in zip(pts, jitter)) + "</g>")
    ax.spines(svg)
    ax.xaxis(svg, fs, xlabel)
    svg.text((left + ax.right) / 2, 10 * PT * 1.1, title, 10 * PT, anchor="middle")
    return svg.uri()


def severity_bars(by_severity: dict[str, dict[str, int]], order: tuple[str, ...]) -> str:
    """LQs per type, stacked by severity (the total at the end of each bar)."""
    types = sorted(by_severity, key=lambda t: -sum(by_severity[t].values()))
    levels = [s for s in order if any(s in r for r in by_severity.values())]
    levels += sorted({s for r in by_severity.values() for s in r} - set(levels))
    fs, small = 9 * PT, 7 * PT
    svg = _Svg(6.4 * DPI, (0.32 * len(types) + 1.0) * DPI + small * 1.8)
    entries = [("no severity" if lev == "-" else lev, PALETTE[j % len(PALETTE)]) for j, lev in enumerate(levels)]
    left = 6 + max((text_width(t, fs) for t in types), default=0) + TICK + 4
    title_h = 10 * PT * 2.0
    top, bottom = title_h + small * 1.8 + 4, svg.h - (TICK + fs * 1.2 + fs * 1.4 + 6)
    right = svg.w - 12
    totals = [sum(by_severity[t].values()) for t in types]
    peak = max(totals, default=0)
    plotw = right - left
    xmax = peak * 1.08 if peak > 0 else 1.0
    for v in totals:
        room = plotw - 6 - text_width(str(v), small)
        if v > 0 and room > 0:
            xmax = max(xmax, v * plotw / room)
    ax = _Axes(left, top, right, bottom, (0.0, xmax))
    slot = (bottom - top) / max(1, len(types))
    for i, (t, tot) in enumerate(zip(types, totals)):
        cy = top + (i + 0.5) * slot
        acc = 0
        for j, lev in enumerate(levels):
            n = by_severity[t].get(lev, 0)
            svg.rect(ax.x(acc), cy - 0.4 * slot, ax.x(acc + n) - ax.x(acc), 0.8 * slot, PALETTE[j % len(PALETTE)])
            acc += n
        svg.line(left - TICK, cy, left, cy)
        svg.text(left - TICK - 2, cy, t, fs, anchor="end")
        svg.text(ax.x(tot) + 4, cy, str(tot), small)
    ax.spines(svg)
    ax.xaxis(svg, fs, "LQs")
    # the legend: one row under the title, centred over the plot
    widths = [text_width(s, small) + 26 for s, _ in entries]
    x = (left + right) / 2 - sum(widths) / 2
    cy = title_h + small * 0.6
    for (s, color), w in zip(entries, widths):
        svg.rect(x + 2, cy - small * 0.35, 12, small * 0.7, color)
        svg.text(x + 18, cy, s, small)
        x += w
    svg.text((left + right) / 2, 10 * PT * 1.1, "LQs by degradation type and severity", 10 * PT, anchor="middle")
    return svg.uri()
