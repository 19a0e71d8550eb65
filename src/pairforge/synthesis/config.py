"""Config of a synthesis source (``source: {kind: synthesis, prompts: ..., model: ..., generation: ...}``)."""
from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pairforge.configbase import Resources, StrictModel
from pairforge.prompts.config import EmptyPromptsConfig, PromptsConfig
from pairforge.registry import DIFFUSION_FAMILIES, SOURCES

DIFFUSION_FAMILIES.add("flux", family="pairforge.synthesis.flux:FLUX")
DIFFUSION_FAMILIES.add("sdxl", family="pairforge.synthesis.sdxl:SDXL")


class LearnedTokensConfig(StrictModel):
    """Learned prompt tokens (textual inversion), e.g. GenIR's positive / negative quality tokens.

    The file (.safetensors or .pt) holds one (n, dim) tensor per text encoder: ``clip_l`` (SDXL's first
    encoder and Flux's CLIP) and ``clip_g`` (SDXL's second encoder); n > 1 makes a multi-vector token.
    """

    path: str = Field(..., description="embedding file (.safetensors / .pt) with clip_l [and clip_g] tensors")
    token: str = Field(..., pattern=r"^<[^<>\s]+>$", description="the placeholder word, e.g. <pos>")


class ModelConfig(StrictModel):
    family: Literal[tuple(DIFFUSION_FAMILIES.kinds())] = Field(  # type: ignore[valid-type]
        ..., description="flux (FLUX.1 dev/schnell) or sdxl")
    id: str = Field(..., min_length=1, description="hub id (e.g. black-forest-labs/FLUX.1-dev) or a local "
                    "directory in diffusers layout")
    revision: str | None = Field(None, description="hub branch, tag or commit (pin it for reproducibility)")
    variant: str | None = Field(None, description="weight variant, e.g. fp16 for SDXL")
    cache_dir: str | None = Field(
        None, description="HF cache filled by `pairforge models pull` (default: HF_HUB_CACHE / ~/.cache)"
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto: bfloat16 on GPU (float16 for SDXL), float32 on CPU"
    )
    compile: bool = Field(False, description="torch.compile the denoiser (regional, repeated blocks)")
    cpu_offload: Literal["none", "model", "sequential"] = Field(
        "none", description="move idle components to CPU (model) or stream layers (sequential, slowest)"
    )
    vae_tiling: bool = Field(False, description="decode in tiles (large images, less memory)")
    vae_slicing: bool = Field(False, description="decode a batch one image at a time")
    positive_embedding: LearnedTokensConfig | None = None
    negative_embedding: LearnedTokensConfig | None = None


class OutputChecks(StrictModel):
    """Reject broken generations (NaN/inf from fp16 overflow, black or flat images) with a reason."""

    nonfinite: bool = Field(True, description="reject images with NaN or inf values")
    black_max: float = Field(8.0, ge=0, le=255, description="reject if no pixel is brighter than this (0-255)")
    blank_min_std: float = Field(2.0, ge=0, description="reject if the luma std is below this (0-255)")


