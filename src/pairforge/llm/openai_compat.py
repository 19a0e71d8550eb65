"""Any OpenAI-compatible chat server (OpenAI, vLLM, SGLang, llama.cpp server, ...) through the openai SDK.

vLLM >= 0.12 silently ignores the old ``guided_json`` parameters (HTTP 200, unconstrained text), so the
schema is sent the supported way (``response_format`` json_schema, or vLLM's ``structured_outputs``) and
every reply is validated again by the caller. The SDK's own retries are off.
"""
from __future__ import annotations

import base64

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


def _strict_ok(js: dict) -> bool:
    """OpenAI's strict mode needs every property required and no additional properties."""
    props = js.get("properties") or {}
    return js.get("additionalProperties") is False and set(js.get("required") or []) == set(props)


class OpenAICompatClient(LLMClient):
    def __init__(self, config, **kw):
        super().__init__(config, **kw)
        self._client = None

    def _transient(self) -> tuple[str, ...]:
        return ("_client",)

    def _connect(self):
        import openai

        c = self.config
        # a local vLLM server usually needs no key: only an explicitly named variable (or the OpenAI cloud,
        # i.e. no base_url) requires one; OPENAI_API_KEY is used when set
        key = resolve_api_key("openai", c.api_key_env, required=c.api_key_env is not None or c.base_url is None)
        self._secrets = (key,) if key else ()
        self._client = openai.OpenAI(base_url=c.base_url, api_key=key or "EMPTY", max_retries=0,
                                     timeout=c.retry.timeout_s)
        return self._client

    def connect(self) -> None:
        if self._client is None:
            self._connect()

    def _structured(self, request: Request) -> dict:
        if request.schema is None or self.config.structured_output == "none":
            return {}
        js = request.schema.model_json_schema()
        if self.config.structured_output == "structured_outputs":
            return {"extra_body": {"structured_outputs": {"json": js}}}
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": request.schema.__name__, "schema": js, "strict": _strict_ok(js)}}}

    def send(self, request: Request) -> Reply:
        import openai

        client = self._client or self._connect()
        messages: list[dict] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        if request.images:
            content: list[dict] = [
                {"type": "image_url",
                 "image_url": {"url": f"data:{im.mime};base64," + base64.b64encode(im.data).decode("ascii")}}
                for im in request.images]
            content.append({"type": "text", "text": request.user})
            messages.append({"role": "user", "content": content})
        else:
            messages.append({"role": "user", "content": request.user})
        try:
            resp = client.chat.completions.create(
                model=self.config.model, messages=messages, temperature=self.config.temperature,
                max_tokens=self.config.max_output_tokens, seed=request.seed, **self._structured(request))
        except openai.APIStatusError as e:
            raise status_error(e.status_code, self.redact(e.message),
                               parse_retry_after(getattr(e.response, "headers", None))) from None
        except LLMError:
            raise
        except Exception as e:  # noqa: BLE001
            msg = self.redact(f"{type(e).__name__}: {e}")
            kind = transport_kind(e)
            if kind:
                raise RetryableLLMError(msg, None, kind) from None
            if is_truncated_body(e):
                raise RetryableLLMError(f"truncated or non-JSON response body: {msg}", 200, "truncated") from None
            raise PermanentLLMError(msg, None, "error") from None
        u = getattr(resp, "usage", None)
        tin = int(getattr(u, "prompt_tokens", 0) or 0) if u else 0
        tout = int(getattr(u, "completion_tokens", 0) or 0) if u else 0
        if not getattr(resp, "choices", None):
            raise RetryableLLMError("reply has no choices", 200, "empty")
        msg = resp.choices[0].message
        if getattr(msg, "refusal", None):
            return Reply(None, tin, tout, blocked=self.redact(f"model refused: {msg.refusal}"))
        return Reply(msg.content, tin, tout)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001, S110 - best effort: closing a finished client
                pass
        super().close()
