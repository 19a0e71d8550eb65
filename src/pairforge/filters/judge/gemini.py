"""Gemini as the judge, through google-genai (google-generativeai reached end of life in 2025).

The SDK's own retries stay off (its default): pairforge's retry loop does them, so that attempts are
counted and the failure policy applies. A prompt or answer blocked by Gemini's safety system is itself a
verdict (failed, ``unsafe``), not an error.
"""
from __future__ import annotations

import os

from pairforge.filters.config import GeminiBackendConfig
from pairforge.filters.judge.base import (
    EncodedImage,
    JudgeBackend,
    Reply,
    _generic_error,
)
from pairforge.filters.judge.verdict import Verdict

DEFAULT_KEY_ENVS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")


def api_key_from_env(name: str | None, defaults: tuple[str, ...] = DEFAULT_KEY_ENVS) -> tuple[str | None, str]:
    """(key, the variable it came from); keys are read from the environment only."""
    names = (name,) if name else defaults
    for n in names:
        v = os.environ.get(n)
        if v:
            return v, n
    return None, " or ".join(names)


class GeminiBackend(JudgeBackend):
    name = "gemini"

    def __init__(self, config: GeminiBackendConfig, timeout_s: float = 60.0):
        super().__init__()
        self.config = config
        self.timeout_s = timeout_s
        self._client = None

    def __getstate__(self):  # the client (and the key it holds) never travels to another process
        d = dict(self.__dict__)
        d["_client"] = None
        d["secrets"] = []
        return d

    def setup(self) -> None:
        from google import genai
        from google.genai import types

        key, var = api_key_from_env(self.config.api_key_env)
        if not key:
            raise RuntimeError(f"the Gemini judge needs an API key in the environment variable {var}")
        self.secrets = [key]
        opts = {"timeout": max(1, int(self.timeout_s * 1000))}
        if self.config.base_url:
            opts["base_url"] = self.config.base_url
        self._client = genai.Client(api_key=key, http_options=types.HttpOptions(**opts))

    def ask(self, image: EncodedImage, instructions: str) -> Reply:
        from google.genai import types

        if self._client is None:
            self.setup()
        resp = self._client.models.generate_content(
            model=self.config.model,
            contents=[types.Part.from_bytes(data=image.data, mime_type=image.mime), instructions],
            config=types.GenerateContentConfig(
                response_mime_type="application/json",
                response_schema=Verdict,
                temperature=self.config.temperature,
            ),
        )
        um = resp.usage_metadata
        tin = int(getattr(um, "prompt_token_count", 0) or 0) if um else 0
        tout = int(getattr(um, "candidates_token_count", 0) or 0) if um else 0
        blocked = _blocked(resp)
        if blocked:
            return Reply(None, tin, tout, Verdict(passed=False, reasons=[blocked], categories=["unsafe"]))
        return Reply(resp.text, tin, tout)

    def classify_error(self, exc: BaseException) -> tuple[str, bool]:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            code = int(getattr(exc, "code", 0) or 0)
            if code == 429:
                return "rate_limit", True
            if code >= 500:
                return "server", True
            if code == 408:
                return "timeout", True
            return f"http_{code}", False
        return _generic_error(exc)


def _blocked(resp) -> str | None:
    """A reason string if Gemini's safety system blocked the prompt or the answer."""
    fb = getattr(resp, "prompt_feedback", None)
    if fb is not None and getattr(fb, "block_reason", None):
        return f"blocked by Gemini safety filter: {fb.block_reason}"
    for c in getattr(resp, "candidates", None) or []:
        fr = str(getattr(c, "finish_reason", "") or "")
        if fr.endswith(("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY")):
            return f"answer blocked by Gemini safety filter: {fr}"
    return None
