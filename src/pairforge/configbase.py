"""Shared building blocks of every config model (kept apart from config.py so library packages can use
them without importing the whole run config)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Unknown keys are errors; values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class Resources(StrictModel):
    """Per-worker resources of a stage; the pipeline sizes Ray actor pools from these."""

    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per worker")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per worker (fractions share a GPU)")
    batch_size: int = Field(16, ge=1, description="samples per call inside a worker")
    concurrency: int | None = Field(None, ge=1, description="max workers; default sized from the cluster")
    max_pixels: int | None = Field(
        None, ge=1,
        description="inputs with more pixels are rejected as <stage>/too_large before this stage runs, bounding "
                    "its memory per image (default: the stage's own, e.g. the degrade stage's per kind)",
    )


def _ordered_range(v: tuple[float, float]) -> tuple[float, float]:
    if v[0] > v[1]:
        raise ValueError(f"range [{v[0]}, {v[1]}] has lo > hi")
    return v


#: A closed interval ``[lo, hi]`` written as a two-element list in YAML.
FloatRange = Annotated[tuple[float, float], AfterValidator(_ordered_range)]
IntRange = Annotated[tuple[int, int], AfterValidator(_ordered_range)]


class ModelSpec(StrictModel):
    """Where a model-backed component loads its weights from, and on what device. Shared by every
    component that loads a model (the local LLM / VLM of prompts and the judge; see README), so that
    ``pairforge models pull CONFIG --cache DIR`` and ``cache_dir: DIR`` mean the same everywhere."""

    model: str = Field(..., min_length=1, description="a hub id already in the cache, or a local directory")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit) to load")
    cache_dir: str | None = Field(None, description="HF hub cache prepared by `pairforge models pull --cache DIR`")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$",
                        description="cpu, cuda, cuda:N, mps or auto (the worker's GPU when it has one)")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto: bfloat16 on CUDA, float32 on CPU")
