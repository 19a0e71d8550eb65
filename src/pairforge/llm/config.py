"""The one config vocabulary of every LLM / MLLM endpoint pairforge talks to (prompt writing, the prompt
privacy check, the image judge): which provider, which model, how to retry, what a token costs.

Older configs spelled this two ways (``backend: transformers`` in prompts, ``backend: {type: local}`` in
the judge); :func:`migrate_legacy` rewrites both to this vocabulary with a warning that names the new
spelling, so old config files and the configs stored in old run directories keep loading.
"""
from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pairforge.configbase import ModelSpec, StrictModel

Provider = Literal["gemini", "openai", "transformers"]


class ConfigDeprecationWarning(FutureWarning):
    """A config key spelled the old way (shown to users by default, unlike DeprecationWarning)."""


def deprecated(old: str, new: str) -> None:
    """Warn about an old spelling in one line that names the config, not pairforge's source."""
    warnings.warn_explicit(f"{old} is deprecated, write {new}", ConfigDeprecationWarning, "<config>", 0)


class RetryPolicy(StrictModel):
    """Exponential backoff (with jitter) on rate limits (429), server errors (5xx), timeouts, dropped
    connections, truncated bodies and (``retry_malformed``) replies that fail schema validation. A
    server's ``Retry-After`` (seconds or an HTTP date, or ``retry-after-ms``) on 429/503 is honoured,
    capped at ``retry_after_max_s``. Other client errors (400, 401, 403) are permanent."""

    max_attempts: int = Field(6, ge=1, le=50, description="attempts per request, the first included")
    initial_wait_s: float = Field(2.0, ge=0, description="first backoff; doubles each retry")
    max_wait_s: float = Field(60.0, ge=0, description="cap on one backoff")
    timeout_s: float = Field(120.0, gt=0, description="per-request timeout")
    retry_after_max_s: float = Field(60.0, ge=0, description="cap on a server's Retry-After (0 = ignore it)")
    retry_malformed: bool = Field(True, description="retry replies that do not match the schema")


class LLMConfig(ModelSpec):
    """An LLM or MLLM endpoint. API keys are read from the environment only and never written anywhere.

    ``revision``, ``cache_dir``, ``device``, ``dtype`` and ``generate_batch_size`` apply to the
    ``transformers`` provider (a local model) only."""

    provider: Provider = Field(
        ..., description="gemini (google-genai), openai (any OpenAI-compatible server, e.g. vLLM), "
        "transformers (a local model)")
    model: str = Field(..., min_length=1, description="model name (API) or hub id / local path (transformers)")
    base_url: str | None = Field(None, description="API base url (OpenAI-compatible servers, proxies, tests)")
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="NAME of the environment variable holding the key (default: GOOGLE_API_KEY/GEMINI_API_KEY "
        "for gemini, OPENAI_API_KEY for openai); the key itself never goes in a config",
    )
    temperature: float = Field(1.0, ge=0, le=2)
    max_output_tokens: int = Field(4096, ge=8)
    concurrency: int = Field(4, ge=1, le=256, description="requests in flight at once (per worker)")
    retry: RetryPolicy = RetryPolicy()
    structured_output: Literal["response_format", "structured_outputs", "none"] = Field(
        "response_format",
        description="openai provider: response_format json_schema (OpenAI, vLLM), vLLM's extra_body "
        "structured_outputs, or none; every reply is validated against the schema either way",
    )
    generate_batch_size: int = Field(4, ge=1, description="transformers provider: prompts per generate call")
    price_per_million_input_tokens: float = Field(0.0, ge=0, description="for the cost accounting (USD)")
    price_per_million_output_tokens: float = Field(0.0, ge=0, description="for the cost accounting (USD)")

    @model_validator(mode="before")
    @classmethod
    def _old_spelling(cls, data: Any) -> Any:
        return migrate_llm_dict(data, "llm")

    @field_validator("api_key_env")
    @classmethod
    def _not_a_key(cls, v: str | None) -> str | None:
        # a long random-looking value is almost certainly a pasted key, not a variable name
        if v is not None and len(v) > 64:
            raise ValueError("api_key_env must be the NAME of an environment variable, not a key")
        return v

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one request's tokens at the configured prices."""
        return (input_tokens * self.price_per_million_input_tokens
                + output_tokens * self.price_per_million_output_tokens) / 1e6


def migrate_llm_dict(data: Any, where: str) -> Any:
    """``backend: X`` (the prompts' old spelling) -> ``provider: X``."""
    if isinstance(data, dict) and "backend" in data:
        if "provider" in data:
            raise ValueError(f"{where}: give provider (backend is its old name), not both")
        data = dict(data)
        data["provider"] = data.pop("backend")
        deprecated(f"{where} key `backend: {data['provider']}`", f"`provider: {data['provider']}`")
    return data


#: the judge's old top-level retry / pricing keys and where they live now (under ``llm:``)
_JUDGE_MOVED = {
    "max_attempts": ("retry", "max_attempts"),
    "retry_malformed": ("retry", "retry_malformed"),
    "backoff_initial_s": ("retry", "initial_wait_s"),
    "backoff_max_s": ("retry", "max_wait_s"),
    "timeout_s": ("retry", "timeout_s"),
    "max_concurrency": (None, "concurrency"),
    "price_per_million_input_tokens": (None, "price_per_million_input_tokens"),
    "price_per_million_output_tokens": (None, "price_per_million_output_tokens"),
}
#: the judge's old ``backend:`` keys -> LLMConfig keys
_JUDGE_BACKEND_KEYS = {"type": "provider", "max_tokens": "max_output_tokens", "max_new_tokens": "max_output_tokens"}
_OLD_TYPES = {"local": "transformers", "gemini": "gemini", "openai": "openai"}


def migrate_judge_dict(data: Any, where: str) -> Any:
    """The judge's old layout (``backend: {type: local|gemini|openai, ...}`` plus top-level retry and
    price keys) -> ``llm: {provider: ..., retry: {...}, ...}``, warning once per old key."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    llm = data.get("llm")
    if "backend" in data:
        if llm is not None:
            raise ValueError(f"{where}: give llm (backend is its old name), not both")
        old = dict(data.pop("backend") or {})
        llm = {}
        for k, v in old.items():
            if k == "local_files_only":
                if v is False:
                    raise ValueError(f"{where}.backend.local_files_only: false is no longer supported: nothing "
                                     f"downloads during a run; fetch the model with `pairforge models pull "
                                     f"CONFIG --cache DIR` and set {where}.llm.cache_dir: DIR")
                continue
            if k == "type":
                v = _OLD_TYPES.get(v, v)
            llm[_JUDGE_BACKEND_KEYS.get(k, k)] = v
        if old.get("type") == "openai" and old.get("api_key_env", "OPENAI_API_KEY") == "OPENAI_API_KEY":
            llm.pop("api_key_env", None)  # the old default: a key if set, none required
        deprecated(f"{where}.backend: {{type: {old.get('type')}, ...}}",
                   f"{where}.llm: {{provider: {llm.get('provider')}, ...}}")
    moved = [k for k in _JUDGE_MOVED if k in data]
    if moved:
        llm = dict(llm or {})
        for k in moved:
            section, new = _JUDGE_MOVED[k]
            if section:
                llm[section] = {**(llm.get(section) or {}), new: data.pop(k)}
                deprecated(f"{where}.{k}", f"{where}.llm.{section}.{new}")
            else:
                llm[new] = data.pop(k)
                deprecated(f"{where}.{k}", f"{where}.llm.{new}")
    if llm is not None:
        data["llm"] = llm
    return data
