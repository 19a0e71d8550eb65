"""Shared by the product-path benchmarks: run a command as a separate process and measure it.

`measure(cmd)` gives the wall clock, the CPU time of the whole process tree (user + system, from the
kernel's accounting of waited-for children, so threads and worker processes count) and the peak and
mean RSS summed over the process tree, sampled every `interval` s with psutil. CPU time is the figure
to trust on a busy machine; wall clock is what a user waits on a quiet one. No torch import here.
"""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float = 0.0
    mean_rss_mb: float = 0.0
    peak_processes: int = 0
    rss_series_mb: list[float] = field(default_factory=list)

    def to_dict(self, series: bool = False) -> dict:
        d = asdict(self)
        if not series:
            d.pop("rss_series_mb")
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _tree_rss(proc, cpu: dict[int, float] | None = None) -> tuple[float, int]:
    """Summed RSS (MB) of a psutil process and all its descendants, and how many there are; records
    each one's CPU seconds so far in ``cpu`` (pid -> s)."""
    import psutil

    total, n = 0, 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0
    for p in procs:
        try:
            total += p.memory_info().rss
            n += 1
            if cpu is not None:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return total / 2**20, n


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.5, cwd: Path = ROOT,
            stdout=subprocess.DEVNULL) -> Measured:
    """Run ``cmd`` to completion (raise with its stderr tail if it fails) and measure it."""
    import psutil

    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    # as on a user's machine, Python caches bytecode: an environment with PYTHONDONTWRITEBYTECODE (this
    # development sandbox has it) recompiles every pairforge module from source at each start (~0.1 s of
    # a 0.8 s start-up), while the pip-installed references (pairgen, BasicSR) had theirs compiled at install
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    series: list[float] = []
    peak_n = 0
    seen_cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_n
        try:
            proc = psutil.Process(p.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            rss, n = _tree_rss(proc, seen_cpu)
            if n:
                series.append(rss)
                peak_n = max(peak_n, n)
            stop.wait(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = p.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    # the kernel counts a process's CPU in its parent only once it is waited for; worker processes of a
    # pool or of Ray may be reaped by a process that is not waited for itself: take the larger of that
    # and the sum of what sampling saw per process (which misses each one's last interval)
    cpu = max(_children_cpu() - cpu0, sum(seen_cpu.values()))
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{(err or '')[-3000:]}")
    return Measured(wall, cpu, max(series, default=0.0), sum(series) / len(series) if series else 0.0, peak_n,
                    [round(x, 1) for x in series])


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    """Where and when: CPU model, cores, memory, Python, library versions, load, git revision, date."""
    from importlib import metadata

    cpu = platform.processor()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    versions = {}
    for name in ("torch", "opencv-python-headless", "numpy", "ray", "pillow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "versions": versions,
        "loadavg_start": os.getloadavg(),
        "git": git_rev(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "argv": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def busy(info: dict) -> bool:
    """True when other work competed for the machine: a 1-minute load average above cores + 1 at start
    or end. A benchmark keeps every core busy itself (load ~= cores), and `make bench` runs them back to
    back, so a threshold at or below the core count would flag every run, quiet or not."""
    loads = [info.get("loadavg_start", (0,))[0], info.get("loadavg_end", (0,))[0]]
    return max(loads) > (info.get("cores") or 1) + 1
