"""What differs between diffusion model families (FLUX.1, SDXL): one object per family.

Why: the backend (:mod:`pairforge.synthesis.backend`) is written once against this interface, so a new
family is one module with a :class:`DiffusionFamily` subclass plus one registration line in
:mod:`pairforge.synthesis.config`. Family modules import diffusers only inside methods: the config
reads them (e.g. :attr:`supports_true_cfg`) without loading any model library.
"""
from __future__ import annotations

from typing import Any, ClassVar


class DiffusionFamily:
    """The family-specific choices of a text-to-image pipeline."""

    name: ClassVar[str] = "family"
    #: text encoders that receive learned tokens (textual inversion), by pipeline attribute
    text_encoders: ClassVar[tuple[str, ...]] = ("text_encoder",)
    #: whether ``generation.true_cfg_scale`` (a second, negative-prompt pass) applies
    supports_true_cfg: ClassVar[bool] = False

    def pipeline_class(self) -> Any:
        """The diffusers pipeline class (imported here, never at module import)."""
        raise NotImplementedError

    def denoiser(self, pipe: Any) -> Any:
        """The network that runs every step (what ``compile`` compiles)."""
        raise NotImplementedError

    def auto_dtype(self, torch: Any, device: str) -> Any:
        """The dtype of ``dtype: auto``: float32 on CPU; the family's half precision on GPU."""
        return torch.float32

    def vae_multiple(self, pipe: Any) -> int:
        """Image sides must be a multiple of this."""
        return int(pipe.vae_scale_factor)

    def distilled_guidance(self, pipe: Any) -> bool:
        """True when ``guidance_scale`` is a distilled guidance input rather than CFG."""
        return False

    def call_kwargs(self, gen: Any, reqs: list) -> dict:
        """Family-specific pipeline arguments for a group of requests."""
        return {}

    def sample_info(self, gen: Any, distilled_guidance: bool) -> dict:
        """Family-specific per-sample provenance (guidance, whether the negative prompt was used)."""
        return {}
