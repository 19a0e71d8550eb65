"""Environment helpers."""
from __future__ import annotations

import os
from contextlib import AbstractContextManager, contextmanager
from typing import Iterator


@contextmanager
def temporary_env(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them exactly."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def offline_hub() -> AbstractContextManager[None]:
    """No hub access while loading a local model (a missing file must fail, never download)."""
    return temporary_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
