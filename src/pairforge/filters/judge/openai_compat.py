"""An OpenAI-compatible chat server (vLLM, SGLang, OpenAI itself) as the judge.

Structured output is requested (``response_format`` json_schema, or vLLM's ``structured_outputs``), but a
server may ignore the request and still answer 200 (vLLM dropped ``guided_json`` in 0.12 and silently
ignores it), so every reply is validated against the schema by the caller. The SDK's own retries are
off; pairforge's retry loop counts attempts.
"""
from __future__ import annotations

import base64

from pairforge.filters.config import OpenAIBackendConfig
from pairforge.filters.judge.base import (
    EncodedImage,
    JudgeBackend,
    Reply,
    _generic_error,
)
from pairforge.filters.judge.gemini import api_key_from_env
from pairforge.filters.judge.verdict import json_schema


class OpenAIBackend(JudgeBackend):
    name = "openai"

    def __init__(self, config: OpenAIBackendConfig, timeout_s: float = 60.0):
        super().__init__()
        self.config = config
        self.timeout_s = timeout_s
        self._client = None

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_client"] = None
        d["secrets"] = []
        return d

    def setup(self) -> None:
        import openai

        key = None
        if self.config.api_key_env:
            key, _ = api_key_from_env(self.config.api_key_env)
        self.secrets = [key] if key else []
        # vLLM without --api-key accepts any key; the SDK insists on a non-empty one
        self._client = openai.OpenAI(
            base_url=self.config.base_url, api_key=key or "EMPTY", max_retries=0, timeout=self.timeout_s
        )

    def _structured(self) -> dict:
        mode = self.config.structured_output
        schema = json_schema()
        if mode == "response_format":
            return {"response_format": {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}}
        if mode == "structured_outputs":
            return {"extra_body": {"structured_outputs": {"json": schema}}}
        return {}

    def ask(self, image: EncodedImage, instructions: str) -> Reply:
        if self._client is None:
            self.setup()
        url = f"data:{image.mime};base64," + base64.b64encode(image.data).decode("ascii")
        resp = self._client.chat.completions.create(
            model=self.config.model,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": url}},
                        {"type": "text", "text": instructions},
                    ],
                }
            ],
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            **self._structured(),
        )
        u = resp.usage
        tin = int(getattr(u, "prompt_tokens", 0) or 0) if u else 0
        tout = int(getattr(u, "completion_tokens", 0) or 0) if u else 0
        text = resp.choices[0].message.content if resp.choices else None
        return Reply(text, tin, tout)

    def classify_error(self, exc: BaseException) -> tuple[str, bool]:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return "timeout", True
        if isinstance(exc, openai.APIConnectionError):
            return "connection", True
        if isinstance(exc, openai.APIStatusError):
            code = int(exc.status_code)
            if code == 429:
                return "rate_limit", True
            if code >= 500:
                return "server", True
            if code in (408, 409):
                return "timeout" if code == 408 else "conflict", True
            return f"http_{code}", False
        return _generic_error(exc)
