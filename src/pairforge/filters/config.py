"""Config models of the filters."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pairforge.configbase import Resources, StrictModel


class SanityFilterConfig(StrictModel):
    """Cheap checks that catch unusable images before any model sees them."""

    kind: Literal["sanity"] = "sanity"
    min_size: int = Field(64, ge=1, description="reject if the short side is smaller (pixels)")
    max_aspect: float = Field(4.0, ge=1.0, description="reject if long/short side exceeds this")
    min_std: float = Field(3.0, ge=0, description="reject flat/blank images: luma std below this (0-255)")
    max_clipped: float = Field(
        0.5, ge=0, le=1, description="reject if this fraction of pixels is saturated (0 or 255 in all channels)"
    )
    resources: Resources = Resources(batch_size=32)


class IQAMetricRule(StrictModel):
    """One pyiqa no-reference metric and its acceptance rule."""

    name: str = Field(..., description="a pyiqa metric name, e.g. piqe, musiq, clipiqa+_vitL14_512")
    threshold: float | None = Field(
        None, description="absolute rule: keep if score is better than this (direction from the metric)"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="extra kwargs for pyiqa.create_metric")


class IQAFilterConfig(StrictModel):
    """No-reference IQA with pyiqa; scores go into the sample JSON with the metric's direction."""

    kind: Literal["iqa"] = "iqa"
    metrics: list[IQAMetricRule] = Field(..., min_length=1)
    max_side: int | None = Field(
        None, ge=32, description="downscale the long side to this before scoring (None = full size)"
    )
    resources: Resources = Resources(batch_size=8)
