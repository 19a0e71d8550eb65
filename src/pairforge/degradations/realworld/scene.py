"""The weight-free scene model: what a photo's layout lets us say about depth, its salient subject, and a
segmentation with the requested number of regions, all from a small copy of the image.

Why this exists: depth-dependent effects (haze, rain, depth defocus) and object motion need scene
structure. Without a depth network the only honest answer is often "unknown": a head-and-shoulders
portrait, a cat, a cup on a table or a document has no usable monocular layout cue, and a made-up depth
(a top-to-bottom ramp, "flat means far") puts haze on faces and tilt-shift blur on close-ups. So the
model first decides whether the photo has a usable layout cue, and says which *form* the depth takes:

- ``layout``: an open sky touches the top border across the frame, ends at a horizon, and textured
  ground fills the width below it (the classic outdoor layout). Depth is then a ground plane (distance
  growing like 1 / (row - horizon)), the sky at infinity, and the salient subject standing on the
  ground at the depth of its lowest row ("pop-up" model).
- ``neutral``: no usable cue. Depth is constant; the depth-dependent types switch to scene-neutral
  forms (near-uniform haze, background defocus behind the salient subject or uniform defocus, rain
  without splashes) and record it.
- ``model`` (set by :mod:`.depth` when a depth network is configured).

The salient subject comes from region contrast against the image border (background prior), a centre
prior and the region's sharpness, on superpixels (weaker parts joining a strong core); it is returned as a soft
matte whose edge a guided filter moves onto the image's edges (feathered), with
a confidence, or not at all. Segments: superpixels merged greedily (Ward cost on colour) to exactly the
requested count.

Everything runs at a short side of ``ANALYSIS_SIDE`` px (a few ms at any image size) and is upsampled
on use; nothing here has weights. Validated against ground-truth depth of rendered scenes built from
real textures (tests/degradations/realworld/test_rw_scene.py).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

ANALYSIS_SIDE = 64
#: contrast (in units of the background's own colour spread) of the parts that join a subject's core
SUBJECT_WEAK = 2.0


def downscale(image: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Area-downscale so the short side is ``side`` (no-op when already smaller)."""
    h, w = image.shape[:2]
    f = side / min(h, w)
    if f >= 1:
        return image
    return cv2.resize(image, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)


