"""Gemini through google-genai (the maintained SDK; google-generativeai reached end of life in 2025).

Structured JSON output via ``response_mime_type=application/json`` + ``response_schema``. The SDK's own
retries stay off: :mod:`pairforge.llm.client` retries, counts and logs every attempt. A prompt or answer
blocked by Gemini's safety system comes back as ``Reply.blocked`` (the caller decides what it means).
"""
from __future__ import annotations

from pairforge.llm.client import LLMClient, Reply, Request
from pairforge.llm.errors import (
    LLMError,
    PermanentLLMError,
    RetryableLLMError,
    is_truncated_body,
    parse_retry_after,
    status_error,
    transport_kind,
)
from pairforge.llm.secrets import resolve_api_key

_BLOCKED = ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY")


class GeminiClient(LLMClient):
    def __init__(self, config, **kw):
        super().__init__(config, **kw)
        self._client = None

    def _transient(self) -> tuple[str, ...]:
        return ("_client",)

    def _connect(self):
        from google import genai
        from google.genai import types

        key = resolve_api_key("gemini", self.config.api_key_env)
        self._secrets = (key,)
        opts = {"timeout": max(1, int(self.config.retry.timeout_s * 1000)), "retry_options": None}
        if self.config.base_url:
            opts["base_url"] = self.config.base_url
        self._client = genai.Client(api_key=key, http_options=types.HttpOptions(**opts))
        return self._client

    def connect(self) -> None:
        """Create the SDK client now (raises MissingAPIKey naming the variables)."""
        if self._client is None:
            self._connect()

    def send(self, request: Request) -> Reply:
        from google.genai import errors, types

        client = self._client or self._connect()
        contents: list = [types.Part.from_bytes(data=im.data, mime_type=im.mime) for im in request.images]
        contents.append(request.user)
        cfg = types.GenerateContentConfig(
            system_instruction=request.system,
            response_mime_type="application/json" if request.schema is not None else None,
            response_schema=request.schema,
            temperature=self.config.temperature,
            max_output_tokens=self.config.max_output_tokens,
            seed=request.seed,
        )
        try:
            resp = client.models.generate_content(model=self.config.model, contents=contents, config=cfg)
        except errors.APIError as e:
            headers = getattr(getattr(e, "response", None), "headers", None)
            raise status_error(getattr(e, "code", None),
                               self.redact(f"{e.status or ''} {e.message or ''}".strip()),
                               parse_retry_after(headers)) from None
        except LLMError:
            raise
        except Exception as e:  # noqa: BLE001 - classify transport failures, re-raise the rest redacted
            raise _classify(e, self.redact(f"{type(e).__name__}: {e}")) from None
        um = resp.usage_metadata
        tin = int(getattr(um, "prompt_token_count", 0) or 0) if um else 0
        tout = int(getattr(um, "candidates_token_count", 0) or 0) if um else 0
        blocked = _blocked(resp)
        if blocked:
            return Reply(None, tin, tout, blocked=blocked)
        return Reply(resp.text, tin, tout)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001, S110 - best effort: closing a finished client
                pass
        super().close()


def _classify(e: BaseException, msg: str) -> LLMError:
    kind = transport_kind(e)
    if kind:
        return RetryableLLMError(msg, None, kind)
    if is_truncated_body(e):
        return RetryableLLMError(f"truncated or non-JSON response body: {msg}", 200, "truncated")
    return PermanentLLMError(msg, None, "error")


def _blocked(resp) -> str | None:
    """A reason string if Gemini's safety system blocked the prompt or the answer."""
    fb = getattr(resp, "prompt_feedback", None)
    if fb is not None and getattr(fb, "block_reason", None):
        return f"blocked by Gemini safety filter: {fb.block_reason}"
    for c in getattr(resp, "candidates", None) or []:
        fr = str(getattr(c, "finish_reason", "") or "")
        if fr.endswith(_BLOCKED):
            return f"answer blocked by Gemini safety filter: {fr}"
    return None
