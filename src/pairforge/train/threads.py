"""How many CPU threads the trainer's torch ops and its data workers use.

Why this exists: torch sizes its intra-op pool from the machine's cores, not from the CPUs this process
may use (affinity, a cgroup quota) nor from the other processes on them (DDP ranks on one host, the
DataLoader's workers, other jobs). Oversubscribed OpenMP threads spin while they wait for each other; on a
busy 2-core machine that made quickstart steps 3-10x slower and erratic. ``train.threads: auto`` gives each
training process its share of the usable CPUs less one per data worker (each worker is a process that
needs a core of its own; PyTorch already gives each one a single intra-op thread), and at least one.

Nothing here touches thread pools inside forked DataLoader workers: resizing OpenCV's or OpenMP's pool in
a child forked from a process that already ran them waits for threads that do not exist there (a hang).
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

log = logging.getLogger("pairforge.train")


def usable_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup v2/v1 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def _cgroup_quota() -> float | None:
    try:
        parts = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if parts and parts[0] != "max":
            return int(parts[0]) / int(parts[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if q > 0 and p > 0:
            return q / p
    except (OSError, ValueError):
        pass
    return None


def auto_threads(local_world_size: int = 1, data_workers: int = 0, cpus: int | None = None) -> int:
    """One training process's share of the usable CPUs, less a core per data worker (at least 1)."""
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, cpus // max(1, local_world_size) - max(0, data_workers))


def resolve_threads(setting: int | str, device: torch.device, local_world_size: int = 1,
                    data_workers: int = 0) -> int | None:
    """The intra-op thread count to set (``auto`` on CUDA: the GPU does the work, but the process still
    gets no more than its share)."""
    if setting != "auto":
        return int(setting)
    n = auto_threads(local_world_size, data_workers)
    if device.type == "cuda":
        return min(n, torch.get_num_threads())
    return n


def apply_threads(setting: int | str, device: torch.device, local_world_size: int = 1,
                  data_workers: int = 0) -> int:
    """Set torch's intra-op threads for this process; returns the number in effect."""
    n = resolve_threads(setting, device, local_world_size, data_workers)
    if n is not None and n != torch.get_num_threads():
        torch.set_num_threads(n)
        log.info("train.threads=%s: torch uses %d thread(s)", setting, n)
    return torch.get_num_threads()
