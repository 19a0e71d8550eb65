"""Contact sheets for a person to look at: each sample's HQ next to its LQ(s), aspect ratios kept, each LQ
captioned with what was done to it (degradation type and severity, or the chain preset) and how strongly.

Two selections: pairs spread evenly over the whole dataset, or (``by="type"``) one row per degradation
type, its pairs drawn at random (fixed seed) from every LQ of that type in the dataset. Both read the
dataset through :class:`pairforge.io.dataset.DatasetReader`, so either layout, local or s3://.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pairforge.io.dataset import HQ, META, DatasetReader, lq_members, sample_meta
from pairforge.io.images import decode_png
from pairforge.io.provenance import degradations, source_label

BACKGROUND = (24, 24, 24)
BOX = (44, 44, 44)
TEXT = (230, 230, 230)
DIM = (160, 160, 160)
GAP = 4  # between the tiles of one sample
ITEM_GAP = 16  # between samples
FONT_SIZE = 12
LINE_H = FONT_SIZE + 3


@dataclass
class Tile:
    """One image of a sample with its caption lines."""

    image: np.ndarray
    lines: list[str]


@dataclass
class Item:
    """One sample as drawn: the HQ tile, then its LQ tiles."""

    key: str
    tiles: list[Tile]


def _font(size: int = FONT_SIZE):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def fit(img: np.ndarray, box: int) -> Image.Image:
    """``img`` scaled to fit a ``box`` x ``box`` square with its aspect ratio kept: upscaled with nearest
    neighbour (so an LQ's pixels stay visible), downscaled with Lanczos."""
    im = Image.fromarray(img)
    h, w = img.shape[:2]
    s = box / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return im
    return im.resize(size, Image.NEAREST if s > 1 else Image.LANCZOS)


CAPTION_LINES = 3


def _clip_text(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, lines: list[str], width: int, font, max_lines: int = CAPTION_LINES) -> list[str]:
    """Caption lines wrapped at spaces to ``width``; the first line may take the room the others leave."""
    out: list[str] = []
    for i, text in enumerate(lines):
        room = max_lines - len(out) - (len(lines) - i - 1)
        words, cur = [], ""
        for w in text.split(" "):  # keep a unit with its number ("21.2 dB")
            if w == "dB" and words:
                words[-1] += " dB"
            else:
                words.append(w)
        for w in words:
            trial = f"{cur} {w}" if cur else w
            if cur and draw.textlength(trial, font=font) > width and room > 1:
                out.append(cur)
                room -= 1
                cur = w
            else:
                cur = trial
        out.append(_clip_text(draw, cur, width, font))
    return out[:max_lines]


def item_from_sample(sample: dict, variants: list[int] | None = None) -> Item:
    """Decode one sample into an :class:`Item` (only the LQ ``variants`` given, else all)."""
    key = sample["__key__"]
    meta = sample_meta(sample) if META in sample else {}
    degs = degradations(meta)
    names = lq_members(sample)
    hq = decode_png(sample[HQ])
    tiles = [Tile(hq, [key, source_label(meta), f"HQ {hq.shape[1]}x{hq.shape[0]}"])]
    for k, name in enumerate(names):
        if variants is not None and k not in variants:
            continue
        lq = decode_png(sample[name])
        d = degs[k] if k < len(degs) else None
        label = d.label if d is not None else "degradation not recorded"
        if d is not None and d.psnr is not None:
            label += f", {d.psnr:.1f} dB"
        size = f"LQ {lq.shape[1]}x{lq.shape[0]}" + (f"  variant {k}" if len(names) > 1 else "")
        tiles.append(Tile(lq, [label, size]))
    return Item(key, tiles)


def _item_width(item: Item, cell: int) -> int:
    return len(item.tiles) * (cell + GAP) - GAP


def render(rows: list[tuple[str | None, list[Item]]], cell: int = 192) -> Image.Image:
    """Rows of items (each row optionally headed by a title) on one sheet."""
    if not any(items for _t, items in rows):
        raise ValueError("no pairs to show")
    font = _font()
    head_font = _font(FONT_SIZE + 3)
    tile_h = cell + CAPTION_LINES * LINE_H + 6
    widths = [sum(_item_width(it, cell) for it in items) + ITEM_GAP * max(0, len(items) - 1) for _t, items in rows]
    width = max(widths) + 2 * 8
    height = 8 + sum((LINE_H + 8 if title else 0) + tile_h + 8 for title, _items in rows)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = 8
    for title, items in rows:
        if title:
            draw.text((8, y), title, fill=TEXT, font=head_font)
            y += LINE_H + 8
        x = 8
        for it in items:
            for tile in it.tiles:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=BOX)
                im = fit(tile.image, cell)
                sheet.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
                lines = _wrap(draw, tile.lines, cell - 2, font)
                for j, line in enumerate(lines):
                    draw.text((x + 1, y + cell + 3 + j * LINE_H), line, fill=DIM if j == len(lines) - 1 else TEXT, font=font)
                x += cell + GAP
            x += ITEM_GAP - GAP
        y += tile_h + 8
    return sheet


