"""The training data loader: mixed, balanced, augmented pair batches that can resume exactly.

Each DataLoader worker of each process owns one *stream*. Batches are made inside the worker, so the
DataLoader (``batch_size=None``) hands them out round-robin: with ``W`` workers, the batch for global
step ``g`` comes from virtual stream ``g % W``. A loader started at step ``S`` maps worker ``w`` to
virtual stream ``(S + w) % W``, so the same stream keeps serving the same steps after a resume.

Every random choice is made from a generator seeded by (seed, stream, batch[, sample]) and all
selection (shards, shuffle buffer, balancing) happens on undecoded bytes. A stream's position is just
the number of samples it has taken from each dataset; each batch carries it, the trainer stores the
latest one per stream in its checkpoint, and a resumed stream skips that many samples (reading, not
decoding them) before it continues. The result: after a resume the batches are the ones the
uninterrupted run would have seen.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pairforge.train.config import DataConfig, SplitConfig, TrainConfig, ValConfig
from pairforge.train.mixing import MixSchedule
from pairforge.train.pairs import (
    BadSample,
    augment_pair,
    centre_crop_pair,
    check_scale,
    decode_pair,
    degradation_type,
    paired_random_crop,
    sample_meta,
    upsample_to,
)
from pairforge.train.shardlist import resolve_shards
from pairforge.train.split import Splitter, source_group
from pairforge.train.streams import (
    Cursor,
    ErrorCounter,
    balanced,
    raw_samples,
    stream_shards,
)

log = logging.getLogger("pairforge.train")

_TAG_MIX, _TAG_AUG, _TAG_BAL, _TAG_STREAM = 1, 2, 3, 4


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(e) for e in entropy])))


def _seed31(*entropy: int) -> int:
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1)[0] & 0x7FFFFFFF)


def batches_before(step: int, stream: int, workers: int) -> int:
    """How many steps in [0, step) belong to virtual stream ``stream`` of ``workers``."""
    return 0 if step <= stream else (step - stream + workers - 1) // workers


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 HWC arrays -> float32 NCHW in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass
class StreamPositions:
    """Where every stream of a run is: the streams' seed and the samples taken per dataset, by stream id."""

    datasets: list[str]
    n_streams: int
    seed: int
    streams: dict[int, list[int]]

    def to_dict(self) -> dict:
        return {"datasets": list(self.datasets), "n_streams": self.n_streams, "seed": self.seed,
                "streams": {str(k): list(v) for k, v in self.streams.items()}}

    @classmethod
    def from_dict(cls, d: dict | None) -> StreamPositions | None:
        if not d:
            return None
        return cls(list(d["datasets"]), int(d["n_streams"]), int(d["seed"]),
                   {int(k): list(v) for k, v in d["streams"].items()})


