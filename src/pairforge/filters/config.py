"""Config models of the filters (one ``kind`` per filter; composed into ``FilterConfig`` in config.py).

Every filter has an optional ``name``: the label under which it records its results in the sample's
``meta["filters"]``, in rejections, and in the run directory (thresholds, reference indexes). It defaults
to the kind; give two filters of one kind different names.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pairforge.configbase import Resources, StrictModel
from pairforge.llm.config import LLMConfig, migrate_judge_dict, migrate_llm_dict
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


#: what a judge's ``llm:`` defaults to where the config says nothing (deterministic, short answers)
JUDGE_LLM_DEFAULTS: dict[str, Any] = {"temperature": 0.0, "max_output_tokens": 512}
JUDGE_RETRY_DEFAULTS: dict[str, Any] = {"max_attempts": 5, "initial_wait_s": 1.0, "max_wait_s": 30.0, "timeout_s": 60.0}


class JudgeSettings(StrictModel):
    """How to ask an MLLM about one image and what to do when asking fails. ``llm`` is the same LLM
    vocabulary as the prompts' (provider, model, retry, concurrency, prices); older configs' ``backend:
    {type: ...}`` and top-level retry keys are migrated with a warning naming the new spelling."""

    llm: LLMConfig = Field(..., description="the MLLM: provider gemini | openai | transformers (a local VLM)")
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
    max_side: int = Field(1024, ge=32, description="downscale the image's long side to this before sending")
    image_format: Literal["png", "jpeg"] = "png"

    @model_validator(mode="before")
    @classmethod
    def _migrate_and_default(cls, data: Any) -> Any:
        data = migrate_judge_dict(data, "judge")
        if isinstance(data, dict) and isinstance(data.get("llm"), dict):
            llm = migrate_llm_dict(dict(data["llm"]), "judge.llm")
            if llm.get("provider") == "gemini":
                llm.setdefault("model", "gemini-2.5-flash")
            for k, v in JUDGE_LLM_DEFAULTS.items():
                llm.setdefault(k, v)
            retry = llm.get("retry")
            if retry is None or isinstance(retry, dict):
                llm["retry"] = {**JUDGE_RETRY_DEFAULTS, **(retry or {})}
            data = {**data, "llm": llm}
        return data

    def wants_gpu(self, run_device: str | None) -> bool:
        """A local model that will run on a GPU: explicitly (``llm.device: cuda``), or by ``auto`` on a
        run whose device is not the CPU."""
        if self.llm.provider != "transformers":
            return False
        if self.llm.device != "auto":
            return self.llm.device.startswith("cuda")
        return run_device != "cpu"


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
