"""Privacy screen for prompts: rules first (cheap, offline), then an optional LLM check.

Rules catch what must never reach a training set regardless of who wrote the prompt: named or famous
people, contact details and ID numbers, and NSFW terms. The LLM check (GenIR's prompt filter) catches
what rules cannot; it fails closed: a prompt whose check could not be obtained is dropped, with a reason.
"""
from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pairforge.io.storage import Storage
from pairforge.llm import CallUsage, Request, UsageLog, make_client
from pairforge.llm.secrets import redact
from pairforge.prompts.cache import JsonCache, request_key
from pairforge.prompts.config import PrivacyConfig
from pairforge.prompts.instructions import (
    PRIVACY_SYSTEM,
    PrivacyVerdicts,
    privacy_request,
)

log = logging.getLogger("pairforge.prompts.privacy")

#: the run directory's usage log of the LLM privacy check (``usage/prompts-privacy/``)
USAGE_COMPONENT = "prompts-privacy"

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("url", re.compile(r"\bhttps?://|\bwww\.", re.I)),
    ("social_handle", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,}")),
    ("id_number", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("digit_sequence", re.compile(r"(?<!\w)\+?\d(?:[\s().-]?\d){7,}(?!\w)")),
    ("street_address", re.compile(
        r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Boulevard|Blvd\.?|"
        r"Lane|Ln\.?|Drive|Dr\.?|Court|Ct\.?|Place|Pl\.?)(?!\w)")),
    ("named_person", re.compile(
        r"\b(?:named|called|portrait of|photo of|picture of|selfie of|starring|featuring|depicting)\s+"
        r"(?:(?:Mr|Mrs|Ms|Dr|Sir|Lady|Lord)\.?\s+)?[A-Z][a-z]+(?:\s+[A-Z][a-z']+)+")),
    ("honorific_name", re.compile(r"\b(?:Mr|Mrs|Ms|Dr)\.?\s+[A-Z][a-z]+")),
]

#: identity, sensitive-data and NSFW terms rejected as whole words (case-insensitive)
BLOCKED_TERMS: dict[str, tuple[str, ...]] = {
    "identity": (
        "celebrity", "celebrities", "famous person", "famous actor", "famous actress", "public figure",
        "politician", "president", "prime minister", "influencer", "lookalike", "look-alike", "royal family",
        "movie star", "pop star", "footballer", "selfie",
    ),
    "sensitive_data": (
        "passport", "driver's license", "drivers license", "driving licence", "id card", "identity card",
        "credit card", "social security", "bank statement", "medical record", "medical records",
        "license plate number", "licence plate number", "home address", "phone number", "password",
        "x-ray of", "diagnosis",
    ),
    "nsfw": (
        "nsfw", "nude", "nudes", "naked", "nudity", "topless", "sex", "sexual", "sexy", "porn",
        "pornographic", "erotic", "lingerie", "fetish", "gore", "gory", "corpse", "dead body", "decapitated",
        "mutilated", "suicide", "self-harm", "beheading", "swastika",
    ),
}


@dataclass(frozen=True)
class PrivacyVerdict:
    passed: bool
    rule: str = ""
    reason: str = ""


class PrivacyScreen:
    """Rules (+ optional LLM check). ``storage`` caches LLM verdicts in the run directory."""

    def __init__(self, config: PrivacyConfig, storage: Storage | None = None):
        self.config = config
        allowed = {t.lower() for t in config.allowed_terms}
        self._terms: list[tuple[str, re.Pattern]] = []
        groups = dict(BLOCKED_TERMS)
        groups = {g: tuple(t for t in ts if t.lower() not in allowed) for g, ts in groups.items()}
        groups["custom"] = tuple(config.blocked_terms)
        for group, terms in groups.items():
            if terms:
                alt = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
                self._terms.append((group, re.compile(rf"(?<!\w)(?:{alt})(?!\w)", re.I)))
        self._cache = JsonCache(storage, "prompts/cache/privacy")
        self._storage = storage
        self._client = None
        self._lock = threading.Lock()
        self.usage = CallUsage()  # requests, tokens and cost of the LLM check in this process

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def check_rules(self, prompt: str) -> PrivacyVerdict:
        for rule, pat in _PATTERNS:
            m = pat.search(prompt)
            if m:
                return PrivacyVerdict(False, rule, f"matches the {rule} rule ({m.group(0)[:40]!r})")
        for group, pat in self._terms:
            m = pat.search(prompt)
            if m:
                return PrivacyVerdict(False, group, f"contains the blocked term {m.group(0)!r}")
        return PrivacyVerdict(True)

    def screen(self, prompts: list[str]) -> list[PrivacyVerdict]:
        """One verdict per prompt (rules, then the LLM check for those the rules passed)."""
        if not self.config.enabled:
            return [PrivacyVerdict(True) for _ in prompts]
        verdicts = [self.check_rules(p) for p in prompts]
        if self.config.llm_check is not None:
            todo = [i for i, v in enumerate(verdicts) if v.passed]
            for i, v in zip(todo, self._llm_check([prompts[i] for i in todo])):
                verdicts[i] = v
        return verdicts

    def _llm_check(self, prompts: list[str]) -> list[PrivacyVerdict]:
        cfg = self.config.llm_check
        assert cfg is not None
        size = self.config.llm_batch_size
        chunks = [prompts[i:i + size] for i in range(0, len(prompts), size)]

        def run(chunk: list[str]) -> list[PrivacyVerdict]:
            key = request_key({"kind": "privacy", "backend": cfg.provider, "model": cfg.model,
                               "system": PRIVACY_SYSTEM, "prompts": chunk})
            cached = self._cache.get(key)
            if cached is None:
                with self._lock:
                    if self._client is None:
                        usage = UsageLog(self._storage, USAGE_COMPONENT) if self._storage is not None else None
                        self._client = make_client(cfg, usage=usage)
                out = self._client.call(Request(privacy_request(chunk), PRIVACY_SYSTEM, schema=PrivacyVerdicts,
                                                seed=0), what="privacy check")
                with self._lock:
                    self.usage.add(out.usage)
                if out.error is not None:
                    msg = redact(out.error)
                    log.warning("privacy check failed for %d prompts (dropping them): %s", len(chunk), msg)
                    return [PrivacyVerdict(False, "llm_check_failed", msg) for _ in chunk]
                cached = out.value.model_dump()
                self._cache.put(key, cached)
            by_id = {r["id"]: r for r in cached["results"]}
            out = []
            for i in range(len(chunk)):
                r = by_id.get(i)
                if r is None:
                    out.append(PrivacyVerdict(False, "llm_check_missing", "the checker gave no verdict"))
                elif r["passed"]:
                    out.append(PrivacyVerdict(True))
                else:
                    out.append(PrivacyVerdict(False, "llm_check", str(r.get("reason", ""))[:300]))
            return out

        with ThreadPoolExecutor(max_workers=max(1, min(cfg.concurrency, len(chunks) or 1))) as ex:
            results = list(ex.map(run, chunks))
        return [v for r in results for v in r]