class PairStream(IterableDataset):
    """An infinite iterable of training batches for one process (rank) of a run."""

    def __init__(self, data: DataConfig, scale: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, positions: StreamPositions | None = None,
                 shard_lists: list[list[str]] | None = None, split: SplitConfig | None = None):
        super().__init__()
        self.data = data
        self.split = split
        self.scale = scale
        self.rank = rank
        self.world_size = world_size
        self.start_step = start_step
        self.names = [d.name for d in data.datasets]
        self.shard_lists = shard_lists or [resolve_shards(d.url, d.shards) for d in data.datasets]
        self.schedule = MixSchedule.from_config(data)
        self.workers = max(1, data.num_workers)
        self.n_streams = world_size * self.workers
        self.stream_seed, self.resumed = self._resume_plan(seed, positions)

    def _resume_plan(self, seed: int, pos: StreamPositions | None) -> tuple[int, dict[int, list[int]]]:
        """(streams' seed, samples already taken per stream) to start from; exact when possible."""
        if self.start_step == 0:
            return seed, {}
        why = None
        if self.data.resume == "reseed":
            why = "data.resume is 'reseed'"
        elif pos is None:
            why = "the checkpoint has no data position"
        elif pos.datasets != self.names or pos.n_streams != self.n_streams:
            why = (f"the stream layout changed (datasets {pos.datasets} -> {self.names}, streams "
                   f"{pos.n_streams} -> {self.n_streams}; keep the world size and data.num_workers to resume "
                   "exactly)")
        elif max((sum(v) for v in pos.streams.values()), default=0) > self.data.exact_resume_max_samples:
            why = "replaying the streams would exceed data.exact_resume_max_samples"
        if why is None:
            return pos.seed, {k: list(v) for k, v in pos.streams.items()}
        if self.rank == 0:
            log.warning("data: resuming with fresh streams seeded from step %d: %s", self.start_step, why)
        return _seed31(seed, self.start_step, 0xC0FFEE), {}

    def positions(self, consumed: dict[int, list[int]]) -> StreamPositions:
        """The positions to checkpoint: where each stream started, updated by the batches consumed."""
        streams = {k: list(v) for k, v in self.resumed.items()}
        streams.update({int(k): list(v) for k, v in consumed.items()})
        return StreamPositions(list(self.names), self.n_streams, self.stream_seed, streams)

    # -- stream identity ---------------------------------------------------------------------------
    def _layout(self) -> tuple[int, int, int]:
        info = get_worker_info()
        nw = info.num_workers if info is not None else 1
        w = info.id if info is not None else 0
        if nw != self.workers:
            raise RuntimeError(f"PairStream was planned for {self.workers} workers but runs in {nw}")
        v = (self.start_step + w) % nw
        return v, nw, self.rank * nw + v

    def _cursor(self, i: int, seed: int, sid: int, n_streams: int, errors: ErrorCounter) -> Cursor:
        spec = self.data.datasets[i]
        urls = stream_shards(self.shard_lists[i], sid, n_streams)
        it = raw_samples(urls, seed=_seed31(seed, i, _TAG_STREAM), stream_id=sid, errors=errors,
                         shuffle_buffer=self.data.shuffle_buffer, shuffle_initial=self.data.shuffle_initial,
                         holdout_every=spec.holdout_every,
                         select=Splitter(self.split).raw_predicate(keep_held_out=False) if self.split else None)
        if spec.balance is not None:
            it = balanced(it, spec.balance, _rng(seed, sid, i, _TAG_BAL), errors)
        return Cursor(it)

    # -- one sample --------------------------------------------------------------------------------
    def make_pair(self, raw: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
        d = self.data
        hq, lq, _ = decode_pair(raw, rng, d.lq_variant)
        key = raw.get("__key__", "?")
        if d.lq_upsample:
            lq = upsample_to(lq, hq)
        check_scale(hq, lq, self.scale, key)
        hq, lq = paired_random_crop(hq, lq, d.patch_size, self.scale, rng)
        hq, lq = augment_pair(hq, lq, rng, d.hflip, d.rotate)
        try:
            dtype = degradation_type(sample_meta(raw))
        except BadSample:
            dtype = "unknown"
        return hq, lq, dtype

    def __iter__(self) -> Iterator[dict]:
        v, nw, sid = self._layout()
        seed = self.stream_seed
        errors = ErrorCounter(f"data stream {sid}")
        cursors = [self._cursor(i, seed, sid, self.n_streams, errors) for i in range(len(self.names))]
        for cur, n in zip(cursors, self.resumed.get(sid, [0] * len(cursors))):
            cur.skip(n)
        attempts = 0
        b = batches_before(self.start_step, v, nw)
        bs = self.data.batch_size
        while True:
            step = b * nw + v
            choice = self.schedule.choose(step, _rng(seed, sid, b, _TAG_MIX), bs)
            hqs, lqs, types = [], [], []
            for j, di in enumerate(choice):
                rng = _rng(seed, sid, b, j, _TAG_AUG)
                while True:
                    try:
                        raw = cursors[di].next()
                    except StopIteration:
                        raise RuntimeError(f"dataset {self.names[di]!r} yielded no samples (all shards empty "
                                           f"or unreadable; bad samples so far: {errors.snapshot()})") from None
                    attempts += 1
                    try:
                        hq, lq, t = self.make_pair(raw, rng)
                        break
                    except BadSample as e:
                        errors.record(e.rule, e.reason)
                    self._check_bad(errors, attempts)
                hqs.append(hq)
                lqs.append(lq)
                types.append(t)
            yield {
                "hq": to_tensor(hqs),
                "lq": to_tensor(lqs),
                "dataset": torch.as_tensor(choice, dtype=torch.long),
                "types": types,
                "_step": step,
                "_stream": sid,
                "_taken": [c.taken for c in cursors],
                "_errors": errors.snapshot(),
            }
            b += 1

    def _check_bad(self, errors: ErrorCounter, attempts: int) -> None:
        if attempts >= 50 and errors.total > self.data.max_bad_fraction * attempts:
            top = ", ".join(f"{k}={n}" for k, n in errors.counts.most_common(3))
            raise RuntimeError(f"data: {errors.total} of {attempts} samples unusable (> data.max_bad_fraction "
                               f"{self.data.max_bad_fraction}); most common: {top}")


def make_train_loader(config: TrainConfig, rank: int = 0, world_size: int = 1, start_step: int = 0,
                      positions: StreamPositions | None = None, pin_memory: bool = False) -> DataLoader:
    d = config.data
    ds = PairStream(d, config.data_scale, seed=config.train.seed, rank=rank, world_size=world_size,
                    start_step=start_step, positions=positions, split=config.split)
    kw = {}
    if d.num_workers > 0:
        kw["prefetch_factor"] = d.prefetch_factor
    return DataLoader(ds, batch_size=None, num_workers=d.num_workers, pin_memory=pin_memory, **kw)


@dataclass
class ValPair:
    key: str
    hq: np.ndarray
    lq: np.ndarray
    group: str = ""


def load_val_pairs(val: ValConfig, scale: int, lq_upsample: bool = False,
                   split: SplitConfig | None = None) -> list[ValPair]:
    """The first ``val.max_samples`` held-out pairs, read once in shard order and centre-cropped
    (with a ``split``: only samples of held-out sources)."""
    errors = ErrorCounter("validation data")
    urls = resolve_shards(val.url, val.shards)
    it = raw_samples(urls, seed=0, stream_id=0, errors=errors, resampled=False,
                     holdout_every=val.holdout_every, keep_holdout=True,
                     select=Splitter(split).raw_predicate(keep_held_out=True) if split else None)
    out: list[ValPair] = []
    for raw in it:
        try:
            hq, lq, _ = decode_pair(raw, None, "first")
            if lq_upsample:
                lq = upsample_to(lq, hq)
            check_scale(hq, lq, scale, raw.get("__key__", "?"))
        except BadSample as e:
            errors.record(e.rule, e.reason)
            continue
        hq, lq = centre_crop_pair(hq, lq, val.crop, scale)
        try:
            group = source_group(sample_meta(raw), raw["__key__"])
        except BadSample:
            group = f"key:{raw['__key__']}"
        out.append(ValPair(raw["__key__"], hq, lq, group))
        if len(out) >= val.max_samples:
            break
    if not out:
        held = f" of held-out sources ({split.model_dump(exclude_defaults=True) or 'split defaults'})" if split else ""
        raise ValueError(f"no usable validation pairs{held} at {val.url!r} (bad samples: {errors.snapshot()})")
    return out
