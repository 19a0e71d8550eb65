"""Turn a config into a plan: the source, the shards to make, and the ordered stages grouped into
segments (consecutive CPU stages fuse into one worker; each GPU stage gets its own actor pool)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from pairforge.config import PipelineConfig
from pairforge.filters.config import (
    ClassifierFilterConfig,
    DedupFilterConfig,
    IQAFilterConfig,
    JudgeFilterConfig,
    PrivacyFilterConfig,
    SanityFilterConfig,
)
from pairforge.sources.config import BundledSourceConfig, FilesSourceConfig
from pairforge.stage import RunContext, Stage
from pairforge.stages.degrade import DegradeStage
from pairforge.stages.filters import (
    ClassifierStage,
    DedupStage,
    IQAStage,
    JudgeStage,
    PrivacyStage,
    SanityStage,
)
from pairforge.stages.source import SourceStage

#: filter config class -> stage class. New filter kinds register here.
FILTER_STAGES: dict[type, type[Stage]] = {
    SanityFilterConfig: SanityStage,
    IQAFilterConfig: IQAStage,
    JudgeFilterConfig: JudgeStage,
    PrivacyFilterConfig: PrivacyStage,
    DedupFilterConfig: DedupStage,
    ClassifierFilterConfig: ClassifierStage,
}


class PlanError(ValueError):
    pass


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


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def source_stages(config: PipelineConfig, ctx: RunContext, files: list[str] | None) -> list[Stage]:
    src = config.source
    if isinstance(src, (BundledSourceConfig, FilesSourceConfig)):
        return [SourceStage(src, ctx, files=files)]
    kind = getattr(src, "kind", None)
    if kind == "synthesis":
        from pairforge.stages.synthesis import synthesis_stages

        return list(synthesis_stages(src, ctx))
    raise PlanError(f"source.kind {kind!r} has no stage builder")


def build_stages(config: PipelineConfig, ctx: RunContext, files: list[str] | None = None) -> list[Stage]:
    stages = source_stages(config, ctx, files)
    for i, f in enumerate(config.filters):
        cls = FILTER_STAGES.get(type(f))
        if cls is None:
            raise PlanError(f"filters.{i}.kind {f.kind!r} has no stage registered")
        stages.append(cls(f, ctx))
    stages.append(DegradeStage(config.degrade, ctx))
    # stage names seed randomness: they must be unique within a run (two iqa filters: iqa, iqa_2)
    seen: dict[str, int] = {}
    for st in stages:
        seen[st.name] = seen.get(st.name, 0) + 1
        if seen[st.name] > 1:
            st.name = f"{st.name}_{seen[st.name]}"
    return stages
