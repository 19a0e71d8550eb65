"""The source stage: fills ``hq`` (and ``meta["source"]``) for each sample index from an image source.

The library source object is opened once per process (:func:`open_image_source`): the plan counts its
samples with it, the source stage loads from it, and a degradation that needs another sample's clean
image (reflection) gets :func:`partner_images` over the same object.
"""
from __future__ import annotations

import logging

from pairforge.batch import Batch, Rejection, live_rows, reject
from pairforge.degradations.base import Partners
from pairforge.io.images import ImageRejected
from pairforge.sources.base import ImageSource
from pairforge.sources.config import BundledSourceConfig, FilesSourceConfig
from pairforge.stage import RunContext, Stage

log = logging.getLogger(__name__)

#: the image sources open in this process, by (config, run directory or listing); a few at most
_OPEN: dict[tuple, ImageSource] = {}
_MAX_OPEN = 4


def build_image_source(config, context: RunContext, files: list[str] | None = None) -> ImageSource:
    """A new library source object for a source config (the files listing is read from the run dir
    when not given)."""
    if isinstance(config, BundledSourceConfig):
        from pairforge.sources.bundled import BundledSource

        return BundledSource(config)
    if isinstance(config, FilesSourceConfig):
        from pairforge.sources.files import FilesSource, load_listing

        if files is None:
            storage = context.run_storage()
            files = load_listing(storage) if storage is not None else None
            if files is None:
                raise ValueError("a files source needs its listing: pass files= or run inside a run directory")
        return FilesSource(config, files)
    raise TypeError(f"not an image source config: {type(config).__name__}")


def open_image_source(config, context: RunContext, files: list[str] | None = None) -> ImageSource:
    """The process's source object for this config and run: built on first use, then shared (a files
    source lists or reads its listing once per process, not once per stage)."""
    where = context.run_url if context.run_url is not None else hash(tuple(files or ()))
    key = (config.model_dump_json(), where)
    src = _OPEN.get(key)
    if src is None:
        src = build_image_source(config, context, files)
        while len(_OPEN) >= _MAX_OPEN:
            _OPEN.pop(next(iter(_OPEN)))
        _OPEN[key] = src
    return src


def source_stages(config, context: RunContext, files: list[str] | None = None) -> list[Stage]:
    """The stages of an image source (bundled photos, files): one :class:`SourceStage`."""
    return [SourceStage(config, context, files=files)]


def partner_images(config, context: RunContext, files: list[str] | None = None) -> Partners:
    """Other samples' clean images for degradations that combine two samples (reflection): loaded from
    the process's source object with the same per-sample randomness as the source stage."""
    source = open_image_source(config, context, files)

    def load(index: int):
        img, _ = source.load(index, context.rng(index, "source"))
        return img

    return Partners(load=load, num_samples=context.num_samples)


class SourceStage(Stage):
    name = "source"
    concurrent_calls = True  # reading and decoding files: no state between calls
    reads = ("index",)
    #: ``hq_source``: the :class:`~pairforge.io.images.SourcePNG` a sample's HQ was decoded from, when
    #: the source keeps it (files: plain PNGs, no crop), else None; the writer stores it instead of
    #: encoding the same pixels again if the HQ reaching it still has exactly those pixels
    writes = ("hq", "meta", "reject", "hq_source")
    _transient = ("source",)

    def __init__(self, config, context: RunContext, files: list[str] | None = None):
        super().__init__(config, context)
        self._files = files
        self.source: ImageSource | None = None

    def setup(self) -> None:
        self.source = open_image_source(self.config, self.context, self._files)

    def process(self, batch: Batch) -> Batch:
        batch.setdefault("hq", [None] * len(batch["index"]))
        keep = getattr(self.source, "load_keep_png", None)
        if keep is not None:
            batch.setdefault("hq_source", [None] * len(batch["index"]))
        for row in live_rows(batch):
            index = batch["index"][row]
            try:
                if keep is not None:
                    img, meta, batch["hq_source"][row] = keep(index, self.context.rng(index, "source"))
                else:
                    img, meta = self.source.load(index, self.context.rng(index, "source"))
            except ImageRejected as e:
                batch["meta"][row]["source"] = {"kind": self.source.kind}
                reject(batch, row, Rejection("source", e.rule, e.reason, e.value))
                continue
            except Exception as e:  # an input must never stop the run: record and go on
                log.warning("sample %s: source failed: %r", index, e)
                reject(batch, row, Rejection("source", "error", f"{type(e).__name__}: {e}"))
                continue
            batch["hq"][row] = img
            batch["meta"][row]["source"] = meta
        return batch
