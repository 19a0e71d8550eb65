"""One client interface over every provider, and the one retry policy (tenacity) around it.

A provider implements :meth:`LLMClient.send` (one request -> one :class:`Reply`, raising
:class:`~pairforge.llm.errors.LLMError` already classified and redacted) or, for local models,
:meth:`LLMClient.send_batch`. Callers use :meth:`LLMClient.call` (one logical request, retried) or
:meth:`LLMClient.call_many` (many, remote ones on a bounded thread pool, local ones generated in
batches, every item retried on its own). Every attempt is written to the usage log before it is sent
(:mod:`pairforge.llm.usage`). SDK-internal retries are off, so there is exactly one retry policy.
"""
from __future__ import annotations

import abc
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import tenacity
from pydantic import BaseModel

from pairforge.errors import UserError
from pairforge.llm.config import LLMConfig, RetryPolicy
from pairforge.llm.errors import LLMError, MalformedReply, PermanentLLMError
from pairforge.llm.replies import parse_json_reply
from pairforge.llm.secrets import redact
from pairforge.llm.usage import CallUsage, UsageLog

log = logging.getLogger("pairforge.llm")

T = TypeVar("T")


@dataclass(frozen=True)
class ImagePart:
    """An encoded image sent with a request (``array``: the RGB pixels, for local models)."""

    data: bytes
    mime: str
    array: np.ndarray | None = None


@dataclass(frozen=True)
class Request:
    """One request: an optional system message, the user text, optional images, the reply schema."""

    user: str
    system: str | None = None
    images: tuple[ImagePart, ...] = ()
    schema: type[BaseModel] | None = None
    seed: int | None = None
    attempt: int = 1  # set by the retry loop of local models (a retry samples instead of repeating)


@dataclass
class Reply:
    """A provider's answer: the text (or a safety block reason) and token counts."""

    text: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    blocked: str | None = None  # e.g. Gemini's safety system refused to answer


@dataclass
class Outcome(Generic[T]):
    """One logical call: the parsed value, or the last error after ``usage.requests`` attempts."""

    value: T | None
    error: LLMError | None
    usage: CallUsage = field(default_factory=CallUsage)

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def default_parse(reply: Reply, request: Request) -> Any:
    """The schema's object from the reply text (a blocked reply is malformed unless the caller knows
    better)."""
    if reply.blocked:
        raise PermanentLLMError(reply.blocked, kind="blocked")
    if request.schema is None:
        if not reply.text:
            raise MalformedReply("empty reply", kind="empty")
        return reply.text
    return parse_json_reply(reply.text, request.schema)


def backoff_wait(policy: RetryPolicy, jitter: Callable[[], float] = random.random):
    """tenacity wait: exponential with jitter, or the server's Retry-After when it asked for longer
    (capped at ``retry_after_max_s``)."""
    exp = tenacity.wait_exponential_jitter(initial=policy.initial_wait_s, max=policy.max_wait_s,
                                           jitter=policy.initial_wait_s / 2)

    def wait(rs: tenacity.RetryCallState) -> float:
        w = exp(rs)
        exc = rs.outcome.exception() if rs.outcome else None
        ra = getattr(exc, "retry_after", None)
        if ra is not None and policy.retry_after_max_s > 0:
            w = max(w, min(float(ra), policy.retry_after_max_s))
        return w

    return wait


