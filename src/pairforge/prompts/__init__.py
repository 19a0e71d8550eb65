"""Prompt sources for synthesis: empty (FluxGen), template, file and LLM (Gemini, OpenAI-compatible,
local transformers), with a privacy screen and exact/near-duplicate removal. See :mod:`pairforge.prompts.bank`
for how prompts are fixed per sample index."""
from pairforge.prompts.bank import PromptBank, bank_size, build_bank, load_or_build_bank
from pairforge.prompts.command import prompts_command
from pairforge.prompts.config import (
    DedupConfig,
    EmptyPromptsConfig,
    FilePromptsConfig,
    LLMConfig,
    LLMPromptsConfig,
    PrivacyConfig,
    PromptsConfig,
    TemplatePromptsConfig,
)

__all__ = [
    "DedupConfig", "EmptyPromptsConfig", "FilePromptsConfig", "LLMConfig", "LLMPromptsConfig", "PrivacyConfig",
    "PromptBank", "PromptsConfig", "TemplatePromptsConfig", "bank_size", "build_bank", "load_or_build_bank",
    "prompts_command",
]
