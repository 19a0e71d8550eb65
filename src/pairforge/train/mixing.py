"""Which dataset each training sample comes from: weights that may change at given steps.

RealRestorer-style curricula are a list of stages, e.g. synthetic only until step 20k, then
synthetic:real 8:2. Draws use a generator seeded per (stream, batch), so the choice for any batch can be
recomputed without replaying the ones before it.
"""
from __future__ import annotations

import numpy as np

from pairforge.train.config import DataConfig


class MixSchedule:
    def __init__(self, names: list[str], stages: list[tuple[int | None, dict[str, float]]]):
        if not stages:
            raise ValueError("a mixing schedule needs at least one stage")
        self.names = list(names)
        self.bounds: list[int | None] = []
        self.probs: list[np.ndarray] = []
        for until, weights in stages:
            w = np.array([float(weights.get(n, 0.0)) for n in self.names], dtype=np.float64)
            if w.sum() <= 0:
                raise ValueError(f"stage until {until}: weights {weights} give no dataset a positive weight")
            self.bounds.append(until)
            self.probs.append(w / w.sum())

    @classmethod
    def from_config(cls, data: DataConfig) -> MixSchedule:
        names = [d.name for d in data.datasets]
        if data.stages:
            return cls(names, [(s.until_step, s.weights) for s in data.stages])
        return cls(names, [(None, {d.name: d.weight for d in data.datasets})])

    def stage_at(self, step: int) -> int:
        for i, until in enumerate(self.bounds):
            if until is None or step < until:
                return i
        return len(self.bounds) - 1

    def weights_at(self, step: int) -> np.ndarray:
        """Normalised dataset probabilities in effect at ``step`` (0-based step of the batch)."""
        return self.probs[self.stage_at(step)]

    def choose(self, step: int, rng: np.random.Generator, n: int) -> np.ndarray:
        """Dataset indices of the ``n`` samples of the batch for ``step``."""
        p = self.weights_at(step)
        return rng.choice(len(p), size=n, p=p)
