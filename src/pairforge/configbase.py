"""Shared building blocks of every config model (kept apart from config.py so library packages can use
them without importing the whole run config)."""
from __future__ import annotations

from typing import Annotated

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


def _ordered_range(v: tuple[float, float]) -> tuple[float, float]:
    if v[0] > v[1]:
        raise ValueError(f"range [{v[0]}, {v[1]}] has lo > hi")
    return v


#: A closed interval ``[lo, hi]`` written as a two-element list in YAML.
FloatRange = Annotated[tuple[float, float], AfterValidator(_ordered_range)]
IntRange = Annotated[tuple[int, int], AfterValidator(_ordered_range)]
