"""LLM backends for prompt writing and prompt privacy checks: Gemini (google-genai), any
OpenAI-compatible server, or a local transformers model."""
from __future__ import annotations

from pairforge.prompts.config import LLMConfig
from pairforge.prompts.llm.base import (
    LLMClient,
    LLMError,
    PermanentLLMError,
    RetryableLLMError,
    call_with_retry,
    parse_reply,
)


def make_client(config: LLMConfig) -> LLMClient:
    """The client for ``config.backend`` (SDKs are imported only when used)."""
    if config.backend == "gemini":
        from pairforge.prompts.llm.gemini import GeminiClient

        return GeminiClient(config)
    if config.backend == "openai":
        from pairforge.prompts.llm.openai_compat import OpenAICompatClient

        return OpenAICompatClient(config)
    if config.backend == "transformers":
        from pairforge.prompts.llm.local import TransformersClient

        return TransformersClient(config)
    raise ValueError(f"unknown LLM backend {config.backend!r}; allowed: gemini, openai, transformers")


__all__ = ["LLMClient", "LLMError", "PermanentLLMError", "RetryableLLMError", "call_with_retry", "make_client",
           "parse_reply"]
