"""Config models of the filters (one ``kind`` per filter; composed into ``FilterConfig`` in config.py).

Every filter has an optional ``name``: the label under which it records its results in the sample's
``meta["filters"]``, in rejections, and in the run directory (thresholds, reference indexes). It defaults
to the kind; give two filters of one kind different names.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from pairforge.configbase import Resources, StrictModel
from pairforge.registry import FILTERS

_NAME = Field(
    None,
    pattern=r"^[A-Za-z0-9_-]+$",
    description="label in sample metadata, rejections and run-dir state (default: the kind)",
)


@FILTERS.register(stage="pairforge.stages.filters:SanityStage")
class SanityFilterConfig(StrictModel):
    """Cheap checks that catch unusable images before any model sees them."""

    kind: Literal["sanity"] = "sanity"
    name: str | None = _NAME
    min_size: int = Field(64, ge=1, description="reject if the short side is smaller (pixels)")
    max_pixels: int | None = Field(None, ge=1, description="reject if height*width exceeds this (None = no cap)")
    max_aspect: float = Field(4.0, ge=1.0, description="reject if long/short side exceeds this")
    min_std: float = Field(3.0, ge=0, description="reject flat/blank images: luma std below this (0-255)")
    max_clipped: float = Field(
        0.5, ge=0, le=1, description="reject if this fraction of pixels is clipped black or white (all channels 0 or 255)"
    )
    max_channel_clipped: float | None = Field(
        None,
        ge=0,
        le=1,
        description="reject oversaturated colour: fraction of pixels with SOME channel at 0 or 255 above this (None = off)",
    )
    resources: Resources = Resources(batch_size=32)


class IQAMetricRule(StrictModel):
    """One pyiqa no-reference metric and its acceptance rule (absolute, percentile, or none = record only)."""

    name: str = Field(..., description="a pyiqa metric name, e.g. piqe, musiq, clipiqa+_vitL14_512")
    threshold: float | None = Field(
        None, description="absolute rule: keep if the score is at least this good (direction from the metric)"
    )
    keep_top: float | None = Field(
        None,
        gt=0,
        le=1,
        description="percentile rule: keep the best fraction (0.95 = drop the worst 5%), estimated on a calibration sample",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="extra kwargs for pyiqa.create_metric")

    @model_validator(mode="after")
    def _one_rule(self) -> IQAMetricRule:
        if self.threshold is not None and self.keep_top is not None:
            raise ValueError(f"metric {self.name!r}: give threshold or keep_top, not both")
        return self


#: FluxGen (arXiv 2504.15159): keep images in the top 95% of each of CLIP-IQA+, MANIQA and MUSIQ.
IQA_PRESETS: dict[str, list[dict]] = {
    "fluxgen": [
        {"name": "clipiqa+_vitL14_512", "keep_top": 0.95},
        {"name": "maniqa-pipal", "keep_top": 0.95},
        {"name": "musiq", "keep_top": 0.95},
    ],
}


@FILTERS.register(stage="pairforge.stages.filters:IQAStage")
class IQAFilterConfig(StrictModel):
    """No-reference IQA with pyiqa; scores go into the sample JSON with the metric's direction."""

    kind: Literal["iqa"] = "iqa"
    name: str | None = _NAME
    preset: Literal["fluxgen"] | None = Field(None, description="fill `metrics` from a published recipe")
    metrics: list[IQAMetricRule] = Field(default_factory=list)
    max_side: int | None = Field(
        None, ge=32, description="downscale the long side to this before scoring (None = full size)"
    )
    calibration_samples: int = Field(
        256, ge=2, description="samples scored on the driver to estimate keep_top thresholds"
    )
    score_batch_size: int = Field(8, ge=1, description="images per metric forward pass")
    resources: Resources = Resources(batch_size=8)

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            preset = data["preset"]
            if preset not in IQA_PRESETS:
                return data  # the Literal check names the allowed values
            expanded = [dict(m) for m in IQA_PRESETS[preset]]
            given = data.get("metrics")
            if not given:
                data = {**data, "metrics": expanded}
            else:
                norm = [IQAMetricRule.model_validate(m).model_dump() for m in given]
                if norm != [IQAMetricRule.model_validate(m).model_dump() for m in expanded]:
                    raise ValueError(f"give either preset {preset!r} or metrics, not both (they differ)")
        return data

    @model_validator(mode="after")
    def _has_metrics(self) -> IQAFilterConfig:
        if not self.metrics:
            raise ValueError("iqa filter needs `metrics` (or a `preset`)")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique, got {names}")
        return self


# --------------------------------------------------------------------------------------------- judge

JudgeCheck = Literal["anomalies", "common_sense", "unsafe", "privacy"]


class GeminiBackendConfig(StrictModel):
    """Google Gemini through google-genai; the key comes from the environment only."""

    type: Literal["gemini"] = "gemini"
    model: str = "gemini-2.5-flash"
    base_url: str | None = Field(None, description="API endpoint override (a proxy, a regional endpoint)")
    api_key_env: str | None = Field(
        None, description="environment variable holding the key (default: GOOGLE_API_KEY, then GEMINI_API_KEY)"
    )
    temperature: float = Field(0.0, ge=0)


class OpenAIBackendConfig(StrictModel):
    """Any OpenAI-compatible chat server (vLLM, SGLang, ...); every reply is validated against the schema."""

    type: Literal["openai"] = "openai"
    model: str
    base_url: str = Field(..., description="e.g. http://vllm-host:8000/v1")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="environment variable holding the key (unset = no key, as vLLM accepts)"
    )
    structured_output: Literal["response_format", "structured_outputs", "none"] = Field(
        "response_format",
        description="how to ask for schema-constrained output: OpenAI response_format json_schema, vLLM's "
        "extra_body structured_outputs, or none (replies are validated either way)",
    )
    max_tokens: int = Field(512, ge=16)
    temperature: float = Field(0.0, ge=0)


