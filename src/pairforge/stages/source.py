"""The source stage: fills ``hq`` (and ``meta["source"]``) for each sample index from an image source."""
from __future__ import annotations

import logging

from pairforge.batch import Batch, Rejection, live_rows, reject
from pairforge.io.images import ImageRejected
from pairforge.sources.base import ImageSource
from pairforge.sources.config import BundledSourceConfig, FilesSourceConfig
from pairforge.stage import RunContext, Stage

log = logging.getLogger(__name__)


def build_image_source(config, context: RunContext, files: list[str] | None = None) -> ImageSource:
    """The library source object for a source config (the files listing is read from the run dir)."""
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


def source_stages(config, context: RunContext, files: list[str] | None = None) -> list[Stage]:
    """The stages of an image source (bundled photos, files): one :class:`SourceStage`."""
    return [SourceStage(config, context, files=files)]


class SourceStage(Stage):
    name = "source"
    concurrent_calls = True  # reading and decoding files: no state between calls

    def __init__(self, config, context: RunContext, files: list[str] | None = None):
        super().__init__(config, context)
        self._files = files
        self.source: ImageSource | None = None

    def setup(self) -> None:
        self.source = build_image_source(self.config, self.context, self._files)

    def load_hq(self, index: int):
        """The clean image of any index (for degradations that need a second image)."""
        self.ensure_ready()
        img, _ = self.source.load(index, self.context.rng(index, "source"))
        return img

    def process(self, batch: Batch) -> Batch:
        for row in live_rows(batch):
            index = batch["index"][row]
            try:
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
