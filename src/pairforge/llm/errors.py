"""The one error taxonomy of every provider: what failed (``kind``), whether retrying can help, and how
long the server asked us to wait.

Kinds: ``rate_limit`` (429), ``server`` (5xx), ``timeout``, ``connection``, ``truncated`` (a 200 whose
body is cut off or not JSON), ``malformed`` (a reply that does not match the schema), ``empty``,
``auth`` (401/403), ``http_<code>`` (other 4xx), ``missing_key``, ``model_load``, ``out_of_memory``,
``error`` (anything else). Messages are always redacted before an error is built.
"""
from __future__ import annotations

import email.utils
import time

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class LLMError(Exception):
    """A failed LLM request; the message is already redacted."""

    retryable: bool = False

    def __init__(self, message: str, status: int | None = None, kind: str = "error",
                 retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.retry_after = retry_after

    def __reduce__(self):  # picklable across Ray workers with all its fields
        return (type(self), (str(self), self.status, self.kind, self.retry_after))


class RetryableLLMError(LLMError):
    retryable = True


class PermanentLLMError(LLMError):
    retryable = False


class MalformedReply(RetryableLLMError):
    """The reply arrived but is not a valid answer for the schema (retried per ``retry_malformed``)."""

    def __init__(self, message: str, status: int | None = None, kind: str = "malformed",
                 retry_after: float | None = None):
        super().__init__(message, status, kind, retry_after)


def status_kind(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status in (408, 504):
        return "timeout"
    if status >= 500:
        return "server"
    if status in (401, 403):
        return "auth"
    if status == 409:
        return "conflict"
    return f"http_{status}"


def status_error(status: int | None, message: str, retry_after: float | None = None) -> LLMError:
    """Classify an HTTP status (the message must already be redacted)."""
    msg = (f"HTTP {status}: {message}" if status else message)[:2000]
    if status is None:
        return RetryableLLMError(msg, None, "error", retry_after)
    if status in RETRYABLE_STATUS or status >= 500:
        return RetryableLLMError(msg, status, status_kind(status), retry_after)
    return PermanentLLMError(msg, status, status_kind(status))


def parse_retry_after(headers, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP
    date; None when absent or unreadable. ``headers``: any mapping with case-insensitive ``get``."""
    if headers is None:
        return None
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = get("retry-after") or get("Retry-After")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def transport_kind(exc: BaseException) -> str | None:
    """``timeout`` / ``connection`` for transport failures of httpx, requests, aiohttp; else None."""
    names = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & {"TimeoutException", "ReadTimeout", "ConnectTimeout",
                                                 "APITimeoutError", "Timeout", "WriteTimeout", "PoolTimeout"}:
        return "timeout"
    if isinstance(exc, ConnectionError) or names & {"TransportError", "NetworkError", "ConnectError",
                                                    "RemoteProtocolError", "ClientConnectorError",
                                                    "APIConnectionError", "ProtocolError", "ChunkedEncodingError"}:
        return "connection"
    return None


def is_truncated_body(exc: BaseException) -> bool:
    """A 200 whose body could not be decoded as JSON (cut off mid-way, or not JSON at all)."""
    import json

    names = {c.__name__ for c in type(exc).__mro__}
    return isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)) or bool(
        names & {"APIResponseValidationError", "JSONDecodeError"})
