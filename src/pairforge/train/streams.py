"""Raw sample streams of one dataset, built from webdataset's own pipeline pieces.

A stream is identified by ``stream_id`` (one per DataLoader worker per process). It draws shards with
replacement (``ResampledShards``, deterministic from the seed and the stream id) from its share of the
shard list, expands the tars with an error handler that counts and logs bad members, and shuffles
through a buffer. Everything here works on undecoded bytes, so the trainer can replay a stream to a
saved position cheaply (see :mod:`pairforge.train.data`). Optional per-degradation-type balancing reads
only the small JSON member.
"""
from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator

import numpy as np
import webdataset as wds

from pairforge.train import s3open  # noqa: F401  (registers the s3:// gopen handler)
from pairforge.train.config import BalanceConfig
from pairforge.train.pairs import BadSample, degradation_type, sample_index, sample_meta

log = logging.getLogger("pairforge.train")


class ErrorCounter:
    """Counts unusable samples by rule and logs the first ones (then every power of two)."""

    def __init__(self, where: str = "data"):
        self.where = where
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def record(self, rule: str, reason: str) -> None:
        self.counts[rule] += 1
        n = self.total
        if n <= 5 or (n & (n - 1)) == 0:
            log.warning("%s: skipped a bad sample (%d so far): %s: %s", self.where, n, rule, reason[:300])

    def handler(self, exn: BaseException) -> bool:
        """webdataset ``handler=``: count, log and continue with the next member or shard."""
        if isinstance(exn, BadSample):
            self.record(exn.rule, exn.reason)
        else:
            self.record(type(exn).__name__, str(exn))
        return True

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


def stream_shards(urls: list[str], stream_id: int, n_streams: int) -> list[str]:
    """This stream's share of the shards (all of them when there are fewer shards than streams)."""
    if len(urls) >= n_streams:
        return urls[stream_id % n_streams::n_streams]
    return list(urls)


def raw_samples(urls: list[str], *, seed: int, stream_id: int, errors: ErrorCounter,
                shuffle_buffer: int = 256, shuffle_initial: int = 64, resampled: bool = True,
                holdout_every: int | None = None, keep_holdout: bool = False,
                select: Callable[[dict], bool] | None = None) -> Iterator[dict]:
    """Undecoded samples ``{"__key__", "hq.png", "lq.png", "json", ...}`` of one stream.

    ``resampled`` streams are infinite and shuffled; otherwise the shards are read once, in order.
    ``holdout_every`` drops (or, with ``keep_holdout``, keeps only) samples whose index is a multiple;
    ``select`` keeps only the samples it accepts (a held-out split, see :mod:`pairforge.train.split`)."""
    if resampled:
        shards = wds.ResampledShards(list(urls), seed=seed, deterministic=True, worker_seed=lambda: stream_id)
    else:
        shards = wds.SimpleShardList(list(urls))
    stages: list = [shards, wds.tarfile_to_samples(handler=errors.handler)]
    if holdout_every:
        every = int(holdout_every)

        def _held(sample: dict) -> bool:
            return (sample_index(sample["__key__"]) % every == 0) == keep_holdout

        stages.append(wds.select(_held))
    if select is not None:
        stages.append(wds.select(select))
    if resampled and shuffle_buffer > 1:
        seed_shuffle = int(np.random.SeedSequence([seed, stream_id, 0x5EED]).generate_state(1)[0])
        stages.append(wds.shuffle(shuffle_buffer, min(shuffle_initial, shuffle_buffer), seed=seed_shuffle))
    return iter(wds.DataPipeline(*stages))


def balanced(samples: Iterator[dict], cfg: BalanceConfig, rng: np.random.Generator,
             errors: ErrorCounter) -> Iterator[dict]:
    """Yield samples so that degradation types come out evenly (or by ``cfg.weights``).

    Types are learned as they appear (first-seen order keeps it deterministic); each type holds up to
    ``buffer_per_type`` samples (the oldest is dropped beyond that). A type that is asked for but does
    not show up within many draws is served from the fullest buffer instead."""
    buffers: dict[str, collections.deque] = {}
    order: list[str] = []
    cap = cfg.buffer_per_type
    max_wait = 64 * cap

    def pull() -> None:
        s = next(samples)
        try:
            t = degradation_type(sample_meta(s), cfg.field)
        except BadSample as e:
            errors.record(e.rule, e.reason)
            return
        if t not in buffers:
            buffers[t] = collections.deque()
            order.append(t)
        buf = buffers[t]
        if len(buf) >= cap:
            buf.popleft()
        buf.append(s)

    while True:
        try:
            while not order:
                pull()
            if cfg.weights is None:
                types = list(order)
                p = np.full(len(types), 1.0 / len(types))
            else:
                types = [t for t, w in cfg.weights.items() if w > 0]
                p = np.array([cfg.weights[t] for t in types], dtype=np.float64)
                p /= p.sum()
            want = types[int(rng.choice(len(types), p=p))]
            waited = 0
            while not buffers.get(want):
                pull()
                waited += 1
                if waited > max_wait:
                    log.warning("balance: no sample of type %r in %d draws; using the fullest type", want, waited)
                    want = max(order, key=lambda t: len(buffers[t]))
                    break
            if not buffers.get(want):
                continue
        except StopIteration:
            return
        yield buffers[want].popleft()


class Cursor:
    """A dataset's selected-sample stream plus how many samples have been taken from it."""

    def __init__(self, it: Iterator[dict]):
        self._it = it
        self.taken = 0

    def next(self) -> dict:
        s = next(self._it)
        self.taken += 1
        return s

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.next()
