"""FLUX.1 (dev, schnell): distilled guidance, optional true CFG against the negative prompt, T5 length."""
from __future__ import annotations

from typing import Any

from pairforge.synthesis.family import DiffusionFamily


class FluxFamily(DiffusionFamily):
    name = "flux"
    text_encoders = ("text_encoder",)
    supports_true_cfg = True

    def pipeline_class(self) -> Any:
        from diffusers import FluxPipeline

        return FluxPipeline

    def denoiser(self, pipe: Any) -> Any:
        return pipe.transformer

    def auto_dtype(self, torch: Any, device: str) -> Any:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32

    def vae_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor) * 2  # latents are packed in 2x2 patches

    def distilled_guidance(self, pipe: Any) -> bool:
        return bool(pipe.transformer.config.guidance_embeds)

    def call_kwargs(self, gen: Any, reqs: list) -> dict:
        kw: dict = {"max_sequence_length": gen.max_sequence_length}
        if gen.true_cfg_scale > 1:
            kw["negative_prompt"] = [r.negative_prompt for r in reqs]
            kw["true_cfg_scale"] = gen.true_cfg_scale
        return kw

    def sample_info(self, gen: Any, distilled_guidance: bool) -> dict:
        d: dict = {
            "guidance_scale": gen.guidance_scale if distilled_guidance else None,
            "true_cfg_scale": gen.true_cfg_scale if gen.true_cfg_scale > 1 else None,
        }
        if gen.true_cfg_scale <= 1:
            d["negative_prompt_used"] = False
        return d


FLUX = FluxFamily()
