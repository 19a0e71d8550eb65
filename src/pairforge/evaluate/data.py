"""Where ``pairforge evaluate`` reads its inputs, one :class:`EvalItem` at a time.

A DATA argument is one of:

- a pairforge dataset (run directory, local or ``s3://``, either layout): read through
  :class:`pairforge.io.dataset.DatasetReader`, one item per LQ variant, with the sample's metadata;
- a folder with ``hq/`` and ``lq/`` sub-folders and no commit records: pairs matched by file stem;
- an image file or a folder of images: LQ-only inputs (real photos without ground truth), scored with
  no-reference metrics before and after restoration.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pairforge.io.images import decode_image
from pairforge.train.restore import IMAGE_SUFFIXES


@dataclass
class EvalItem:
    dataset: str  # the DATA argument it came from
    key: str  # sample key (``KEY`` or ``KEY#k`` for LQ variant k) or file stem
    lq: np.ndarray
    hq: np.ndarray | None  # None: LQ-only
    meta: dict = field(default_factory=dict)
    variant: int = 0


def _decode(data: bytes, name: str) -> np.ndarray:
    img, _ = decode_image(data, name)
    return img


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def describe_location(location: str) -> str:
    """``dataset``, ``hq/lq folders`` or ``lq only`` (raises FileNotFoundError for a missing path)."""
    if location.startswith("s3://"):
        return "dataset"
    p = Path(location)
    if not p.exists():
        raise FileNotFoundError(f"DATA {location}: no such file or directory")
    if p.is_dir():
        from pairforge.io.dataset import is_dataset
        from pairforge.io.storage import open_storage

        if is_dataset(open_storage(str(p))):
            return "dataset"
        if (p / "hq").is_dir() and (p / "lq").is_dir():
            return "hq/lq folders"
    return "lq only"


def iter_items(location: str, lq_only: bool = False) -> Iterator[EvalItem]:
    """The items of one DATA argument (``lq_only`` ignores the HQ even where there is one)."""
    kind = describe_location(location)
    if kind == "dataset":
        yield from _dataset_items(location, lq_only)
    elif kind == "hq/lq folders":
        yield from _folder_pair_items(Path(location), lq_only)
    else:
        yield from _lq_only_items(Path(location))


def _dataset_items(location: str, lq_only: bool) -> Iterator[EvalItem]:
    from pairforge.io.dataset import HQ, DatasetReader, lq_members, sample_meta
    from pairforge.io.storage import open_storage

    reader = DatasetReader(open_storage(location))
    if not reader.records():
        raise ValueError(f"DATA {location}: a pairforge dataset without committed shards")
    for sample in reader.iter_samples():
        key = sample["__key__"]
        names = lq_members(sample)
        if not names:
            continue
        try:
            meta = sample_meta(sample)
        except ValueError:
            meta = {}
        hq = None if lq_only or HQ not in sample else _decode(sample[HQ], f"{key}.{HQ}")
        for k, name in enumerate(names):
            label = key if len(names) == 1 else f"{key}#{k}"
            yield EvalItem(location, label, _decode(sample[name], f"{key}.{name}"), hq, meta, k)


def _folder_pair_items(root: Path, lq_only: bool) -> Iterator[EvalItem]:
    hqs, lqs = _images(root / "hq"), _images(root / "lq")
    if not lqs:
        raise ValueError(f"DATA {root}: lq/ holds no images")
    unmatched = sorted(set(lqs) - set(hqs))
    if unmatched and not lq_only:
        raise ValueError(f"DATA {root}: {len(unmatched)} LQ image(s) without an HQ of the same name in hq/ "
                         f"(first: {unmatched[0]}); pass --lq-only to score them without reference")
    for stem, path in lqs.items():
        lq = _decode(path.read_bytes(), str(path))
        hq = None if lq_only else _decode(hqs[stem].read_bytes(), str(hqs[stem]))
        yield EvalItem(str(root), stem, lq, hq, {"source": {"kind": "files", "path": str(path)}})


def _lq_only_items(path: Path) -> Iterator[EvalItem]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()
                                                 and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"DATA {path}: no images (looked for {sorted(IMAGE_SUFFIXES)})")
    for f in files:
        key = f.stem if path.is_file() else str(f.relative_to(path).with_suffix(""))
        yield EvalItem(str(path), key, _decode(f.read_bytes(), str(f)), None, {"source": {"kind": "files", "path": str(f)}})