def upsample(x: np.ndarray, shape: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize a map to ``shape`` (area-averaged when it shrinks: a full-size depth asked for at a
    small size must not alias)."""
    h, w = shape
    if x.shape[:2] == (h, w):
        return x
    shrink = h <= x.shape[0] and w <= x.shape[1]
    mode = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.resize(x, (w, h), interpolation=mode)


# --------------------------------------------------------------------------------------------------
# superpixels (a small SLIC: k-means on colour + position, from a grid, fixed iterations)


def superpixels(lab: np.ndarray, n: int, compactness: float = 10.0, iters: int = 5) -> np.ndarray:
    """Label map with about ``n`` compact colour-coherent regions: SLIC (k-means on Lab + position)
    where each pixel only competes among the 3 x 3 grid cells around it (deterministic, labels 0..K-1)."""
    h, w = lab.shape[:2]
    gy = max(1, round(np.sqrt(n * h / w)))
    gx = max(1, round(n / gy))
    step = np.sqrt(h * w / (gx * gy))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    m = compactness / step
    feat = np.concatenate([lab.reshape(-1, 3), m * np.stack([ys.ravel(), xs.ravel()], 1)], 1)
    cell_y = np.minimum((ys.ravel() * gy / h).astype(int), gy - 1)
    cell_x = np.minimum((xs.ravel() * gx / w).astype(int), gx - 1)
    # candidate centres of every pixel: its cell and the 8 around it (clamped at the borders)
    cand = np.stack([np.clip(cell_y + dy, 0, gy - 1) * gx + np.clip(cell_x + dx, 0, gx - 1)
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)
    k = gy * gx
    labels = cell_y * gx + cell_x
    centres = np.zeros((k, 5), np.float32)
    rows = np.arange(cand.shape[0])
    for _ in range(iters + 1):
        counts = np.bincount(labels, minlength=k).astype(np.float32)
        sums = np.stack([np.bincount(labels, weights=feat[:, c], minlength=k) for c in range(5)], 1)
        ok = counts > 0
        centres[ok] = sums[ok] / counts[ok, None]
        if _ == iters:
            break
        # one candidate column at a time: small temporaries (an N x 9 x 5 block costs twice as much)
        d = np.empty(cand.shape, np.float32)
        for o in range(cand.shape[1]):
            diff = feat - centres[cand[:, o]]
            d[:, o] = np.einsum("ij,ij->i", diff, diff)
        d[~ok[cand]] = np.inf
        labels = cand[rows, np.argmin(d, axis=1)]
    return relabel(labels.reshape(h, w))


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 0..K-1 in order of first appearance in raster order (stable)."""
    flat = labels.ravel()
    _, first = np.unique(flat, return_index=True)
    order = flat[np.sort(first)]
    lut = np.zeros(int(flat.max()) + 1, np.int32)
    lut[order] = np.arange(order.size, dtype=np.int32)
    return lut[labels].astype(np.int32)


def region_means(labels: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    flat = labels.ravel()
    counts = np.maximum(np.bincount(flat, minlength=k), 1).astype(np.float64)
    v = values.reshape(flat.size, -1)
    return np.stack([np.bincount(flat, weights=v[:, c], minlength=k) / counts for c in range(v.shape[1])], 1)


def adjacency_pairs(labels: np.ndarray) -> np.ndarray:
    """Sorted unique (i, j), i < j, of 4-adjacent regions, as an E x 2 int array."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    m = a != b
    lo, hi = np.minimum(a[m], b[m]).astype(np.int64), np.maximum(a[m], b[m]).astype(np.int64)
    key = np.unique(lo * (int(labels.max()) + 1) + hi)
    return np.stack([key // (int(labels.max()) + 1), key % (int(labels.max()) + 1)], 1)


def adjacency(labels: np.ndarray) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in adjacency_pairs(labels)}


def merge_to(labels: np.ndarray, lab: np.ndarray, n: int) -> np.ndarray:
    """Merge adjacent regions (smallest Ward colour cost first) until exactly ``n`` remain (or fewer
    when the image has fewer regions to begin with)."""
    k = int(labels.max()) + 1
    if k <= n:
        return labels
    mean = region_means(labels, lab, k)
    area = np.bincount(labels.ravel(), minlength=k).astype(np.float64)
    parent = np.arange(k)
    edges = adjacency_pairs(labels)
    i_, j_ = edges[:, 0], edges[:, 1]  # sorted unique pairs, i < j (as keys i * k + j: 1-D unique)
    alive = k
    while alive > n and len(i_):
        cost = area[i_] * area[j_] / (area[i_] + area[j_]) * ((mean[i_] - mean[j_]) ** 2).sum(1)
        best = int(np.argmin(cost))
        i, j = int(i_[best]), int(j_[best])
        mean[i] = (mean[i] * area[i] + mean[j] * area[j]) / (area[i] + area[j])
        area[i] += area[j]
        parent[parent == j] = i
        a, b = np.where(i_ == j, i, i_), np.where(j_ == j, i, j_)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = np.unique((lo * k + hi)[lo != hi])
        i_, j_ = key // k, key % k
        alive -= 1
    return relabel(parent[labels])


# --------------------------------------------------------------------------------------------------
# layout (sky + ground) and the depth it implies


def layout(small: np.ndarray, gray: np.ndarray, texture: np.ndarray, roughness: np.ndarray | None = None) -> dict:
    """Detect the outdoor layout cue: a smooth sky connected to the top border over most of the width,
    ending at a horizon with textured ground below across the frame. Returns the evidence and, when
    found, the sky mask and horizon row (analysis resolution). ``roughness`` (second derivatives, blind
    to a smooth gradient) places the horizon under the sky's lower, graded part; see :func:`extend_sky`."""
    h, w = gray.shape
    smooth_thr = max(0.012, float(np.quantile(texture, 0.25)) * 1.5)
    smooth = (texture < smooth_thr).astype(np.uint8)
    _n, cc = cv2.connectedComponents(smooth, connectivity=4)
    top_ids = np.unique(cc[0][smooth[0] > 0])
    sky = np.isin(cc, top_ids[top_ids > 0]) if top_ids.size else np.zeros_like(smooth, bool)
    # close small holes (stars, wires, birds) in the sky, column-wise from the top
    col_bottom = np.array([np.argmin(sky[:, x]) if not sky[:, x].all() else h for x in range(w)])
    top_cover = float(sky[0].mean())
    frac = float(sky.mean())
    horizon = float(np.median(col_bottom)) / h
    reach_bottom = float((col_bottom >= 0.85 * h).mean())
    below = np.zeros_like(sky)
    for x in range(w):
        below[col_bottom[x]:, x] = True
    tex_sky = float(texture[sky].mean()) if sky.any() else 1.0
    tex_ground = float(texture[below].mean()) if below.any() else 0.0
    ground_cols = float((below.sum(0) >= 0.1 * h).mean())
    ok = (top_cover >= 0.6 and 0.06 <= frac <= 0.75 and 0.1 <= horizon <= 0.8 and reach_bottom <= 0.15
          and tex_ground >= 2.5 * max(tex_sky, 1e-4) and ground_cols >= 0.85)
    if ok:
        col_bottom = extend_sky(texture if roughness is None else roughness, sky, col_bottom)
        horizon = float(np.median(col_bottom)) / h
    return {"usable": bool(ok), "sky_fraction": round(frac, 4), "sky_top_cover": round(top_cover, 4),
            "horizon": round(horizon, 4), "sky_reaches_bottom": round(reach_bottom, 4),
            "texture_contrast": round(tex_ground / max(tex_sky, 1e-4), 3),
            "_sky": sky, "_col_bottom": col_bottom}


def extend_sky(texture: np.ndarray, sky: np.ndarray, col_bottom: np.ndarray) -> np.ndarray:
    """The sky's lower edge per column, pushed down through the low sky.

    The sky test's threshold is global (a quantile of the whole frame's gradient magnitude); near the
    horizon a real sky carries a steeper colour gradient, glow and noise (dusk, city lights), so the
    sky mask stops well above the true horizon and the band in between would come out as near ground
    (a dark, clear band under a hazed sky). Below the first estimate each column continues downwards
    while its ``texture`` (here: second derivatives, which a smooth gradient does not have) stays under
    the log-midpoint of the sky's and the near ground's (bottom rows), and stops at the first textured
    pixel: it cannot leak past the textured horizon line (a column smooth down to the bottom, a dark
    corner of ground, keeps its first estimate)."""
    h, w = texture.shape
    t_sky = float(np.median(texture[sky])) if sky.any() else 0.0
    t_ground = float(np.median(texture[-max(2, h // 10):]))
    thr = float(np.sqrt(max(t_sky, 1e-4) * max(t_ground, 1e-4)))
    rough = texture >= thr
    out = col_bottom.copy()
    for x in range(w):
        y0 = int(col_bottom[x])
        if y0 >= h:
            continue
        hit = np.nonzero(rough[y0:, x])[0]
        if hit.size:  # a column that stays smooth to the bottom found no horizon line: keep its estimate
            out[x] = y0 + int(hit[0])
    return out


def horizon_line(col_bottom: np.ndarray, h: int) -> np.ndarray:
    """The horizon row per column as a straight line (a level or slightly tilted camera), fitted to the
    columns whose sky reaches it.

    Anything standing in front of the horizon (masts, a tower the frame cuts, a person's head) only ends
    a column's sky *higher*, and a smooth dark ground can let a column's sky run too low; so the fit
    starts from a level line at the median of the lower half of the columns and keeps, three times, the
    columns near the current line; the tilt is limited to 10% of the frame's height across its width.
    A running median across columns (the previous estimate) followed a lattice tower at the frame's edge
    up to the top: the sky beside it came out as near ground, a dark block in haze."""
    cb = np.asarray(col_bottom, np.float64)
    w = cb.size
    x = np.arange(w, dtype=np.float64)
    line = np.full(w, float(np.median(cb[cb >= np.median(cb)])))
    band = max(2.0, 0.04 * h)
    for _ in range(3):
        keep = np.abs(cb - line) <= band
        if keep.sum() < max(3, w // 5):
            break
        xk, yk = x[keep], cb[keep]
        xc = xk - xk.mean()  # least-squares slope in closed form (np.polyfit costs 4x as much)
        b = float(np.clip((xc * (yk - yk.mean())).sum() / max(float((xc * xc).sum()), 1e-12), -0.1 * h / w, 0.1 * h / w))
        a = float(np.median(yk - b * xk))
        line = a + b * x
    return np.clip(line, 0, h - 1).astype(np.float32)


def layout_depth(shape: tuple[int, int], sky: np.ndarray, col_bottom: np.ndarray,
                 subject: np.ndarray | None, line: np.ndarray | None = None) -> tuple[np.ndarray, float | None]:
    """Depth (0 near .. 1 far) of a ground plane below the horizon, sky at infinity, structures rising
    above the horizon (towers, buildings, trees on the skyline) as far as the sky; and the depth of the
    subject standing on the ground (that of its lowest row), or None. The subject is not painted in
    here: at this resolution its outline is a few pixels off, and a near subject pasted into a far sky
    leaves a clear, dark halo in haze; :meth:`Scene.depth` blends it in with the image-guided matte.

    The horizon is a straight line through the sky's lower edge where nothing stands in front of it
    (:func:`horizon_line`): a mast, a tree or a tower cut by the frame must not pull the ground plane up
    into the sky (it would come out near, and a haze would leave a dark, clear block around it).
    ``line``: that horizon, when the caller has it already."""
    h, w = shape
    hz = (horizon_line(col_bottom, h) if line is None else line)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None] + 0.5
    # ground plane: distance ~ 1 / (y - horizon), on a log scale from the bottom row (0) to the ground's
    # farthest row, the one just under the horizon (0.95, next to the sky's 1): the ground recedes into
    # the sky as a real one does, with no step at the horizon however few rows of ground the frame holds
    # (shaped by ^0.75: the foreground stays near when the horizon is low in the frame)
    span = np.maximum(h - hz, 1.0)
    rel = np.clip((y - hz) / span, 1e-3, 1.0)
    rel_min = np.clip(0.5 / span, 1e-3, 0.5)
    ground = np.clip(np.log(1.0 / rel) / np.log(1.0 / rel_min), 0.0, 1.0) ** 0.75 * 0.95
    # above the horizon, sky or not (masts, roofs, clouds the sky test missed): as far as the sky. The
    # 64 px sky mask is too coarse to separate them, and a nearer value would print its blocks into haze;
    # below it, one plane whatever the sky test said pixel by pixel: a smooth geometric model, no blotches
    d = np.where(y < hz, 1.0, ground).astype(np.float32)
    d_sub = None
    if subject is not None and subject.any():
        rows = np.nonzero(subject.any(1))[0]
        yb = int(rows.max())
        xs = np.nonzero(subject[yb])[0]
        d_sub = float(np.median(ground[yb, xs])) if xs.size else float(ground[yb].mean())
    return cv2.GaussianBlur(d, (0, 0), sigmaX=max(0.8, min(h, w) / 64.0)), d_sub


def skyline_structure(mask: np.ndarray, col_bottom: np.ndarray, height_ratio: float = 2.5,
                      narrow: float = 0.2, line: np.ndarray | None = None) -> bool:
    """Whether a subject found in an outdoor layout is a tall, narrow structure on the skyline (a
    rocket between its towers, a mast, a chimney) rather than something standing near the camera.

    The pop-up model puts a subject at the ground depth of its lowest row. On flat ground an object of
    height H whose foot is ``f`` rows under the horizon rises ``f * (H / camera height - 1)`` rows
    above it, so (foot - top) / (foot - horizon) = H / camera height: about 1 for a person at any
    distance, more only for something several camera heights tall. When that ratio exceeds
    ``height_ratio`` and the part above the horizon is narrow (median row width under ``narrow`` x the
    frame; a person framed so that the ratio gets that high, the horizon behind their shoulders, is a
    close-up whose head alone is wider), the subject is a structure like the lattice towers the layout
    already puts as far as the sky, and its lowest row is not where it stands: the rocket photo's subject is the rocket, its pad at the frame's bottom and the floodlit
    base of a tower; popped up to the bottom row's depth, the rocket stayed clear while the equally far
    towers faded, and the floodlit tower base came out as a dark, unhazed blob in a fogged distance."""
    h, w = mask.shape
    rows = np.nonzero(mask.any(1))[0]
    if not rows.size:
        return False
    top, foot = int(rows.min()), int(rows.max()) + 1
    hz = float(np.median(horizon_line(col_bottom, h) if line is None else line))
    if top >= hz - 2:  # nothing above the horizon: it stands on the ground in view
        return False
    ratio = (foot - top) / max(foot - hz, 0.5)
    above = mask[: max(top + 1, int(hz) - 2)]
    widths = above.sum(1)
    width = float(np.median(widths[widths > 0])) / w
    return ratio > height_ratio and width < narrow


def standing_object(lab: np.ndarray, sky: np.ndarray, col_bottom: np.ndarray, tol: float = 12.0,
                    line: np.ndarray | None = None) -> np.ndarray | None:
    """Something standing on the ground near the camera and rising above the horizon (a person seen from
    eye height, the frame cutting them), as a mask, or None.

    The salient-subject test needs the object inside the frame; a person cut by the frame edge fails it,
    and the layout then puts their head, above the horizon, as far as the sky (heavy haze fogs it like
    the sky, depth defocus blurs it). A structure above the horizon (:func:`horizon_line`) at least 10% of the frame
    wide (not a mast or a lattice tower), grown below the horizon through continuing colour, whose growth reaches well down
    the ground (40% of the ground rows) and stays a part of the frame (<= 70% of the width, <= half the
    area) stands on the ground there. Thin masts and skyline buildings (no growth down the ground), the
    ground itself (too wide) and towers cut by the top of the frame (a see-through lattice would print a
    near block into the sky) do not. Validated against ground-truth depth (a slab standing in the field)."""
    h, w = sky.shape
    line = horizon_line(col_bottom, h) if line is None else line
    hz = round(float(np.median(line)))
    if not 2 <= hz < h - 4:
        return None
    rows = np.arange(h)[:, None]
    # strictly above the horizon's band (along the skyline, buildings would join everything into one),
    # and below each column's sky (its lower edge as extended through a graded low sky: the sky mask
    # alone leaves that band out, and a tower would take it along)
    above = (rows < line[None, :] - 2) & (rows >= np.asarray(col_bottom)[None, :]) & ~sky
    n, cc, stats, _ = cv2.connectedComponentsWithStats(above.astype(np.uint8), connectivity=8)
    best, best_area = None, 0
    img8 = np.clip(lab * np.float32([2.55, 1.0, 1.0]) + np.float32([0, 128, 128]), 0, 255).astype(np.uint8)
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_WIDTH] < 0.1 * w or stats[i, cv2.CC_STAT_AREA] < 0.01 * h * w:
            continue
        if stats[i, cv2.CC_STAT_TOP] == 0:  # cut by the top of the frame: a tower or a wall, not a person
            continue
        comp = cc == i
        base = comp & (rows >= hz - 5)
        if not base.any():
            continue
        # grow down from the base through neighbours of continuing colour (floating-range flood fill:
        # a coat under a face and a camera, each part from its own colour), never back above the base
        fill = np.zeros((h + 2, w + 2), np.uint8)
        fill[1:-1, 1:-1][rows[:, 0] < hz - 5] = 1  # a filled mask pixel is a wall for floodFill
        # the skyline band is walled off beside the structure: it would lead along the horizon
        band = (rows[:, 0] >= hz - 5) & (rows[:, 0] <= hz + 3)
        fill[1:-1, 1:-1][np.ix_(band, ~comp.any(0))] = 1
        for yy, xx in zip(*np.nonzero(base)):
            if fill[yy + 1, xx + 1]:
                continue
            cv2.floodFill(img8, fill, (int(xx), int(yy)), 0, (tol,) * 3, (tol,) * 3,
                          4 | cv2.FLOODFILL_MASK_ONLY | (2 << 8))
        region = comp | (fill[1:-1, 1:-1] == 2)
        # a face and a white shirt between head and coat, gloves and a camera in front of the chest: what
        # stands is whole from its top to its foot in each column; then close small gaps, fill the holes
        ys = np.where(region, rows, h)
        top, foot = ys.min(0), np.where(region, rows, -1).max(0)
        region |= (rows >= top[None, :]) & (rows <= foot[None, :])
        region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
        inv = (~region).astype(np.uint8)
        _k, cc2 = cv2.connectedComponents(inv, connectivity=4)
        edge_ids = np.unique(np.concatenate([cc2[0], cc2[-1], cc2[:, 0], cc2[:, -1]]))
        region |= inv.astype(bool) & ~np.isin(cc2, edge_ids)
        lowest = int(np.nonzero(region.any(1))[0].max())
        if lowest < hz + 0.4 * (h - hz) or region.any(0).mean() > 0.7 or region.mean() > 0.5:
            continue
        if int(region.sum()) > best_area:
            best, best_area = region, int(region.sum())
    return best


def guided_filter(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide): ``p`` locally re-expressed as a linear function of the
    guide, so a coarse mask's edge snaps to the image's edges (guided feathering)."""
    k = (2 * r + 1, 2 * r + 1)
    box = lambda x: cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)
    mi, mp = box(guide), box(p)
    a = (box(guide * p) - mi * mp) / (box(guide * guide) - mi * mi + eps)
    b = mp - a * mi
    return box(a) * guide + box(b)


# --------------------------------------------------------------------------------------------------
# salient subject


def background_flood(labels: np.ndarray, mean: np.ndarray, seeds: np.ndarray, spread: float) -> np.ndarray:
    """Regions reached from the border regions through neighbours of gradually changing colour (each
    step under twice the background's own spread): a sky's gradient down to the horizon, a wall in shade.
    Such a region continues the background, however much it differs from the border itself."""
    k = mean.shape[0]
    reached = seeds.copy()
    edges = adjacency_pairs(labels)
    if not len(edges):
        return reached
    close = np.sqrt(((mean[edges[:, 0]] - mean[edges[:, 1]]) ** 2).sum(1)) < 2.0 * spread
    e = edges[close]
    for _ in range(k):
        a, b = reached[e[:, 0]], reached[e[:, 1]]
        new = np.zeros(k, bool)
        new[e[a & ~b, 1]] = True
        new[e[b & ~a, 0]] = True
        if not new.any():
            break
        reached |= new
    return reached


def subject_mask(labels: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray | None, float]:
    """The salient subject as a binary mask and a confidence in [0, 1], or (None, confidence).

    Background prior: regions touching the border are background. A region is a subject candidate when
    its colour is far from every background colour *relative to how much the background colours differ
    among themselves* (a textured background such as a brick wall or fur gives no candidates), and it
    touches the border little. The subject is the connected group of candidates with the largest
    contrast mass, holes filled; it must cover 10-65% of the frame (an eye, a button or a reflection is
    not the subject of the photo). The bottom edge is not background evidence: subjects stand on it."""
    h, w = labels.shape
    k = int(labels.max()) + 1
    mean = region_means(labels, lab, k)
    area = np.bincount(labels.ravel(), minlength=k).astype(np.float64)
    # top, left and right borders: a photo's subject often stands on (is cut by) the bottom edge
    border = np.zeros((h, w), bool)
    border[0], border[:, 0], border[:, -1] = True, True, True
    touch = np.bincount(labels[border], minlength=k).astype(np.float64)
    bg = np.nonzero(touch > 0)[0]
    if bg.size < 2:
        return None, 0.0
    dist = np.sqrt(((mean[:, None, :] - mean[None, bg, :]) ** 2).sum(-1))
    # spread of the background: distance of each border region to its nearest other border region
    dbg = dist[bg].copy()
    dbg[np.arange(bg.size), np.arange(bg.size)] = np.inf
    spread = max(float(np.median(dbg.min(1))), 4.0)
    contrast = np.sort(dist, axis=1)[:, : min(2, bg.size)].mean(1) / spread
    cand = (contrast >= 3.0) & (touch / np.maximum(np.sqrt(area), 1.0) < 0.5)
    if not cand.any():
        return None, 0.0
    mask = cand[labels].astype(np.uint8)
    n, cc = cv2.connectedComponents(mask, connectivity=8)
    mass = np.bincount(cc.ravel(), weights=contrast[labels].ravel(), minlength=n)
    mass[0] = 0
    m = cc == int(np.argmax(mass))
    # hysteresis: an object's parts differ from the background by different amounts (a face and hair
    # against a mottled grey backdrop less than an orange suit); the parts attached to the core that
    # stand out clearly, if less, belong to it (else motion blur moves a headless suit)
    weak = (contrast >= SUBJECT_WEAK) & (touch / np.maximum(np.sqrt(area), 1.0) < 0.5) \
        & ~background_flood(labels, mean, touch > 0, spread)
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(8):
        ring = cv2.dilate(m.astype(np.uint8), kernel).astype(bool) & ~m
        ids = np.unique(labels[ring])
        ids = ids[weak[ids]]
        if not ids.size:
            break
        m = m | np.isin(labels, ids)
    m = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
    inv = (~m).astype(np.uint8)
    _n2, cc2 = cv2.connectedComponents(inv, connectivity=4)
    edge_ids = np.unique(np.concatenate([cc2[0], cc2[-1], cc2[:, 0], cc2[:, -1]]))
    m = m | (inv.astype(bool) & ~np.isin(cc2, edge_ids))
    frac = float(m.mean())
    conf = float(np.clip((float(contrast[labels][m].mean()) - 1.5) / 3.0, 0.0, 1.0))
    # on average the subject must stand out as much as its core had to: a few strong bits plus a larger
    # weak surround (the cameraman's face and camera over a coat the frame cuts) is no object to move
    if conf < 0.5 or not 0.1 <= frac <= 0.65:
        return None, conf
    # an object cut by the frame continues into a border region of its own colour right next to it: the
    # mask would be part of the object (half a suit), so there is no usable subject
    if float(np.concatenate([m[0], m[:, 0], m[:, -1]]).mean()) > 0.05:
        return None, conf
    # an object's outline is an edge in the image; a patch of different colour inside fur or a wall
    # (the cat's muzzle) has a soft one
    L = lab[..., 0]
    grad = np.hypot(cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=3))
    outline = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & \
        ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if float(grad[outline].mean()) < 1.4 * float(grad.mean()):
        return None, conf
    ring = cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~m
    sub_mean = lab[m].mean(0)
    for r in np.unique(labels[ring]):
        if touch[r] > 0 and float(np.sqrt(((mean[r] - sub_mean) ** 2).sum())) < 1.5 * spread:
            return None, conf
    return m, conf


# --------------------------------------------------------------------------------------------------


class Scene:
    """What the scene model says about one image, computed lazily (only what a type asks for) from a
    small copy; maps are upsampled (and cached) on request. :attr:`info` is JSON, recorded per sample."""

    def __init__(self, image: np.ndarray, side: int = ANALYSIS_SIDE, superpixel_count: int = 64):
        self.shape = image.shape[:2]
        self.small = downscale(image, side)
        self._big = downscale(image, 2 * side)
        self.superpixel_count = superpixel_count
        self._cache: dict = {}
        self._depth_override: tuple[np.ndarray, str] | None = None

    # --- analysis-resolution pieces ---------------------------------------------------------------
    def _get(self, key, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    @property
    def lab(self) -> np.ndarray:
        def f():
            lab = cv2.cvtColor(self.small, cv2.COLOR_RGB2LAB).astype(np.float32)
            lab[..., 0] *= 100.0 / 255.0
            lab[..., 1:] -= 128.0
            return lab
        return self._get("lab", f)

    @property
    def labels(self) -> np.ndarray:
        return self._get("labels", lambda: superpixels(self.lab, self.superpixel_count))

    @property
    def _subject_small(self) -> tuple[np.ndarray | None, float]:
        return self._get("subject_small", lambda: subject_mask(self.labels, self.lab))

    @property
    def _layout(self) -> dict:
        def f():
            sh, sw = self.small.shape[:2]
            gray = cv2.cvtColor(self.small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            g2 = cv2.cvtColor(self._big, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            mag = np.abs(cv2.Sobel(g2, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(g2, cv2.CV_32F, 0, 1, ksize=3))
            texture = cv2.resize(cv2.blur(mag, (5, 5)), (sw, sh), interpolation=cv2.INTER_AREA)
            lap = np.abs(cv2.Laplacian(g2, cv2.CV_32F, ksize=3))
            rough = cv2.resize(cv2.blur(lap, (5, 5)), (sw, sh), interpolation=cv2.INTER_AREA)
            return layout(self.small, gray, texture, rough)
        return self._get("layout", f)

    # --- what the types use -----------------------------------------------------------------------
    @property
    def depth_form(self) -> str:
        if self._depth_override is not None:
            return "model"
        return "layout" if self._layout["usable"] else "neutral"

    @property
    def depth_source(self) -> str:
        if self._depth_override is not None:
            return self._depth_override[1]
        return f"scene:{self.depth_form}"

    @property
    def has_depth(self) -> bool:
        return self.depth_form != "neutral"

    @property
    def outdoor(self) -> bool:
        return bool(self._layout["usable"])

    @property
    def document(self) -> bool:
        return self._get("document", lambda: is_document(self.small))

    def set_depth(self, depth: np.ndarray, source: str) -> None:
        """Use a measured depth map (a network's, or the caller's): form ``model``."""
        d = np.clip(np.nan_to_num(np.asarray(depth, dtype=np.float32), nan=0.5), 0.0, 1.0)
        self._depth_override = (d, source)
        self._cache = {k: v for k, v in self._cache.items() if not (isinstance(k, tuple) and k[0] in ("depth", "ground"))}

    def set_subject(self, matte: np.ndarray) -> None:
        """Use a given subject matte (H x W in [0, 1], e.g. from a caller or a model)."""
        m = downscale(np.clip(np.asarray(matte, np.float32), 0.0, 1.0), ANALYSIS_SIDE) > 0.5
        self._cache = {k: v for k, v in self._cache.items()
                       if not (k in ("layout_depth", "subject_matte", "popup_small", "popup_matte") or (isinstance(k, tuple) and k[0] in ("subject", "depth", "ground")))}
        self._cache["subject_small"] = (m if m.any() else None, 1.0)

    def set_regions(self, labels: np.ndarray) -> None:
        """Pick the subject among given regions (e.g. SAM masks) instead of the superpixels."""
        lab = np.asarray(labels).astype(np.int32)
        sh, sw = self.small.shape[:2]
        small = cv2.resize(lab, (sw, sh), interpolation=cv2.INTER_NEAREST) if lab.shape != (sh, sw) else lab
        self._cache["labels"] = relabel(small)
        self._cache.pop("subject_small", None)
        self._cache = {k: v for k, v in self._cache.items()
                       if not (k in ("layout_depth", "subject_matte", "popup_small", "popup_matte") or (isinstance(k, tuple) and k[0] in ("subject", "depth", "ground", "segments")))}

    def _depth_small(self) -> np.ndarray | None:
        if self._depth_override is not None:
            return self._depth_override[0]
        lay = self._layout
        if not lay["usable"]:
            return None
        bg, d_sub = self._layout_parts
        if d_sub is None:
            return bg
        m = self._get(("subject", "matte_small"), lambda: cv2.resize(
            self._popup_matte, (bg.shape[1], bg.shape[0]), interpolation=cv2.INTER_AREA))
        return (bg * (1.0 - m) + d_sub * m).astype(np.float32)

    @property
    def _popup_small(self) -> np.ndarray | None:
        """What stands up from the ground plane of the layout: the salient subject, else a standing
        object the frame cuts (:func:`standing_object`); neither when it is a tall, narrow structure on
        the skyline (:func:`skyline_structure`), which stays as far as the sky like the towers."""
        def f():
            subj, _ = self._subject_small
            cb, line = self._layout["_col_bottom"], self._horizon
            if subj is not None and not skyline_structure(subj, cb, line=line):
                return subj
            obj = standing_object(self.lab, self._layout["_sky"], cb, line=line)
            return obj if obj is not None and not skyline_structure(obj, cb, line=line) else None
        return self._get("popup_small", f)

    @property
    def _horizon(self) -> np.ndarray:
        """The layout's horizon row per column (:func:`horizon_line`), computed once."""
        return self._get("horizon", lambda: horizon_line(self._layout["_col_bottom"], self.small.shape[0]))

    @property
    def _popup_matte(self) -> np.ndarray:
        if self._popup_small is self._subject_small[0]:
            return self._subject_matte
        return self._get("popup_matte", lambda: self._guided(self._popup_small))

    @property
    def _layout_parts(self) -> tuple[np.ndarray, float | None]:
        lay = self._layout
        return self._get("layout_depth", lambda: layout_depth(
            self.small.shape[:2], lay["_sky"], lay["_col_bottom"], self._popup_small, line=self._horizon))


    def depth(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Depth 0 near .. 1 far at ``shape`` (constant 0.5 in the neutral form)."""
        shape = tuple(shape or self.shape)

        def f():
            if self._depth_override is None and self._layout["usable"]:
                bg, d_sub = self._layout_parts
                d = upsample(bg, shape)
                if d_sub is not None:
                    # the confident core only: a subject edge a pixel too far hazes a thin rim of the subject,
                    # one a pixel too near leaves a clear, dark halo in the sky (far more visible)
                    m = np.clip(2.0 * upsample(self._popup_matte, shape) - 1.0, 0.0, 1.0)
                    d = d * (1.0 - m) + d_sub * m
                return np.clip(d, 0.0, 1.0).astype(np.float32)
            d = self._depth_small()
            if d is None:
                return np.full(shape, 0.5, np.float32)
            return np.clip(upsample(d, shape), 0.0, 1.0).astype(np.float32)
        return self._get(("depth", shape), f)

    @property
    def has_subject(self) -> bool:
        return self._subject_small[0] is not None

    @property
    def _subject_matte(self) -> np.ndarray:
        """The subject's matte at twice the analysis resolution, its edge moved onto the image's edges
        by a guided filter (the analysis mask is a superpixel outline, a few pixels off: a hair's
        width of background moving with the subject, or a halo of near depth in a far sky)."""
        return self._get("subject_matte", lambda: self._guided(self._subject_small[0]))

    def _guided(self, mask: np.ndarray) -> np.ndarray:
        """An analysis-resolution mask as a matte at twice that, its edge on the image's edges."""
        g = cv2.cvtColor(self._big, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        m = upsample(mask.astype(np.float32), g.shape)
        r = max(1, round(1.5 * min(g.shape) / ANALYSIS_SIDE))
        return np.clip(guided_filter(g, m, r, 1e-3), 0.0, 1.0).astype(np.float32)

    def subject(self, shape: tuple[int, int] | None = None, feather: float = 0.006) -> np.ndarray | None:
        """Soft matte of the salient subject at ``shape`` (image-guided edge, feathered by ``feather`` x
        short side so no seam shows)."""
        if self._subject_small[0] is None:
            return None
        shape = tuple(shape or self.shape)

        def f():
            m = upsample(self._subject_matte, shape)
            sig = feather * min(shape)
            if sig > 0.3:
                m = cv2.GaussianBlur(m, (0, 0), sigmaX=sig)
            return np.clip(m, 0.0, 1.0).astype(np.float32)
        return self._get(("subject", shape, feather), f)

    def ground(self, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """Near, horizontal surfaces (where rain splashes land), or None when the scene does not say."""
        shape = tuple(shape or self.shape)

        def f():
            if self._depth_override is not None:
                d = downscale(self._depth_override[0], ANALYSIS_SIDE)
                gy = cv2.Sobel(d, cv2.CV_32F, 0, 1, ksize=3)
                g = (gy < -0.01) & (d < 0.35)
                g[: d.shape[0] // 3] = False  # a floor or the ground is in the lower part of the frame
            elif self._layout["usable"]:
                d = self._depth_small()
                g = (~self._layout["_sky"]) & (d < 0.45)
                subj = self._subject_small[0]
                if subj is not None:
                    g &= ~subj
            else:
                return None
            return upsample(g.astype(np.float32), shape) > 0.5
        return self._get(("ground", shape), f)

    def segments(self, n: int, shape: tuple[int, int] | None = None) -> np.ndarray:
        """A label map with exactly ``n`` regions (fewer only if the image has fewer superpixels)."""
        shape = tuple(shape or self.shape)
        return self._get(("segments", n, shape), lambda: upsample(
            merge_to(self.labels, self.lab, n).astype(np.int32), shape, nearest=True).astype(np.int32))

    @property
    def info(self) -> dict:
        """JSON record of what was computed (only the parts that were asked for)."""
        out: dict[str, Any] = {"depth_form": self.depth_form, "depth_source": self.depth_source} \
            if "layout" in self._cache or self._depth_override is not None else {}
        if "layout" in self._cache:
            out["layout"] = {k: v for k, v in self._layout.items() if not k.startswith("_")}
        if "subject_small" in self._cache:
            m, conf = self._subject_small
            out["subject"] = {"found": m is not None, "confidence": round(conf, 3),
                              "area": round(float(m.mean()), 4) if m is not None else 0.0}
        if "document" in self._cache:
            out["document"] = self._cache["document"]
        return out


def analyse(image: np.ndarray, side: int = ANALYSIS_SIDE, superpixel_count: int = 64) -> Scene:
    """The weight-free scene model of an RGB uint8 image (lazy; see the module docstring)."""
    return Scene(image, side, superpixel_count)


def is_document(small: np.ndarray) -> bool:
    """Text on paper or a screen: mostly bright, unsaturated background with dark thin strokes."""
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    v, s = hsv[..., 2].astype(np.float32) / 255.0, hsv[..., 1].astype(np.float32) / 255.0
    paper = (v > 0.75) & (s < 0.15)
    ink = v < 0.4
    return bool(paper.mean() > 0.55 and 0.02 < ink.mean() < 0.35)


def scene_of(image: np.ndarray, aux: dict | None) -> Scene:
    """The scene a type should use: ``aux["scene"]`` when the composition made one (it holds the
    configured providers' results), else the weight-free model of ``image`` (kept in ``aux``); a depth
    map passed as ``aux["depth"]`` is used as measured depth."""
    if aux is not None and aux.get("scene") is not None and aux["scene"].shape == image.shape[:2]:
        return aux["scene"]
    sc = analyse(image)
    d = (aux or {}).get("depth")
    if d is not None:
        sc.set_depth(np.asarray(d, dtype=np.float32), str((aux or {}).get("depth_source", "aux")))
    if (aux or {}).get("subject") is not None:
        sc.set_subject(aux["subject"])
    if aux is not None:
        aux["scene"] = sc
    return sc
