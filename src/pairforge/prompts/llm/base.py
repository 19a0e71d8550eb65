"""What every LLM backend shares: one call = (system, user, schema) -> a validated pydantic object.

Backends translate their SDK's failures into two kinds: :class:`RetryableLLMError` (rate limits, 5xx,
timeouts, connection drops, a reply that is not valid JSON for the schema) and :class:`PermanentLLMError`
(authentication, bad request). :func:`call_with_retry` retries the first kind with exponential backoff
(tenacity); SDK-internal retries are switched off so there is exactly one retry policy.
"""
from __future__ import annotations

import abc
import json
import logging
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from pairforge.prompts.config import LLMConfig, RetryConfig
from pairforge.prompts.secrets import redact

log = logging.getLogger("pairforge.prompts.llm")

T = TypeVar("T", bound=BaseModel)


class LLMError(Exception):
    """A failed LLM request; the message is already redacted."""

    status: int | None = None

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryableLLMError(LLMError):
    pass


class PermanentLLMError(LLMError):
    pass


RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def status_error(status: int | None, message: str, secrets: tuple[str, ...] = ()) -> LLMError:
    """Classify an HTTP status into a retryable or permanent error."""
    msg = redact(f"HTTP {status}: {message}" if status else message, secrets)[:2000]
    if status is None or status in RETRYABLE_STATUS or status >= 500:
        return RetryableLLMError(msg, status)
    return PermanentLLMError(msg, status)


def is_transport_error(exc: BaseException) -> bool:
    """Timeouts and connection failures of httpx/httpx2/requests/aiohttp (retryable)."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"TimeoutException", "TransportError", "NetworkError", "ConnectError",
                         "ReadTimeout", "ConnectTimeout", "RemoteProtocolError", "ClientConnectorError"})


_JSON_BLOCK = re.compile(r"\{.*\}", re.S)


def parse_reply(text: str | None, schema: type[T]) -> T:
    """Validate a reply against the schema (never trust a server to have enforced it: vLLM ignores
    unknown guided-decoding parameters and answers 200 with free text)."""
    if not text:
        raise RetryableLLMError("empty reply")
    try:
        return schema.model_validate_json(text)
    except ValidationError as first:
        # local models wrap JSON in prose or code fences: try the outermost {...}
        m = _JSON_BLOCK.search(text)
        if m and m.group(0) != text:
            try:
                return schema.model_validate(json.loads(m.group(0)))
            except (ValidationError, ValueError):
                pass
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in first.errors()[:3])
        raise RetryableLLMError(f"reply does not match the {schema.__name__} schema ({errs})") from None


def json_schema_for(schema: type[BaseModel]) -> dict:
    """The JSON schema of a pydantic model, closed (additionalProperties false) for strict modes."""
    return schema.model_json_schema()


class LLMClient(abc.ABC):
    """One backend. Implementations must be safe to call from several threads (or serialise inside)."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self._secrets: tuple[str, ...] = ()

    @abc.abstractmethod
    def complete(self, system: str, user: str, schema: type[T], seed: int | None = None) -> T:
        """One request; raises RetryableLLMError / PermanentLLMError."""

    def describe(self) -> dict:
        """Provenance for caches and metadata (never includes a key)."""
        return {"backend": self.config.backend, "model": self.config.model, "base_url": self.config.base_url}

    def close(self) -> None:
        """Release connections or models."""


def call_with_retry(client: LLMClient, system: str, user: str, schema: type[T], seed: int | None = None,
                    retry: RetryConfig | None = None, what: str = "request") -> T:
    """``client.complete`` with exponential backoff on retryable errors; the last error is re-raised."""
    import tenacity

    retry = retry or client.config.retry

    def _log(rs: tenacity.RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        log.warning("%s failed (attempt %d/%d), retrying in %.1fs: %s", what, rs.attempt_number,
                    retry.max_attempts, rs.next_action.sleep if rs.next_action else 0.0,
                    redact(str(exc), client._secrets))

    r = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retry.max_attempts),
        wait=tenacity.wait_exponential_jitter(initial=retry.initial_wait_s, max=retry.max_wait_s,
                                              jitter=retry.initial_wait_s / 2),
        retry=tenacity.retry_if_exception_type(RetryableLLMError),
        before_sleep=_log,
        reraise=True,
    )
    return r(client.complete, system, user, schema, seed)
