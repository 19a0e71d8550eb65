"""Near-duplicate rejection with perceptual hashes, and the run-level hash index.

Which copy survives never depends on scheduling: within a group the samples are visited in index order
and a sample is a duplicate only of an earlier *kept* sample (or of a reference entry), so the lowest
index is kept. What is compared with what:

- **in the pipeline** (:func:`dedupe`): each batch the stage sees (a whole shard at the default batch
  size, because the pipeline cuts batches inside shards) and the reference index loaded before the run
  from earlier runs. Two copies in different shards of the same run are NOT caught here: workers run in
  parallel and share no state, by design.
- **after the run** (:func:`build_run_index`): reads every committed sample of the run, applies the same
  rule over the whole run, and writes ``dedup/index.json`` (hashes of the kept samples: what later runs
  reference) and ``dedup/duplicates.json`` (every cross-shard duplicate with the key it duplicates), so a
  reader can drop them. Exact for the whole run, and identical however the run was scheduled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from pairforge.filters.imagesets import is_run_dir, iter_run_samples, read_object
from pairforge.filters.phash import HashIndex, from_hex, image_hashes, to_hex
from pairforge.io.storage import open_storage

RUN_INDEX = "dedup/index.json"
RUN_DUPLICATES = "dedup/duplicates.json"


@dataclass
class DupMatch:
    """A sample found to duplicate ``kept`` (a key of this run, or ``<run>#<key>`` of a reference)."""

    kept: str
    distance: int
    scope: str  # "batch" | "reference" | "run"


def dedupe(
    indices: list[int],
    keys: list[str],
    hashes: list[tuple[int, int | None]],
    max_distance: int,
    reference: HashIndex | None = None,
    within: bool = True,
) -> list[DupMatch | None]:
    """Decide duplicates for one group of samples; returns one entry per input (None = kept).

    ``hashes[i]`` is (hash, mirror hash or None). Visiting order is by index, so the lowest index of a
    group of near-duplicates is the one kept."""
    out: list[DupMatch | None] = [None] * len(indices)
    kept = HashIndex(reference.kind if reference is not None else "phash")
    for pos in sorted(range(len(indices)), key=lambda p: indices[p]):
        h, hf = hashes[pos]
        if reference is not None:
            m = reference.nearest((h, hf), max_distance)
            if m is not None:
                out[pos] = DupMatch(m[0], m[1], "reference")
                continue
        if within:
            m = kept.nearest((h, hf), max_distance)
            if m is not None:
                out[pos] = DupMatch(m[0], m[1], "batch")
                continue
            kept.add(keys[pos], h)
    return out


def load_reference(sources: list[str], kind: str) -> tuple[HashIndex, list[dict]]:
    """One index from earlier runs (their ``dedup/index.json``, built on the fly when absent) or index files.

    Keys are qualified as ``<source>#<key>`` so a rejection names the run of the copy that was kept."""
    merged = HashIndex(kind)
    info = []
    for src in sources:
        if is_run_dir(src):
            st = open_storage(src)
            if st.exists(RUN_INDEX):
                idx = HashIndex.from_json(st.read_bytes(RUN_INDEX), f"{src}/{RUN_INDEX}")
                how = "dedup/index.json"
            else:
                idx = scan_run(src, kind, max_distance=-1)[0]
                how = "scanned committed shards"
        else:
            idx = HashIndex.from_json(read_object(src), src)
            how = "index file"
        if idx.kind != kind:
            raise ValueError(f"reference {src} holds {idx.kind} hashes, this filter uses {kind}")
        for k, h in zip(idx.keys, idx._list):
            merged.add(k if "#" in k else f"{src}#{k}", h)
        info.append({"source": src, "entries": len(idx), "from": how})
    return merged, info


def _sample_hash(meta: dict, hq_png: bytes | None, kind: str, flip: bool) -> tuple[int, int | None]:
    """The hashes recorded by a dedup filter in the sample's metadata, else computed from the HQ image."""
    for rec in (meta.get("filters") or {}).values():
        if isinstance(rec, dict) and rec.get("hash") == kind and "value" in rec:
            hf = rec.get("mirror")
            if flip and hf is None:
                break
            return from_hex(rec["value"]), (from_hex(hf) if (flip and hf) else None)
    if hq_png is None:
        raise ValueError(f"sample {meta.get('key')} has no recorded {kind} and no HQ image")
    from pairforge.io.images import decode_png

    return image_hashes(decode_png(hq_png), kind, flip)


def scan_run(url: str, kind: str = "phash", max_distance: int = 6, flip: bool = True) -> tuple[HashIndex, list[dict]]:
    """Hash every committed sample of a run and de-duplicate over the whole run (lowest index kept).

    ``max_distance < 0`` skips de-duplication (index of everything). Returns (kept index, duplicates)."""
    samples = []
    for smp in iter_run_samples(url, want_images=True):
        samples.append((smp.index, smp.key, _sample_hash(smp.meta, smp.hq_png, kind, flip)))
    samples.sort(key=lambda t: t[0])
    if max_distance < 0:
        idx = HashIndex(kind)
        for _i, key, (h, _hf) in samples:
            idx.add(key, h)
        return idx, []
    matches = dedupe([s[0] for s in samples], [s[1] for s in samples], [s[2] for s in samples], max_distance)
    kept = HashIndex(kind)
    dups = []
    for (index, key, (h, _hf)), m in zip(samples, matches):
        if m is None:
            kept.add(key, h)
        else:
            dups.append({"key": key, "index": index, "duplicate_of": m.kept, "distance": m.distance})
    return kept, dups


def build_run_index(url: str, kind: str = "phash", max_distance: int = 6, flip: bool = True, write: bool = True) -> dict:
    """The post-pass: exact whole-run de-duplication of a finished run (see the module docstring).

    Writes ``dedup/index.json`` and ``dedup/duplicates.json`` into the run directory (atomically) when
    ``write``; returns a summary."""
    kept, dups = scan_run(url, kind, max_distance, flip)
    report = {
        "hash": kind,
        "max_distance": max_distance,
        "flip_invariant": flip,
        "samples": len(kept) + len(dups),
        "kept": len(kept),
        "duplicates": dups,
    }
    if write:
        st = open_storage(url)
        st.write_bytes(RUN_INDEX, kept.to_json())
        st.write_bytes(RUN_DUPLICATES, json.dumps(report, indent=1).encode())
    return report


def hashes_record(h: int, hf: int | None, kind: str) -> dict:
    """What the dedup filter writes into the sample metadata (the post-pass reads it back)."""
    rec = {"hash": kind, "value": to_hex(h)}
    if hf is not None:
        rec["mirror"] = to_hex(hf)
    return rec
