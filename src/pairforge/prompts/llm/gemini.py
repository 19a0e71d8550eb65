"""Gemini through google-genai (the maintained SDK; google-generativeai is end-of-life)."""
from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from pairforge.prompts.config import LLMConfig
from pairforge.prompts.llm.base import LLMClient, PermanentLLMError, RetryableLLMError, is_transport_error, \
    parse_reply, status_error
from pairforge.prompts.secrets import redact, resolve_api_key

T = TypeVar("T", bound=BaseModel)


class GeminiClient(LLMClient):
    """Structured JSON output via ``response_mime_type=application/json`` + ``response_schema``."""

    def __init__(self, config: LLMConfig):
        super().__init__(config)
        from google import genai
        from google.genai import types

        key = resolve_api_key("gemini", config.api_key_env)
        self._secrets = (key,)
        http = types.HttpOptions(
            base_url=config.base_url,
            timeout=int(config.retry.timeout_s * 1000),
            retry_options=None,  # one retry policy: ours (call_with_retry)
        )
        self._types = types
        self._client = genai.Client(api_key=key, http_options=http)

    def complete(self, system: str, user: str, schema: type[T], seed: int | None = None) -> T:
        from google.genai import errors

        types = self._types
        cfg = types.GenerateContentConfig(
            system_instruction=system,
            response_mime_type="application/json",
            response_schema=schema,
            temperature=self.config.temperature,
            max_output_tokens=self.config.max_output_tokens,
            seed=seed,
        )
        try:
            resp = self._client.models.generate_content(model=self.config.model, contents=user, config=cfg)
        except errors.APIError as e:
            raise status_error(getattr(e, "code", None), f"{e.status or ''} {e.message or ''}".strip(),
                               self._secrets) from None
        except Exception as e:  # noqa: BLE001 - classify transport failures, re-raise the rest redacted
            if is_transport_error(e):
                raise RetryableLLMError(redact(f"{type(e).__name__}: {e}", self._secrets)) from None
            raise PermanentLLMError(redact(f"{type(e).__name__}: {e}", self._secrets)) from None
        text = resp.text
        if not text:
            reason = None
            try:
                reason = resp.candidates[0].finish_reason
            except (AttributeError, IndexError, TypeError):
                pass
            raise RetryableLLMError(f"empty reply (finish reason: {reason})")
        return parse_reply(text, schema)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - best effort
            pass
