"""An LLM writes the scene prompts, in numbered requests (GenIR step 3).

Request ``k`` is fully determined by (run seed, k): its theme, its sampling seed, its text. Replies are
cached in the run directory under a hash of the request, so a resumed run, or ``pairforge prompts`` run
twice, never pays for the same request again. Requests run ``concurrency`` at a time; results are
consumed in request order, so the prompt stream does not depend on which reply came back first.
A request that fails for good is recorded (redacted) and skipped; too many such failures stop the run.
Every request sent (retries included) is logged in the run directory's ``usage/prompts/`` billing log.
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from pairforge.io.storage import Storage
from pairforge.llm import CallUsage, LLMClient, Request, UsageLog, make_client
from pairforge.llm.secrets import redact
from pairforge.prompts.cache import JsonCache, request_key
from pairforge.prompts.config import LLMPromptsConfig
from pairforge.prompts.instructions import SCENE_SYSTEM, ScenePromptBatch, scene_request
from pairforge.seeding import sample_rng, sample_seed

log = logging.getLogger("pairforge.prompts.writer")

#: the run directory's usage log of prompt writing (``usage/prompts/``)
USAGE_COMPONENT = "prompts"


class PromptGenerationError(RuntimeError):
    pass


class LLMWriter:
    def __init__(self, config: LLMPromptsConfig, seed: int, storage: Storage | None = None,
                 client: LLMClient | None = None):
        self.config = config
        self.seed = seed
        self.cache = JsonCache(storage, "prompts/cache/llm")
        self.storage = storage
        self._client = client
        self.usage = CallUsage()  # this build's requests, tokens and cost (cache hits cost nothing)
        self.errors: list[dict] = []
        self.requests_made = 0
        self.system = SCENE_SYSTEM
        self._lock = threading.Lock()

    @property
    def client(self) -> LLMClient:
        if self._client is None:
            self._client = make_client(self.config.llm, usage=UsageLog(self.storage, USAGE_COMPONENT)
                                       if self.storage is not None else None)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def request(self, k: int) -> tuple[str, str, int]:
        """Theme, user message and sampling seed of request ``k``."""
        rng = sample_rng(self.seed, k, "prompts-llm")
        theme = self.config.themes[int(rng.integers(len(self.config.themes)))]
        user = scene_request(self.config.per_request, theme, self.config.instructions, k)
        seed = sample_seed(self.seed, k, "prompts-llm") % (2**31 - 1)
        return theme, user, seed

    def _key(self, user: str, seed: int) -> str:
        llm = self.config.llm
        # "backend" (not "provider"): the key of cache entries written before the rename stays the same
        return request_key({"backend": llm.provider, "model": llm.model, "revision": llm.revision,
                            "temperature": llm.temperature, "system": self.system, "user": user, "seed": seed,
                            "schema": ScenePromptBatch.model_json_schema()})

    def fetch(self, k: int) -> dict:
        """Request ``k``: from the cache, else from the LLM (cached on success). Never raises LLMError:
        a failure is returned as ``{"error": ...}``."""
        theme, user, seed = self.request(k)
        key = self._key(user, seed)
        cached = self.cache.get(key)
        if cached is not None:
            return {"request": k, "theme": theme, "prompts": cached["prompts"], "cached": True}
        out = self.client.call(Request(user, self.system, schema=ScenePromptBatch, seed=seed),
                               what=f"prompt request {k}")
        with self._lock:
            self.usage.add(out.usage)
        if out.error is not None:
            return {"request": k, "theme": theme, "error": redact(out.error), "status": out.error.status,
                    "kind": out.error.kind}
        reply = out.value
        prompts = [" ".join(p.split()) for p in reply.prompts if p and p.strip()]
        self.cache.put(key, {"request": k, "theme": theme, "prompts": prompts,
                             "model": self.config.llm.model, "backend": self.config.llm.provider})
        with self._lock:
            self.requests_made += 1
        return {"request": k, "theme": theme, "prompts": prompts, "cached": False}

    def candidates(self, need: int) -> Iterator[tuple[str, dict]]:
        """Prompts in request order, fetching in waves until the consumer stops."""
        per = self.config.per_request
        first = max(1, math.ceil(need * self.config.overshoot / per))
        limit = max(first * 10, first + 50)
        conc = self.config.llm.concurrency
        k = 0
        with ThreadPoolExecutor(max_workers=conc) as ex:
            while k < limit:
                wave = first if k == 0 else conc
                results = list(ex.map(self.fetch, range(k, k + wave)))
                k += wave
                for r in results:
                    if "error" in r:
                        self.errors.append({"request": r["request"], "error": r["error"], "status": r["status"]})
                        log.error("prompt request %d failed permanently: %s", r["request"], r["error"])
                        if len(self.errors) > self.config.max_failed_requests:
                            raise PromptGenerationError(
                                f"{len(self.errors)} LLM prompt requests failed (max_failed_requests="
                                f"{self.config.max_failed_requests}); last error: {r['error']}"
                            )
                        continue
                    for j, p in enumerate(r["prompts"]):
                        yield p, {"request": r["request"], "item": j, "theme": r["theme"]}
        raise PromptGenerationError(
            f"the LLM produced too few usable prompts after {k} requests (privacy screening and "
            f"de-duplication removed the rest); raise per_request, vary themes or lower dedup.threshold"
        )