class LocalVLMBackendConfig(StrictModel):
    """A local transformers VLM (Qwen2.5-VL class) loaded with AutoModelForImageTextToText."""

    type: Literal["local"] = "local"
    model: str = Field(..., description="a local directory or a hub id already in the local cache")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    max_new_tokens: int = Field(256, ge=8)
    generate_batch_size: int = Field(4, ge=1)
    local_files_only: bool = Field(True, description="never download at run time (pull weights beforehand)")


JudgeBackendConfig = Annotated[
    GeminiBackendConfig | OpenAIBackendConfig | LocalVLMBackendConfig, Field(discriminator="type")
]


class JudgeSettings(StrictModel):
    """How to ask an MLLM about one image and what to do when asking fails."""

    backend: JudgeBackendConfig
    checks: list[JudgeCheck] = Field(
        default_factory=lambda: ["anomalies", "common_sense", "unsafe", "privacy"],
        min_length=1,
        description="what the judge inspects (GenIR: anomalies, common sense, unsafe, privacy)",
    )
    instructions: str | None = Field(None, description="replace the built-in instruction text")
    on_error: Literal["reject", "accept", "raise"] = Field(
        "reject",
        description="a sample whose judgement failed: reject (rule judge_error), accept (recorded as unjudged), or stop the run",
    )
    max_attempts: int = Field(5, ge=1, description="tries per image (429, 5xx, timeouts, malformed replies)")
    retry_malformed: bool = Field(True, description="retry replies that do not match the schema")
    backoff_initial_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    timeout_s: float = Field(60.0, gt=0, description="per-request timeout")
    max_concurrency: int = Field(4, ge=1, description="requests in flight per worker (remote backends)")
    max_side: int = Field(1024, ge=32, description="downscale the image's long side to this before sending")
    image_format: Literal["png", "jpeg"] = "png"
    price_per_million_input_tokens: float = Field(0.0, ge=0, description="for the cost estimate (USD)")
    price_per_million_output_tokens: float = Field(0.0, ge=0, description="for the cost estimate (USD)")


@FILTERS.register(stage="pairforge.stages.filters:JudgeStage")
class JudgeFilterConfig(JudgeSettings):
    """GenIR-style MLLM inspection: anomalies, common sense, unsafe or privacy-violating content."""

    kind: Literal["judge"] = "judge"
    name: str | None = _NAME
    resources: Resources = Resources(batch_size=16)


class PrivacyJudgeSettings(JudgeSettings):
    """The optional MLLM privacy question of the privacy filter."""

    checks: list[JudgeCheck] = Field(default_factory=lambda: ["privacy"], min_length=1)


@FILTERS.register(stage="pairforge.stages.filters:PrivacyStage")
class PrivacyFilterConfig(StrictModel):
    """Face detection (OpenCV's LBP frontal-face cascade) to reject or blur faces; optional MLLM question."""

    kind: Literal["privacy"] = "privacy"
    name: str | None = _NAME
    action: Literal["reject", "blur", "record"] = Field(
        "reject", description="what to do with an image showing faces (record = only note them)"
    )
    cascade: str | None = Field(
        None, description="an OpenCV LBP cascade XML (default: lbpcascade_frontalface as shipped by scikit-image)"
    )
    detect_max_side: int = Field(512, ge=64, description="detection runs on a copy downscaled to this long side")
    min_face: int = Field(24, ge=12, description="smallest face searched, in pixels of the detection copy")
    scale_factor: float = Field(1.2, gt=1.0, le=2.0)
    min_neighbors: int = Field(8, ge=1, description="higher = fewer false detections")
    blur: Literal["gaussian", "pixelate"] = "gaussian"
    margin: float = Field(0.25, ge=0, le=2, description="grow each face box by this fraction before blurring")
    judge: PrivacyJudgeSettings | None = Field(None, description="also ask an MLLM the privacy question")
    resources: Resources = Resources(batch_size=16)


@FILTERS.register(stage="pairforge.stages.filters:DedupStage")
class DedupFilterConfig(StrictModel):
    """Perceptual-hash near-duplicate rejection: within a shard, and against earlier runs' hash indexes."""

    kind: Literal["dedup"] = "dedup"
    name: str | None = _NAME
    hash: Literal["phash", "dhash"] = "phash"
    max_distance: int = Field(6, ge=0, le=32, description="Hamming distance (of 64 bits) that counts as duplicate")
    flip_invariant: bool = Field(True, description="also match horizontally mirrored copies")
    within_batch: bool = Field(
        True, description="compare the samples of each batch the stage sees (a whole shard at the default batch size)"
    )
    reference: list[str] = Field(
        default_factory=list,
        description="earlier runs (directories / s3 prefixes) or hash-index JSON files to de-duplicate against",
    )
    resources: Resources = Resources(batch_size=1_000_000)


@FILTERS.register(stage="pairforge.stages.filters:ClassifierStage")
class ClassifierFilterConfig(StrictModel):
    """A trained binary quality classifier (``pairforge train-classifier``), kept by probability."""

    kind: Literal["classifier"] = "classifier"
    name: str | None = _NAME
    model: str = Field(..., description="the classifier file written by train-classifier")
    min_prob: float = Field(0.5, ge=0, le=1, description="keep if P(high quality) >= this")
    resources: Resources = Resources(batch_size=32)