def contact_sheet(items: list[Item], cell: int = 192, columns: int = 2) -> Image.Image:
    """Items in rows of ``columns``."""
    return render([(None, items[i: i + columns]) for i in range(0, len(items), columns)], cell)


def spread_keys(reader: DatasetReader, n: int) -> list[str]:
    """``n`` accepted keys evenly spaced over the whole dataset (from the commit records, no data read)."""
    keys = [k for rec in reader.records() for k in rec["accepted"]]
    if len(keys) <= n:
        return keys
    return [keys[i * len(keys) // n] for i in range(n)]


def load_samples(reader: DatasetReader, keys: list[str]) -> dict[str, dict]:
    """The samples (all members) of ``keys``, reading only the shards that hold them."""
    wanted = set(keys)
    out: dict[str, dict] = {}
    for rec in reader.records():
        mine = wanted.intersection(rec["accepted"])
        if mine:
            for s in reader.iter_shard(rec, keys=mine):
                out[s["__key__"]] = s
    return out


def load_pairs(reader: DatasetReader, n: int) -> list[Item]:
    """Up to ``n`` samples spread evenly over the committed shards (so a sheet shows the whole run)."""
    keys = spread_keys(reader, n)
    samples = load_samples(reader, keys)
    return [item_from_sample(samples[k]) for k in keys if k in samples]


def pick_by_type(reader: DatasetReader, per_type: int, seed: int = 0) -> tuple[dict[str, list[tuple[str, int]]], dict[str, int]]:
    """For each degradation type, up to ``per_type`` (key, variant) drawn uniformly from the LQs of that
    type (reservoir sampling over the metadata, streamed once; no image is read). LQs with that type
    alone come first, so a row shows the type itself; stacked LQs fill what is left. Also the counts."""
    rng = np.random.default_rng(seed)
    chosen: dict[tuple[str, bool], list[tuple[str, int]]] = {}
    drawn: dict[tuple[str, bool], int] = {}
    seen: dict[str, int] = {}
    for s in reader.iter_samples({META}):
        for k, d in enumerate(degradations(sample_meta(s))):
            types = list(dict.fromkeys(d.types or [d.model]))
            for t in types:
                seen[t] = seen.get(t, 0) + 1
                slot = (t, len(types) > 1)
                drawn[slot] = drawn.get(slot, 0) + 1
                res = chosen.setdefault(slot, [])
                if len(res) < per_type:
                    res.append((s["__key__"], k))
                else:
                    j = int(rng.integers(drawn[slot]))
                    if j < per_type:
                        res[j] = (s["__key__"], k)
    rows = {}
    for t in sorted(seen):
        alone = sorted(chosen.get((t, False), []))
        rows[t] = alone + sorted(chosen.get((t, True), []))[: per_type - len(alone)]
    return rows, seen


def load_by_type(reader: DatasetReader, per_type: int, seed: int = 0) -> list[tuple[str, list[Item]]]:
    """One titled row per degradation type, each with up to ``per_type`` samples showing that type's LQ."""
    chosen, seen = pick_by_type(reader, per_type, seed)
    samples = load_samples(reader, [k for picks in chosen.values() for k, _v in picks])
    rows = []
    for t, picks in chosen.items():
        items = [item_from_sample(samples[k], [v]) for k, v in picks if k in samples]
        rows.append((f"{t}  ({seen[t]} LQs in the dataset)", items))
    return rows


def preview_sheet(reader: DatasetReader, n: int = 16, cell: int = 192, columns: int | None = None,
                  by: str | None = None) -> Image.Image | None:
    """The sheet ``pairforge preview`` writes, or None when the dataset holds no committed pair."""
    if by is None:
        items = load_pairs(reader, n)
        return contact_sheet(items, cell, columns or 2) if items else None
    if by != "type":
        raise ValueError(f"--by must be 'type', got {by!r}")
    rows = load_by_type(reader, columns or 4)
    return render(rows, cell) if rows else None
