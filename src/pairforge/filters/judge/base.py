"""The judge: send each image to an MLLM backend, validate the reply, retry what is worth retrying.

Remote backends (Gemini, OpenAI-compatible) get one request per image on a bounded thread pool, with
tenacity's exponential backoff on rate limits (429), server errors (5xx), timeouts, connection errors
and (optionally) malformed replies. The local backend generates for several images at once. A failed
judgement is returned as such (never as a pass); what to do with it is the caller's failure policy.
API keys never leave the backend: every error text is scrubbed of them before it is recorded.
"""
from __future__ import annotations

import abc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pairforge.filters.config import JudgeSettings
from pairforge.filters.judge.usage import Usage, UsageCounter
from pairforge.filters.judge.verdict import (
    Verdict,
    VerdictError,
    build_instructions,
    parse_verdict,
)

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """One backend answer: the text (or a verdict the backend decided itself) and token counts."""

    text: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    verdict: Verdict | None = None  # e.g. a safety block, which is itself a verdict


@dataclass
class EncodedImage:
    data: bytes
    mime: str
    array: np.ndarray  # the (downscaled) RGB image, for backends that want pixels


class JudgeBackend(abc.ABC):
    """One way of asking an MLLM. Remote backends implement :meth:`ask`; batched ones :meth:`ask_batch`."""

    name: str = "backend"
    batched: bool = False

    def __init__(self):
        self.secrets: list[str] = []

    @property
    def model(self) -> str:
        return getattr(self.config, "model", "?")

    def setup(self) -> None:
        """Create clients / load weights (once per worker)."""

    def ask(self, image: EncodedImage, instructions: str) -> Reply:
        raise NotImplementedError(f"{self.name} answers in batches")

    def ask_batch(self, images: list[EncodedImage], instructions: str) -> list[Reply]:
        raise NotImplementedError(f"{self.name} answers one request at a time")

    def classify_error(self, exc: BaseException) -> tuple[str, bool]:
        """(error type, retryable) for an exception raised by ask/ask_batch."""
        return _generic_error(exc)


def _generic_error(exc: BaseException) -> tuple[str, bool]:
    name = type(exc).__name__.lower()
    if "timeout" in name or isinstance(exc, TimeoutError):
        return "timeout", True
    if "connect" in name or "network" in name or "remoteprotocol" in name or isinstance(exc, ConnectionError):
        return "connection", True
    return "error", False


def scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


@dataclass
class Judgement:
    """The outcome of judging one image: a verdict, or an error after ``attempts`` tries."""

    verdict: Verdict | None
    attempts: int
    seconds: float
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is not None

    def record(self, backend: str, model: str) -> dict:
        """The JSON written into the sample's metadata."""
        rec: dict = {"backend": backend, "model": model, "attempts": self.attempts, "seconds": round(self.seconds, 3)}
        if self.verdict is not None:
            rec.update(self.verdict.model_dump())
        else:
            rec.update({"passed": None, "error": self.error, "error_type": self.error_type})
        rec["usage"] = {
            "requests": self.usage.requests,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cost_usd": round(self.usage.cost_usd, 6),
        }
        return rec


def encode_image(img: np.ndarray, max_side: int, fmt: str = "png") -> EncodedImage:
    """Downscale (long side <= max_side, area filter) and encode for transport."""
    h, w = img.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        mime = "image/jpeg"
    else:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        mime = "image/png"
    if not ok:
        raise RuntimeError("image encoding failed")
    return EncodedImage(buf.tobytes(), mime, img)


class _Malformed(Exception):
    """Raised inside the retry loop so that a malformed reply can be retried like a transport error."""

    def __init__(self, err: VerdictError):
        super().__init__(str(err))


