"""Offline combinatorial scene prompts: templates whose ``{slot}`` placeholders are filled from weighted
vocabularies. Candidate ``k`` depends only on (run seed, k), so the stream is reproducible anywhere."""
from __future__ import annotations

import string
from typing import Iterator

import numpy as np

from pairforge.prompts.config import TemplatePromptsConfig
from pairforge.seeding import sample_rng


class TemplateWriter:
    def __init__(self, config: TemplatePromptsConfig, seed: int):
        self.config = config
        self.seed = seed
        self._slots: dict[str, tuple[list[str], np.ndarray]] = {}
        for slot, words in config.vocab.items():
            if isinstance(words, dict):
                items = list(words.items())
            else:
                items = [(w, 1.0) for w in words]
            phrases = [w for w, _ in items]
            weights = np.array([float(x) for _, x in items], dtype=np.float64)
            self._slots[slot] = (phrases, weights / weights.sum())
        self._fields = [
            [f for _, f, _, _ in string.Formatter().parse(t) if f is not None] for t in config.templates
        ]

    def prompt(self, k: int) -> tuple[str, dict]:
        """Candidate number ``k``: the prompt and which phrases filled which slot."""
        rng = sample_rng(self.seed, k, "prompts-template")
        ti = int(rng.integers(len(self.config.templates)))
        fill = {}
        for f in self._fields[ti]:
            if f in fill:
                continue
            phrases, p = self._slots[f]
            fill[f] = phrases[int(rng.choice(len(phrases), p=p))]
        text = self.config.templates[ti].format(**fill)
        return " ".join(text.split()), {"template": ti, "slots": fill}

    def candidates(self, need: int) -> Iterator[tuple[str, dict]]:
        """An endless reproducible stream (the bank builder decides when to stop)."""
        k = 0
        while True:
            yield self.prompt(k)
            k += 1

    def combinations(self) -> int:
        """How many distinct prompts the templates can make (an upper bound)."""
        total = 0
        for fields in self._fields:
            n = 1
            for f in dict.fromkeys(fields):
                n *= len(self._slots[f][0])
            total += n
        return total
