"""The one provider layer of pairforge: Gemini (google-genai), any OpenAI-compatible server (openai SDK)
and local transformers models, behind one config (:class:`LLMConfig`), one client interface with one
retry policy (:mod:`pairforge.llm.client`), one error taxonomy (:mod:`pairforge.llm.errors`), one reply
parser (:mod:`pairforge.llm.replies`), one secrets module and redactor (:mod:`pairforge.llm.secrets`) and
one durable usage log (:mod:`pairforge.llm.usage`). The prompt source and the image judge are callers."""
from __future__ import annotations

from pairforge.llm.client import ImagePart, LLMClient, Outcome, Reply, Request
from pairforge.llm.config import ConfigDeprecationWarning, LLMConfig, RetryPolicy
from pairforge.llm.errors import (
    LLMError,
    MalformedReply,
    PermanentLLMError,
    RetryableLLMError,
)
from pairforge.llm.usage import CallUsage, UsageLog, summarize_usage


def make_client(config: LLMConfig, usage: UsageLog | None = None, **kw) -> LLMClient:
    """The client for ``config.provider`` (SDKs and transformers are imported only when used).
    ``kw``: ``sleep`` (tests), and for transformers ``device`` / ``generate_kwargs``."""
    if config.provider == "gemini":
        from pairforge.llm.gemini import GeminiClient

        return GeminiClient(config, usage=usage, **kw)
    if config.provider == "openai":
        from pairforge.llm.openai_compat import OpenAICompatClient

        return OpenAICompatClient(config, usage=usage, **kw)
    if config.provider == "transformers":
        from pairforge.llm.transformers_local import TransformersClient

        return TransformersClient(config, usage=usage, **kw)
    raise ValueError(f"unknown LLM provider {config.provider!r}; allowed: gemini, openai, transformers")


__all__ = ["CallUsage", "ConfigDeprecationWarning", "ImagePart", "LLMClient", "LLMConfig", "LLMError",
           "MalformedReply", "Outcome", "PermanentLLMError", "Reply", "Request", "RetryPolicy",
           "RetryableLLMError", "UsageLog", "make_client", "summarize_usage"]
