"""Real-ESRGAN-style degradation chains: configurable op lists, named presets, a batched engine."""
from pairforge.degradations.chain.config import ChainDegradeConfig, CropConfig
from pairforge.degradations.chain.presets import PRESETS, preset_dict, preset_names

__all__ = ["PRESETS", "ChainDegradeConfig", "CropConfig", "preset_dict", "preset_names"]
