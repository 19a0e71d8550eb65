"""API keys: read from the environment only, and scrubbed from every message pairforge records.

A key must never reach a log line, an exception text we store, run.json, a cache file, a usage log or
sample metadata: :func:`redact` is applied to every error message before it is logged or written, and it
removes the keys a client was given *and* every key-like value found in the environment under a name
any provider may read (so a key echoed back by a server in an error body is scrubbed too).
"""
from __future__ import annotations

import os

from pairforge.errors import UserError

REDACTED = "***"

#: default environment variables that hold API keys, per provider (first one set wins)
DEFAULT_KEY_ENVS: dict[str, tuple[str, ...]] = {
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
}


class MissingAPIKey(UserError):
    """No key in the environment for a provider that needs one; the message names the variables."""


def key_env_names(provider: str, api_key_env: str | None) -> tuple[str, ...]:
    """The environment variable names a provider's key is read from, in order."""
    if api_key_env:
        return (api_key_env,)
    return DEFAULT_KEY_ENVS.get(provider, ())


def resolve_api_key(provider: str, api_key_env: str | None, required: bool = True) -> str | None:
    """The API key from the environment (never from config); raises naming the variables if missing."""
    names = key_env_names(provider, api_key_env)
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    if required and names:
        raise MissingAPIKey(
            f"no API key for the {provider} provider: set the environment variable "
            f"{' or '.join(names)} (keys are never read from config files)"
        )
    return None


def known_secrets(extra_names: tuple[str, ...] = ()) -> list[str]:
    """Every key-like value currently in the environment under a name pairforge may read."""
    names = {n for ns in DEFAULT_KEY_ENVS.values() for n in ns} | set(extra_names)
    return [os.environ[n] for n in names if os.environ.get(n)]


def redact(text: object, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` with every secret (and every default-named key in the environment) replaced by ***."""
    out = str(text)
    for s in sorted(set(list(secrets) + known_secrets()), key=len, reverse=True):
        if s and len(s) >= 4:
            out = out.replace(s, REDACTED)
    return out
