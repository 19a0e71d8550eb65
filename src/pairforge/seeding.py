"""Per-sample randomness derived from (run seed, sample index, stage name) only.

Every random draw in pairforge comes from a generator made here, so a sample's result never depends on
batch size, worker count or scheduling order (docs/architecture.md, "How a sample flows").
"""
from __future__ import annotations

import zlib

import numpy as np


def stage_tag(stage: str) -> int:
    """A stable 32-bit number for a stage name (Python's hash() is salted per process)."""
    return zlib.crc32(stage.encode("utf-8"))


def seed_sequence(run_seed: int, index: int, stage: str) -> np.random.SeedSequence:
    if run_seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={run_seed} index={index}")
    return np.random.SeedSequence([int(run_seed), int(index), stage_tag(stage)])


def sample_seed(run_seed: int, index: int, stage: str) -> int:
    """A 63-bit integer seed for one sample in one stage (fits torch.Generator.manual_seed)."""
    state = seed_sequence(run_seed, index, stage).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def sample_rng(run_seed: int, index: int, stage: str) -> np.random.Generator:
    """The numpy generator for one sample in one stage."""
    return np.random.Generator(np.random.PCG64(seed_sequence(run_seed, index, stage)))


def rng_from_seed(seed: int) -> np.random.Generator:
    """The numpy generator for an integer seed produced by :func:`sample_seed`."""
    return np.random.Generator(np.random.PCG64(int(seed)))


def torch_generator(seed: int, device: str = "cpu"):
    """A torch.Generator for an integer seed (imported lazily: torch is heavy)."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g
