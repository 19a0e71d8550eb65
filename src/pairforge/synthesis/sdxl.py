"""SDXL: classifier-free guidance with the negative prompt, guidance rescale, two text encoders."""
from __future__ import annotations

from typing import Any

from pairforge.synthesis.family import DiffusionFamily


class SDXLFamily(DiffusionFamily):
    name = "sdxl"
    text_encoders = ("text_encoder", "text_encoder_2")

    def pipeline_class(self) -> Any:
        from diffusers import StableDiffusionXLPipeline

        return StableDiffusionXLPipeline

    def denoiser(self, pipe: Any) -> Any:
        return pipe.unet

    def auto_dtype(self, torch: Any, device: str) -> Any:
        return torch.float16 if device.startswith("cuda") else torch.float32

    def call_kwargs(self, gen: Any, reqs: list) -> dict:
        return {"negative_prompt": [r.negative_prompt for r in reqs], "guidance_rescale": gen.guidance_rescale}

    def sample_info(self, gen: Any, distilled_guidance: bool) -> dict:
        return {
            "guidance_scale": gen.guidance_scale,
            "guidance_rescale": gen.guidance_rescale,
            "negative_prompt_used": gen.guidance_scale > 1,
        }


SDXL = SDXLFamily()
