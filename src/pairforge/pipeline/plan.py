"""Turn a config into a plan: the source, the shards to make, and the ordered stages grouped into
segments (consecutive CPU stages fuse into one worker; each GPU stage gets its own actor pool)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from pairforge.config import PipelineConfig
from pairforge.errors import UserError
from pairforge.registry import FILTERS, SOURCES
from pairforge.stage import RunContext, Stage
from pairforge.stages.degrade import DegradeStage


class PlanError(UserError, ValueError):
    """The config cannot become a plan (no samples, GPUs asked for on a cluster without any)."""


@dataclass
class ShardSpec:
    shard: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class Segment:
    """Stages that run back to back inside one worker process."""

    stages: list[Stage]
    num_cpus: float
    num_gpus: float
    concurrency: int | None
    with_writer: bool = False

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages] + (["writer"] if self.with_writer else [])


@dataclass
class Plan:
    config: PipelineConfig
    context: RunContext
    stages: list[Stage]
    num_samples: int
    source_info: dict = field(default_factory=dict)

    @property
    def samples_per_shard(self) -> int:
        return self.config.output.samples_per_shard

    def shards(self) -> list[ShardSpec]:
        n = self.samples_per_shard
        return [
            ShardSpec(s, s * n, min((s + 1) * n, self.num_samples)) for s in range(math.ceil(self.num_samples / n))
        ]

    def segments(self) -> list[Segment]:
        segs: list[Segment] = []
        for st in self.stages:
            r = st.resources
            if r.num_gpus > 0 or not segs or segs[-1].num_gpus > 0:
                segs.append(Segment([st], r.num_cpus, r.num_gpus, r.concurrency))
            else:
                seg = segs[-1]
                seg.stages.append(st)
                seg.num_cpus = max(seg.num_cpus, r.num_cpus)
                if r.concurrency is not None:
                    seg.concurrency = min(seg.concurrency or r.concurrency, r.concurrency)
        wr = self.config.writer.resources
        if segs and segs[-1].num_gpus == 0:
            segs[-1].with_writer = True
        else:
            segs.append(Segment([], wr.num_cpus, 0.0, wr.concurrency, with_writer=True))
        return segs

    def describe(self) -> dict:
        return {
            "source": self.source_info,
            "num_samples": self.num_samples,
            "samples_per_shard": self.samples_per_shard,
            "shards": len(self.shards()),
            "stages": [
                {"name": s.name, "kind": getattr(s.config, "kind", s.name), **vars(s.resources)} for s in self.stages
            ],
            "segments": [
                {"stages": seg.names, "num_cpus": seg.num_cpus, "num_gpus": seg.num_gpus, "concurrency": seg.concurrency}
                for seg in self.segments()
            ],
        }


def negatives_run(config: PipelineConfig) -> bool:
    """A synthesis run in ``mode: negatives`` (SUPIR-style negative-quality images, written as ``neg.png``)."""
    return getattr(getattr(config.source, "generation", None), "mode", None) == "negatives"


def build_stages(config: PipelineConfig, ctx: RunContext, files: list[str] | None = None) -> list[Stage]:
    """The run's stages in order: the source's (from :data:`pairforge.registry.SOURCES`), each filter's
    (:data:`~pairforge.registry.FILTERS`), then the degrade stage. ``files``: a files source's listing
    when it is not read from the run directory."""
    stages = list(SOURCES.entry_for(config.source).load("stages")(config.source, ctx, files=files))
    for f in config.filters:
        stages.append(FILTERS.entry_for(f).load("stage")(f, ctx))
    if not negatives_run(config):  # negative-quality images are never degraded as if they were clean
        stages.append(DegradeStage(config.degrade, ctx, source=config.source, files=files))
    # stage names seed randomness: they must be unique within a run (two iqa filters: iqa, iqa_2)
    seen: dict[str, int] = {}
    for st in stages:
        seen[st.name] = seen.get(st.name, 0) + 1
        if seen[st.name] > 1:
            st.name = f"{st.name}_{seen[st.name]}"
    return stages