class LLMClient(abc.ABC):
    """One provider endpoint. ``send`` may be called from several threads at once."""

    #: local models answer many requests in one generate call
    batched: bool = False

    def __init__(self, config: LLMConfig, usage: UsageLog | None = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.usage = usage
        self.sleep = sleep
        self._secrets: tuple[str, ...] = ()
        self._pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ provider interface
    def connect(self) -> None:
        """Create the SDK client (remote providers); raises :class:`MissingAPIKey` naming the variables.
        Called before the first request is logged, so a configuration error is never a request."""

    def send(self, request: Request) -> Reply:
        """One attempt; raises a classified, redacted LLMError."""
        return self.send_batch([request])[0]

    def send_batch(self, requests: list[Request]) -> list[Reply]:
        return [self.send(r) for r in requests]

    def close(self) -> None:
        """Release connections, threads, models; idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self.usage is not None:
            self.usage.close()

    def __getstate__(self):  # clients, keys and models never travel to another process
        d = dict(self.__dict__)
        d["_pool"] = None
        d["_secrets"] = ()
        for k in self._transient():
            d[k] = None
        return d

    def _transient(self) -> tuple[str, ...]:
        return ()

    def redact(self, text: object) -> str:
        return redact(text, self._secrets)

    # ------------------------------------------------------------------ retry + accounting
    def _classify(self, exc: BaseException) -> LLMError:
        if isinstance(exc, LLMError):
            return exc
        return PermanentLLMError(self.redact(f"{type(exc).__name__}: {exc}")[:2000], kind="error")

    def _attempt(self, requests: list[Request], calls: list[str], attempt: int) -> list[tuple[Reply | None, LLMError | None, float, str | None]]:
        """Send ``requests`` once (one batch for local models); each is logged as begun before it is
        sent. The caller parses each reply and logs its end (:meth:`_finish`)."""
        cfg = self.config
        self.connect()  # a missing key is the user's error, raised as such (never retried or recorded)
        rids = [self.usage.begin(c, attempt, cfg.provider, cfg.model) if self.usage else None for c in calls]
        t0 = time.perf_counter()
        try:
            replies = self.send_batch(requests) if self.batched else [self.send(requests[0])]
            results: list[tuple[Reply | None, LLMError | None]] = [(r, None) for r in replies]
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - classified here; a whole batch fails together
            err = self._classify(e)
            results = [(None, err) for _ in requests]
        dt = (time.perf_counter() - t0) / max(1, len(requests))
        return [(reply, err, dt, rid) for rid, (reply, err) in zip(rids, results)]

    def _finish(self, usage: CallUsage, rid: str | None, reply: Reply | None, err: LLMError | None,
                dt: float, parse, request: Request):
        """Account one attempt, parse its reply; returns (value, error) and logs the attempt's end
        (``ok`` only when the reply parsed: a malformed 200 is a failed, billed request)."""
        usage.requests += 1
        usage.seconds += dt
        tin = reply.input_tokens if reply else 0
        tout = reply.output_tokens if reply else 0
        cost = self.config.cost(tin, tout)
        usage.input_tokens += tin
        usage.output_tokens += tout
        usage.cost_usd += cost
        value = None
        if reply is not None and err is None:
            try:
                value = parse(reply, request)
            except LLMError as e:
                err = e
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001 - a parser bug: recorded, redacted
                err = self._classify(e)
        if self.usage is not None and rid is not None:
            status = err.status if err is not None else 200
            if err is not None and status is None and reply is not None:
                status = 200
            self.usage.end(rid, err is None, status, None if err is None else err.kind, tin, tout, cost, dt)
        return value, err

    def _retryable(self, err: LLMError) -> bool:
        if isinstance(err, MalformedReply):
            return self.config.retry.retry_malformed
        return err.retryable

    def call(self, request: Request, parse: Callable[[Reply, Request], T] = default_parse,
             what: str = "request") -> Outcome[T]:
        """One logical request with retries; never raises an LLMError (it is in the outcome)."""
        policy = self.config.retry
        usage = CallUsage()
        call_id = self.usage.new_call() if self.usage else ""

        def once() -> T:
            (reply, err, dt, rid), = self._attempt([request], [call_id], usage.requests + 1)
            value, err = self._finish(usage, rid, reply, err, dt, parse, request)
            if err is not None:
                raise err
            return value

        def before_sleep(rs: tenacity.RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            log.warning("%s failed (attempt %d/%d), retrying in %.1fs: %s", what, rs.attempt_number,
                        policy.max_attempts, rs.next_action.sleep if rs.next_action else 0.0, self.redact(exc))

        r = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.max_attempts),
            wait=backoff_wait(policy),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, LLMError) and self._retryable(e)),
            before_sleep=before_sleep,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            value = r(once)
            return Outcome(value, None, usage)
        except LLMError as e:
            return Outcome(None, e, usage)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - a parser bug or similar: recorded, redacted
            return Outcome(None, self._classify(e), usage)

    def call_many(self, requests: list[Request], parse: Callable[[Reply, Request], T] = default_parse,
                  what: str = "request") -> list[Outcome[T]]:
        """One outcome per request, in order."""
        if not requests:
            return []
        if self.batched:
            return self._call_batched(requests, parse)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="llm")
        return list(self._pool.map(lambda r: self.call(r, parse, what), requests))

    def _call_batched(self, requests: list[Request], parse) -> list[Outcome]:
        """Local models: generate for every pending request in chunks of ``generate_batch_size``; the
        items whose reply failed (retryably) are generated again, up to ``max_attempts`` each."""
        policy = self.config.retry
        outs = [Outcome(None, None, CallUsage()) for _ in requests]
        calls = [self.usage.new_call() if self.usage else "" for _ in requests]
        pending = list(range(len(requests)))
        bs = self.config.generate_batch_size
        for attempt in range(1, policy.max_attempts + 1):
            again = []
            for c in range(0, len(pending), bs):
                chunk = pending[c:c + bs]
                reqs = [self._retry_request(requests[i], attempt) for i in chunk]
                for i, (reply, err, dt, rid) in zip(chunk, self._attempt(reqs, [calls[i] for i in chunk], attempt)):
                    value, err = self._finish(outs[i].usage, rid, reply, err, dt, parse, requests[i])
                    outs[i].value, outs[i].error = value, err
                    if err is not None and self._retryable(err):
                        again.append(i)
            pending = again
            if not pending:
                break
            log.warning("%d of %d local generations failed (attempt %d/%d)%s", len(pending), len(requests),
                        attempt, policy.max_attempts, ", retrying" if attempt < policy.max_attempts else "")
        return outs

    def _retry_request(self, request: Request, attempt: int) -> Request:
        """The request for attempt ``attempt`` (a local model samples on a retry: greedy decoding would
        repeat the same malformed reply)."""
        return request if attempt == 1 else dataclasses.replace(request, attempt=attempt)
