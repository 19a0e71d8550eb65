"""The prompt bank: the ordered list of prompts of a run, built once and persisted in the run directory.

Sample index ``i`` uses ``bank[i % len(bank)]`` (or is rejected past the end when ``repeat`` is off), so
any worker, and any resumed run, gets the same prompt for the same index. The bank is built on the driver
(the prompt stage's ``prepare``): candidates from the source -> privacy screen -> de-duplication, until
``count`` prompts are kept or the source runs dry. Files in the run directory:

- ``prompts/bank.jsonl``  one ``{"prompt", "origin"}`` per line, in bank order
- ``prompts/dropped.jsonl`` every rejected candidate with its rule and reason (audit trail)
- ``prompts/bank.json``   counts, drop statistics, LLM errors and the config fingerprint; written last,
  it is the bank's commit marker
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from pairforge.io.storage import Storage
from pairforge.prompts.config import (
    EmptyPromptsConfig,
    FilePromptsConfig,
    LLMPromptsConfig,
    TemplatePromptsConfig,
)

log = logging.getLogger("pairforge.prompts.bank")

BANK_DIR = "prompts"
BANK_FILE = f"{BANK_DIR}/bank.jsonl"
BANK_INFO = f"{BANK_DIR}/bank.json"
DROPPED_FILE = f"{BANK_DIR}/dropped.jsonl"

# options that do not change which prompts come out (retries, concurrency): excluded from the fingerprint
_NON_SEMANTIC = ("concurrency", "retry", "max_failed_requests", "device", "batch_size", "cache_dir")


class PromptBankMismatch(RuntimeError):
    pass


#: an LLM section's fields that decide which prompts come out, under their first names (``backend`` is
#: now ``provider``): banks built before the rename keep their fingerprint, and new options that do not
#: change prompts (prices, batch sizes) stay out of it
_LLM_SEMANTIC = ("model", "base_url", "api_key_env", "temperature", "max_output_tokens", "structured_output",
                 "revision", "dtype")


def _strip(d):
    if isinstance(d, dict):
        if "provider" in d and "model" in d:  # an LLMConfig
            return {"backend": d["provider"], **{k: d.get(k) for k in _LLM_SEMANTIC}}
        return {k: _strip(v) for k, v in d.items() if k not in _NON_SEMANTIC}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def fingerprint(config, seed: int) -> str:
    """A hash of everything that decides the bank's content, except its size: a bank of N prompts is a
    prefix of the bank of M > N prompts (candidates are drawn, screened and de-duplicated in a fixed
    order), so a run can be extended without changing the prompts already used."""
    blob = json.dumps({"config": _strip(config.model_dump(mode="json", exclude={"count"})), "seed": seed},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class PromptBank:
    prompts: list[str]
    origins: list[dict]
    info: dict = field(default_factory=dict)
    repeat: bool = True

    def __len__(self) -> int:
        return len(self.prompts)

    def lookup(self, index: int) -> tuple[int, str, dict] | None:
        """(bank position, prompt, origin) for a sample index; None past the end without repeat."""
        n = len(self.prompts)
        if n == 0:
            return None
        if index >= n and not self.repeat:
            return None
        j = index % n
        return j, self.prompts[j], self.origins[j]

    def save(self, storage: Storage, dropped: list[dict] | None = None) -> None:
        lines = (json.dumps({"prompt": p, "origin": o}, ensure_ascii=False) for p, o in zip(self.prompts, self.origins))
        storage.write_bytes(BANK_FILE, ("\n".join(lines) + "\n").encode("utf-8"))
        if dropped is not None:
            storage.write_bytes(DROPPED_FILE, "".join(json.dumps(d, ensure_ascii=False) + "\n"
                                                      for d in dropped).encode("utf-8"))
        storage.write_bytes(BANK_INFO, json.dumps(self.info, indent=2, ensure_ascii=False).encode("utf-8"))

    @classmethod
    def load(cls, storage: Storage, repeat: bool = True) -> "PromptBank | None":
        if not storage.exists(BANK_INFO):
            return None
        info = json.loads(storage.read_bytes(BANK_INFO))
        prompts, origins = [], []
        for line in storage.read_bytes(BANK_FILE).decode("utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                prompts.append(rec["prompt"])
                origins.append(rec.get("origin") or {})
        if len(prompts) != info.get("size"):
            raise PromptBankMismatch(f"{BANK_FILE} holds {len(prompts)} prompts but {BANK_INFO} says {info.get('size')}")
        return cls(prompts, origins, info, repeat)


def make_writer(config, seed: int, storage: Storage | None):
    """The candidate stream of a prompt source."""
    if isinstance(config, TemplatePromptsConfig):
        from pairforge.prompts.template import TemplateWriter

        return TemplateWriter(config, seed)
    if isinstance(config, FilePromptsConfig):
        from pairforge.prompts.files import FileReader

        return FileReader(config)
    if isinstance(config, LLMPromptsConfig):
        from pairforge.prompts.writer import LLMWriter

        return LLMWriter(config, seed, storage)
    raise TypeError(f"prompt source {getattr(config, 'kind', config)!r} has no bank")


def build_bank(config, count: int, seed: int, storage: Storage | None = None, writer=None,
               dedup=None, screen=None, chunk: int = 512) -> tuple[PromptBank, list[dict]]:
    """Draw candidates, screen and de-duplicate them until ``count`` prompts are kept (or the source ends).

    Returns the bank and the list of dropped candidates with reasons.
    """
    from pairforge.prompts.dedup import Deduplicator
    from pairforge.prompts.privacy import PrivacyScreen

    if isinstance(config, EmptyPromptsConfig):
        raise TypeError("the empty prompt source has no bank")
    writer = writer or make_writer(config, seed, storage)
    screen = screen or PrivacyScreen(config.privacy, storage)
    dedup = dedup or Deduplicator(config.dedup)
    # a template source can cycle forever without finding new prompts: cap the candidates drawn
    max_candidates = count * 20 + 1000 if isinstance(config, TemplatePromptsConfig) else None
    prompts: list[str] = []
    origins: list[dict] = []
    dropped: list[dict] = []
    stats = {"candidates": 0, "privacy": 0, "exact_duplicate": 0, "near_duplicate": 0}
    stream: Iterator = writer.candidates(count)
    exhausted = False
    try:
        while len(prompts) < count and not exhausted:
            block: list[tuple[str, dict]] = []
            want = min(chunk, max(count - len(prompts), 1) * 2)
            for item in stream:
                block.append(item)
                if len(block) >= want:
                    break
            else:
                exhausted = True
            if max_candidates is not None and stats["candidates"] + len(block) >= max_candidates:
                exhausted = True
            if not block:
                break
            stats["candidates"] += len(block)
            texts = [p for p, _ in block]
            verdicts = screen.screen(texts)
            ok = [i for i, v in enumerate(verdicts) if v.passed]
            for i, v in enumerate(verdicts):
                if not v.passed:
                    stats["privacy"] += 1
                    dropped.append({"prompt": texts[i], "origin": block[i][1], "stage": "privacy",
                                    "rule": v.rule, "reason": v.reason})
            dd = dedup.filter([texts[i] for i in ok])
            for i, (keep, rule, sim) in zip(ok, dd):
                if not keep:
                    stats[rule] += 1
                    dropped.append({"prompt": texts[i], "origin": block[i][1], "stage": "dedup", "rule": rule,
                                    "reason": f"similarity {sim:.3f} to an earlier prompt" if sim else rule})
                    continue
                if len(prompts) < count:
                    prompts.append(texts[i])
                    origins.append(block[i][1])
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
        for part in (writer, screen):  # LLM clients: connections, threads, usage logs
            if hasattr(part, "close"):
                part.close()
    info = {
        "kind": config.kind,
        "requested": count,
        "size": len(prompts),
        "seed": seed,
        "fingerprint": fingerprint(config, seed),
        "dropped": stats,
        "repeat": config.repeat,
    }
    if hasattr(writer, "errors"):
        info["llm_errors"] = writer.errors
        info["llm_requests_made"] = writer.requests_made
        info["llm_cache_hits"] = writer.cache.hits
        info["llm_usage"] = writer.usage.to_dict()
    if getattr(screen, "usage", None) is not None and screen.usage.requests:
        info["privacy_llm_usage"] = screen.usage.to_dict()
    if len(prompts) < count:
        log.warning("prompt bank has %d of the %d prompts requested (source exhausted)", len(prompts), count)
    if not prompts:
        raise RuntimeError(f"the {config.kind} prompt source produced no usable prompt "
                           f"(dropped: {stats})")
    return PromptBank(prompts, origins, info, config.repeat), dropped


def load_or_build_bank(config, count: int, seed: int, storage: Storage | None) -> PromptBank:
    """The run's bank: loaded from the run directory if it exists (and matches the config), else built
    and saved there. A stored bank built for fewer prompts is extended (its prompts stay first)."""
    fp = fingerprint(config, seed)
    if storage is not None:
        bank = PromptBank.load(storage, repeat=config.repeat)
        if bank is not None:
            if bank.info.get("fingerprint") != fp:
                raise PromptBankMismatch(
                    f"{storage.uri(BANK_INFO)} was built from a different prompts config or seed "
                    f"(fingerprint {bank.info.get('fingerprint')} != {fp}); use a fresh output directory "
                    "or restore the original config"
                )
            if bank.info.get("requested", 0) >= count or bank.info.get("size", 0) < bank.info.get("requested", 0):
                return bank  # big enough, or the source was already exhausted
            old = bank
            bank, dropped = build_bank(config, count, seed, storage)
            if bank.prompts[: len(old)] != old.prompts:
                raise PromptBankMismatch(
                    f"extending the prompt bank from {len(old)} to {count} prompts changed the existing ones "
                    "(the source is not reproducible, e.g. a file changed or LLM cache entries were deleted)"
                )
            bank.save(storage, dropped)
            return bank
    bank, dropped = build_bank(config, count, seed, storage)
    if storage is not None:
        bank.save(storage, dropped)
    return bank


#: the bank size used for a file source without ``count``: every prompt in the file
ALL = 10**12


def bank_size(config, num_samples: int | None) -> int:
    """How many prompts the bank should hold for a run of ``num_samples`` samples."""
    if getattr(config, "count", None):
        return int(config.count)
    if isinstance(config, FilePromptsConfig):
        return ALL
    if num_samples is None:
        raise ValueError(f"the {config.kind} prompt source needs prompts.count or run.num_samples "
                         "to know how many prompts to make")
    return int(num_samples)
