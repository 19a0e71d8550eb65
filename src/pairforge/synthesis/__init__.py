"""Text-to-image synthesis of HQ images: diffusers FLUX.1 / SDXL backends, learned prompt tokens,
output checks, offline model resolution and ``models pull``. Tiny test pipelines: :mod:`pairforge.synthesis.tiny`."""
from pairforge.synthesis.config import GenerationConfig, LearnedTokensConfig, ModelConfig, SynthesisSourceConfig
from pairforge.synthesis.models import MissingModelError, models_pull, required_models

__all__ = ["GenerationConfig", "LearnedTokensConfig", "MissingModelError", "ModelConfig", "SynthesisSourceConfig",
           "models_pull", "required_models"]
