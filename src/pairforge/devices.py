"""Which device a component runs on, decided inside the process that runs it.

Why here and not on the driver: on a cluster whose head node has no GPU, a device resolved while
planning would be ``cpu`` for every worker, GPU workers included. Each stage therefore resolves its
requested device (``auto``, ``cpu``, ``cuda``, ``cuda:N``) at setup, from the resources its worker was
given. A stage that does not use torch never calls this, and an ``auto`` worker that was given no GPU
by Ray answers ``cpu`` without importing torch (Ray hides the GPUs of a worker that asked for none).

``auto`` on a machine without any GPU also answers ``cpu`` without importing torch (importing it costs
seconds of start-up, and the CPU paths of the degraders run on numpy/OpenCV): torch is asked only where a
GPU driver, a device node or a visible-devices setting says one may exist, or when it is already loaded.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

#: files whose presence means a GPU torch could use may exist (NVIDIA driver, its device nodes, ROCm's
#: kernel driver, WSL2's GPU paravirtualisation)
_GPU_HINTS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


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
    if "torch" not in sys.modules and not may_have_gpu():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def may_have_gpu() -> bool:
    """Whether torch could find a CUDA (or ROCm) device in this process, answered without importing it:
    False when torch is not installed, ``CUDA_VISIBLE_DEVICES`` hides every device, on macOS, or on Linux
    with no GPU driver or device node; True otherwise (then torch itself is asked)."""
    if importlib.util.find_spec("torch") is None:
        return False
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in _GPU_HINTS)
    return True
