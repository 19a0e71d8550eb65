"""Config models of the image sources (existing photos; synthesis sources live in pairforge.synthesis)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pairforge.configbase import Resources, StrictModel
from pairforge.registry import SOURCES

BUNDLED_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "camera",
    "brick",
    "grass",
    "gravel",
)


class CropConfig(StrictModel):
    """How a photo becomes samples: whole, one crop, or a grid of tiles."""

    mode: Literal["none", "center", "random", "tiles"] = "tiles"
    size: int = Field(256, ge=8, le=16384, description="side of the square crop/tile in pixels")
    stride: int | None = Field(None, ge=1, description="tile step (default: size, no overlap)")


@SOURCES.register(stages="pairforge.stages.source:source_stages", partners="pairforge.stages.source:partner_images")
class BundledSourceConfig(StrictModel):
    """The real photographs that ship inside scikit-image: the offline, anywhere default."""

    kind: Literal["bundled"] = "bundled"
    photos: list[str] = Field(default_factory=lambda: list(BUNDLED_PHOTOS))
    crop: CropConfig = CropConfig()
    resources: Resources = Resources(batch_size=8)

    @field_validator("photos")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if p not in BUNDLED_PHOTOS]
        if bad:
            raise ValueError(f"unknown bundled photo(s) {bad}; allowed: {list(BUNDLED_PHOTOS)}")
        if not v:
            raise ValueError("photos must name at least one bundled photo")
        return v


@SOURCES.register(stages="pairforge.stages.source:source_stages", partners="pairforge.stages.source:partner_images")
class FilesSourceConfig(StrictModel):
    """Images from folders, globs, list files (one path per line) or s3:// prefixes."""

    kind: Literal["files"] = "files"
    paths: list[str] = Field(..., min_length=1, description="folders, globs, list files (.txt) or s3:// urls")
    extensions: list[str] = Field(
        default_factory=lambda: [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"]
    )
    recursive: bool = True
    crop: CropConfig = CropConfig(mode="none")
    tiles_per_image: int = Field(
        1, ge=1, description="random crops per file (crop.mode=random); tiles mode needs sizes and reads once"
    )
    max_pixels: int = Field(
        178_956_970, ge=1,
        description="reject images with more pixels as source/too_large, from the header, before decoding "
                    "(decoding needs about 8 bytes per pixel: the default bounds it at about 1.4 GB)",
    )
    max_side: int | None = Field(
        None, ge=8,
        description="downscale images whose longer side exceeds this (area filter) before any crop; JPEGs "
                    "are decoded at a reduced size first, so they never occupy their full size in memory",
    )
    resources: Resources = Resources(batch_size=8)