class GenerationConfig(StrictModel):
    """How each image is sampled. Prompt text is composed as
    ``prompt_template.format(prompt=..., pos=<positive tokens>)`` + ``", " + quality_suffix``."""

    mode: Literal["positive", "negatives"] = Field(
        "positive", description="positive: normal HQ images; negatives: SUPIR-style negative-quality images "
        "generated from the negative prompt (labelled in metadata)"
    )
    steps: int = Field(28, ge=1, le=1000)
    guidance_scale: float = Field(3.5, ge=0, description="Flux: distilled guidance (dev only; schnell "
                                  "ignores it); SDXL: classifier-free guidance (active when > 1)")
    true_cfg_scale: float = Field(1.0, ge=1.0, description="Flux: true CFG against the negative prompt when "
                                  "> 1 (a second transformer pass per step)")
    guidance_rescale: float = Field(0.0, ge=0, le=1, description="SDXL only")
    prompt_template: str = Field("{prompt}", description="may use {prompt} and {pos}")
    quality_suffix: str = Field("", description="appended to every positive prompt, e.g. '4k, highly detailed'")
    negative_prompt: str = Field("", description="negative quality prompt; may use {neg}")
    negatives_template: str = Field(
        "{prompt}, {negative}", description="negatives mode: the prompt generated from ({negative} is the "
        "negative prompt; the quality suffix becomes the negative prompt)"
    )
    sizes: list[tuple[int, int]] = Field(
        default_factory=lambda: [(1024, 1024)], min_length=1,
        description="resolution buckets as [height, width]; each sample draws one (seeded by its index)",
    )
    size_weights: list[float] | None = Field(None, description="relative frequency of each bucket")
    max_sequence_length: int = Field(512, ge=8, le=512, description="Flux T5 tokens (schnell: <= 256)")
    micro_batch: int = Field(
        1, ge=1, description="samples per pipeline call. 1 makes every image bit-identical whatever the "
        "batch size; larger is faster for small images but batched kernels may change the last bit"
    )
    checks: OutputChecks = OutputChecks()

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for h, w in v:
            if h < 16 or w < 16 or h % 16 or w % 16:
                raise ValueError(f"size [{h}, {w}]: height and width must be multiples of 16, >= 16")
        return v

    @model_validator(mode="after")
    def _templates(self) -> "GenerationConfig":
        def fields(t: str) -> set[str]:
            return {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}

        bad = fields(self.prompt_template) - {"prompt", "pos"}
        if bad or "prompt" not in fields(self.prompt_template):
            raise ValueError(f"prompt_template must contain {{prompt}} and may use {{pos}}; got {self.prompt_template!r}")
        if fields(self.negative_prompt) - {"neg"}:
            raise ValueError(f"negative_prompt may only use {{neg}}; got {self.negative_prompt!r}")
        if fields(self.negatives_template) - {"prompt", "negative"}:
            raise ValueError("negatives_template may only use {prompt} and {negative}")
        if self.size_weights is not None:
            if len(self.size_weights) != len(self.sizes):
                raise ValueError(f"size_weights has {len(self.size_weights)} entries for {len(self.sizes)} sizes")
            if any(w < 0 for w in self.size_weights) or sum(self.size_weights) <= 0:
                raise ValueError("size_weights must be >= 0 with a positive sum")
        return self


@SOURCES.register(stages="pairforge.stages.synthesis:synthesis_stages")
class SynthesisSourceConfig(StrictModel):
    """Text-to-image synthesis as the source of HQ images (FluxGen, GenIR, SUPIR negatives)."""

    kind: Literal["synthesis"] = "synthesis"
    prompts: PromptsConfig = EmptyPromptsConfig()
    model: ModelConfig
    generation: GenerationConfig = GenerationConfig()
    resources: Resources = Resources(num_gpus=1.0, batch_size=4)

    @model_validator(mode="after")
    def _tokens(self) -> "SynthesisSourceConfig":
        g = self.generation
        if "{pos}" in g.prompt_template and self.model.positive_embedding is None:
            raise ValueError("generation.prompt_template uses {pos} but model.positive_embedding is not set")
        if "{neg}" in g.negative_prompt and self.model.negative_embedding is None:
            raise ValueError("generation.negative_prompt uses {neg} but model.negative_embedding is not set")
        if g.true_cfg_scale > 1 and not diffusion_family(self.model.family).supports_true_cfg:
            raise ValueError(f"generation.true_cfg_scale is a Flux option; {self.model.family} uses guidance_scale for CFG")
        return self


def diffusion_family(name: str):
    """The :class:`~pairforge.synthesis.family.DiffusionFamily` object registered as ``name``."""
    return DIFFUSION_FAMILIES.get(name).load("family")
