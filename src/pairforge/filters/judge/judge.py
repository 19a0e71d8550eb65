"""The judge: send each image to an MLLM through :mod:`pairforge.llm`, validate the verdict, record it.

Remote providers get one request per image on a bounded thread pool; a local VLM generates for several
images at once. Retries (rate limits, 5xx, timeouts, truncated bodies, ``Retry-After``, malformed replies
per ``retry_malformed``) are the provider layer's one policy, for both paths. A failed judgement is
returned as such (never as a pass); what to do with it is the caller's failure policy. Every request is
in the run directory's usage log (``usage/<stage name>/``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from pairforge.filters.config import JudgeSettings
from pairforge.filters.judge.verdict import Verdict, build_instructions, parse_verdict
from pairforge.llm import (
    CallUsage,
    ImagePart,
    LLMClient,
    Reply,
    Request,
    UsageLog,
    make_client,
)

log = logging.getLogger(__name__)


@dataclass
class Judgement:
    """The outcome of judging one image: a verdict, or an error after ``attempts`` tries."""

    verdict: Verdict | None
    attempts: int
    seconds: float
    usage: CallUsage = field(default_factory=CallUsage)
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is not None

    def record(self, provider: str, model: str) -> dict:
        """The JSON written into the sample's metadata."""
        rec: dict = {"provider": provider, "model": model, "attempts": self.attempts, "seconds": round(self.seconds, 3)}
        if self.verdict is not None:
            rec.update(self.verdict.model_dump())
        else:
            rec.update({"passed": None, "error": self.error, "error_type": self.error_type})
        u = self.usage.to_dict()
        rec["usage"] = {k: u[k] for k in ("requests", "input_tokens", "output_tokens", "cost_usd")}
        return rec


def encode_image(img: np.ndarray, max_side: int, fmt: str = "png") -> ImagePart:
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
    return ImagePart(buf.tobytes(), mime, img)


def _parse(reply: Reply, request: Request) -> Verdict:
    if reply.blocked:  # a safety block is itself a verdict
        return Verdict(passed=False, reasons=[reply.blocked], categories=["unsafe"])
    return parse_verdict(reply.text)


class Judge:
    """Judges images with one LLM client under one :class:`JudgeSettings`."""

    def __init__(self, settings: JudgeSettings, client: LLMClient):
        self.settings = settings
        self.client = client
        self.instructions = build_instructions(list(settings.checks), settings.instructions)

    @property
    def provider(self) -> str:
        return self.settings.llm.provider

    @property
    def model(self) -> str:
        return self.settings.llm.model

    def setup(self) -> None:
        """Fail now, not per sample, on what cannot work: a missing key, missing local weights."""
        if hasattr(self.client, "connect"):
            self.client.connect()
        if hasattr(self.client, "load"):
            self.client.load(vision=True)

    def close(self) -> None:
        self.client.close()

    def flush(self) -> None:
        if self.client.usage is not None:
            self.client.usage.flush()

    def judge_images(self, images: list[np.ndarray]) -> list[Judgement]:
        """One judgement per image, in order."""
        if not images:
            return []
        s = self.settings
        reqs = [Request(self.instructions, images=(encode_image(im, s.max_side, s.image_format),), schema=Verdict)
                for im in images]
        out = []
        for o in self.client.call_many(reqs, _parse, what=f"judge ({self.provider})"):
            if o.ok:
                out.append(Judgement(o.value, o.usage.requests, o.usage.seconds, o.usage))
            else:
                msg = str(o.error)[:500]
                log.warning("judge %s failed after %d attempt(s): %s", self.provider, o.usage.requests, msg)
                out.append(Judgement(None, o.usage.requests, o.usage.seconds, o.usage, msg, o.error.kind))
        return out


def make_judge(settings: JudgeSettings, device: str | None = None, storage=None, component: str = "judge",
               **client_kw) -> Judge:
    """A judge over the client of ``settings.llm``; ``storage`` (the run directory) gets its usage log."""
    usage = UsageLog(storage, component) if storage is not None else None
    kw = dict(client_kw)
    if settings.llm.provider == "transformers":
        kw.setdefault("device", device)
    return Judge(settings, make_client(settings.llm, usage=usage, **kw))
