"""API keys: read from the environment only, and scrubbed from every message pairforge records.

A key must never reach a log line, an exception text we store, run.json, a cache file or sample metadata;
:func:`redact` is applied to every error message before it is logged or written.
"""
from __future__ import annotations

import os

from pairforge.prompts.config import DEFAULT_KEY_ENVS

REDACTED = "***"


class MissingAPIKey(RuntimeError):
    pass


def key_env_names(backend: str, api_key_env: str | None) -> tuple[str, ...]:
    """The environment variable names a backend's key is read from, in order."""
    if api_key_env:
        return (api_key_env,)
    return DEFAULT_KEY_ENVS.get(backend, ())


def resolve_api_key(backend: str, api_key_env: str | None, required: bool = True) -> str | None:
    """The API key from the environment (never from config); raises naming the variables if missing."""
    names = key_env_names(backend, api_key_env)
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    if required and names:
        raise MissingAPIKey(
            f"no API key for the {backend} backend: set the environment variable "
            f"{' or '.join(names)} (keys are never read from config files)"
        )
    return None


def known_secrets() -> list[str]:
    """Every key-like value currently in the environment under a name pairforge may read."""
    names = {n for ns in DEFAULT_KEY_ENVS.values() for n in ns}
    return [os.environ[n] for n in names if os.environ.get(n)]


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` with every secret (and every default-named key in the environment) replaced by ***."""
    out = str(text)
    for s in list(secrets) + known_secrets():
        if s and len(s) >= 4:
            out = out.replace(s, REDACTED)
    return out
