"""Which device a component runs on, decided inside the process that runs it.

Why here and not on the driver: on a cluster whose head node has no GPU, a device resolved while
planning would be ``cpu`` for every worker, GPU workers included. Each stage therefore resolves its
requested device (``auto``, ``cpu``, ``cuda``, ``cuda:N``) at setup, from the resources its worker was
given. A stage that does not use torch never calls this, and an ``auto`` worker that was given no GPU
by Ray answers ``cpu`` without importing torch (Ray hides the GPUs of a worker that asked for none).
"""
from __future__ import annotations

from typing import Any


def resolve_device(requested: str | None, placement: Any = None) -> str:
    """The concrete device for ``requested`` in this process. ``placement``: the worker's
    :class:`pairforge.stage.Placement` when known. Asking for ``cuda`` where there is none is an error
    naming the fix, not a silent CPU run."""
    if requested not in (None, "", "auto"):
        if str(requested).startswith("cuda") and not _cuda_available():
            raise RuntimeError(f"device {requested!r} was asked for but this worker sees no CUDA device (use auto or cpu)")
        return str(requested)
    if placement is not None and placement.executor == "ray" and placement.num_gpus <= 0:
        return "cpu"
    return "cuda" if _cuda_available() else "cpu"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
