"""A real multi-node Ray cluster on this machine loses a worker node mid-run; the run must still finish
with exactly the bytes of a clean run.

Three `ray start` nodes (a CPU-less head and two 1-CPU workers, each its own raylet and object store),
all started with ``--node-ip-address 127.0.0.1``. Ray rewrites a loopback node address to the host's own
address (``ray._private.services.resolve_ip_for_localhost``), which is a local interface: the traffic stays
on this machine. The cluster lives in its own ``--temp-dir``, so no other Ray user on the machine (a
``ray.init()`` elsewhere) can attach to it, and teardown kills only processes that name that folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
PAIRFORGE = [sys.executable, "-m", "pairforge.cli"]

CONFIG = """
run: {name: node-loss, seed: 5}
source:
  kind: bundled
  photos: [astronaut, coffee]
  crop: {mode: tiles, size: 128, stride: 128}
degrade: {kind: chain, preset: realesrgan}
output: {samples_per_shard: 2}
"""


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _cluster_env() -> dict:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    # Ray turns token auth on for a node when ~/.ray/auth_token exists (any local ray.init() writes it);
    # one explicit mode for every node and the driver keeps them agreeing
    env["RAY_AUTH_MODE"] = "disabled"
    # notice a dead node in ~3 s instead of Ray's default ~30 s, so the test stays short
    env.update(RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3",
               RAY_health_check_initial_delay_ms="1000")
    return env


def _ray_start(*args: str, env: dict) -> None:
    r = subprocess.run([RAY, "start", *args, "--disable-usage-stats"], env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, f"ray start {args} failed:\n{r.stdout}\n{r.stderr}"


def _processes_of(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.fixture
def cluster():
    """(address, worker node-manager ports, env) of a 3-node cluster; torn down by its temp folder."""
    temp = tempfile.mkdtemp(prefix="pfray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = _cluster_env()
    port, workers = _free_port(), [_free_port(), _free_port()]
    store = str(120 * 1024 * 1024)
    try:
        _ray_start("--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "0",
                   "--temp-dir", temp, "--include-dashboard", "false", "--object-store-memory", store, env=env)
        for nm_port in workers:
            _ray_start("--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                       "--node-manager-port", str(nm_port), "--object-store-memory", store, env=env)
        yield f"127.0.0.1:{port}", workers, env
    finally:
        for p in _processes_of(temp):
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _kill_node(node_manager_port: int) -> int:
    """kill -9 one worker node: its raylet and everything it started (workers, agents)."""
    raylets = [p for p in _processes_of(f"--node_manager_port={node_manager_port}") if "raylet" in p.name()]
    assert len(raylets) == 1, f"expected one raylet on port {node_manager_port}, found {raylets}"
    victims = raylets[0].children(recursive=True) + raylets
    for p in victims:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return len(victims)


def _tar_digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "shards").glob("*.tar"))}


def test_losing_a_worker_node_mid_run_changes_nothing(cluster, tmp_path):
    address, worker_ports, env = cluster
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    run = subprocess.Popen(PAIRFORGE + ["run", str(cfg), "--out", str(out), "--ray-address", address],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "shards").glob("shard-*.json")):  # shards are in flight once one committed
            assert run.poll() is None, f"run ended before any shard was committed:\n{run.stdout.read()}"
            assert time.monotonic() < deadline, "no shard committed in 300 s"
            time.sleep(0.2)
        committed_at_kill = len(list((out / "shards").glob("shard-*.json")))
        killed = _kill_node(worker_ports[0])
        log, _ = run.communicate(timeout=400)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, log
    assert killed >= 2, "the node's raylet and at least one worker process were killed"
    index = json.loads((out / "index.json").read_text())  # written only once every shard is committed
    assert committed_at_kill < len(index["shards"]), "the node died while shards were still pending"

    ref = tmp_path / "ref"
    r = subprocess.run(PAIRFORGE + ["run", str(cfg), "--out", str(ref), "--executor", "local", "-q"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _tar_digests(out) == _tar_digests(ref)
    ref_index = json.loads((ref / "index.json").read_text())
    assert (index["total_samples"], index["total_inputs"]) == (ref_index["total_samples"], ref_index["total_inputs"])