class Judge:
    """Judges images with one backend under one :class:`JudgeSettings`; keeps a usage counter."""

    def __init__(self, settings: JudgeSettings, backend: JudgeBackend, sleep=time.sleep):
        self.settings = settings
        self.backend = backend
        self.instructions = build_instructions(list(settings.checks), settings.instructions)
        self.counter = UsageCounter()
        self._sleep = sleep
        self._pool: ThreadPoolExecutor | None = None

    def setup(self) -> None:
        self.backend.setup()
        if not self.backend.batched:
            self._pool = ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix="judge")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _cost(self, u: Usage) -> float:
        s = self.settings
        return (u.input_tokens * s.price_per_million_input_tokens + u.output_tokens * s.price_per_million_output_tokens) / 1e6

    def judge_images(self, images: list[np.ndarray]) -> list[Judgement]:
        """One judgement per image, in order."""
        if not images:
            return []
        encoded = [encode_image(im, self.settings.max_side, self.settings.image_format) for im in images]
        if self.backend.batched:
            out = self._judge_batched(encoded)
        else:
            if self._pool is None:
                self.setup()
            out = list(self._pool.map(self._judge_one, encoded))
        for j in out:
            j.usage.samples = 1
            j.usage.failures = 0 if j.ok else 1
            j.usage.cost_usd = self._cost(j.usage)
            self.counter.add(j.usage)
        return out

    def _judge_one(self, image: EncodedImage) -> Judgement:
        s = self.settings
        usage = Usage()
        t0 = time.perf_counter()
        last_type = {"t": None}

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, _Malformed):
                last_type["t"] = "malformed"
                return s.retry_malformed
            etype, again = self.backend.classify_error(exc)
            last_type["t"] = etype
            return again

        retrying = Retrying(
            stop=stop_after_attempt(s.max_attempts),
            wait=wait_exponential_jitter(initial=s.backoff_initial_s, max=s.backoff_max_s, jitter=s.backoff_initial_s),
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    usage.requests += 1
                    reply = self.backend.ask(image, self.instructions)
                    usage.input_tokens += reply.input_tokens
                    usage.output_tokens += reply.output_tokens
                    if reply.verdict is not None:
                        verdict = reply.verdict
                    else:
                        try:
                            verdict = parse_verdict(reply.text)
                        except VerdictError as e:
                            raise _Malformed(e) from None
            usage.retries = usage.requests - 1
            usage.seconds = time.perf_counter() - t0
            return Judgement(verdict, usage.requests, usage.seconds, usage)
        except Exception as e:  # noqa: BLE001 - every failure becomes a recorded judge_error
            if last_type["t"] is None:
                last_type["t"] = self.backend.classify_error(e)[0]
            usage.retries = max(0, usage.requests - 1)
            usage.seconds = time.perf_counter() - t0
            msg = scrub(f"{type(e).__name__}: {e}", self.backend.secrets)[:500]
            log.warning("judge %s failed after %d attempt(s): %s", self.backend.name, usage.requests, msg)
            return Judgement(None, usage.requests, usage.seconds, usage, error=msg, error_type=last_type["t"])

    def _judge_batched(self, encoded: list[EncodedImage]) -> list[Judgement]:
        out: list[Judgement] = []
        bs = max(1, getattr(self.backend.config, "generate_batch_size", len(encoded)))
        for c in range(0, len(encoded), bs):
            chunk = encoded[c : c + bs]
            t0 = time.perf_counter()
            try:
                replies = self.backend.ask_batch(chunk, self.instructions)
            except Exception as e:  # noqa: BLE001 - e.g. out of memory: every image of the chunk failed
                dt = (time.perf_counter() - t0) / len(chunk)
                msg = scrub(f"{type(e).__name__}: {e}", self.backend.secrets)[:500]
                log.warning("judge %s failed on a batch of %d: %s", self.backend.name, len(chunk), msg)
                etype = self.backend.classify_error(e)[0]
                out.extend(Judgement(None, 1, dt, Usage(requests=1, seconds=dt), msg, etype) for _ in chunk)
                continue
            dt = (time.perf_counter() - t0) / len(chunk)
            for r in replies:
                u = Usage(requests=1, input_tokens=r.input_tokens, output_tokens=r.output_tokens, seconds=dt)
                try:
                    v = r.verdict if r.verdict is not None else parse_verdict(r.text)
                    out.append(Judgement(v, 1, dt, u))
                except VerdictError as e:
                    out.append(Judgement(None, 1, dt, u, error=scrub(str(e), self.backend.secrets)[:500], error_type="malformed"))
        return out


def make_backend(settings: JudgeSettings, device: str = "cpu") -> JudgeBackend:
    """The backend named by ``settings.backend.type`` (imports its SDK lazily)."""
    cfg = settings.backend
    if cfg.type == "gemini":
        from pairforge.filters.judge.gemini import GeminiBackend

        return GeminiBackend(cfg, timeout_s=settings.timeout_s)
    if cfg.type == "openai":
        from pairforge.filters.judge.openai_compat import OpenAIBackend

        return OpenAIBackend(cfg, timeout_s=settings.timeout_s)
    if cfg.type == "local":
        from pairforge.filters.judge.local_vlm import LocalVLMBackend

        return LocalVLMBackend(cfg, device=device)
    raise ValueError(f"unknown judge backend {cfg.type!r}")

