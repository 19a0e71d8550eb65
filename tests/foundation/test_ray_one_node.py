"""`--ray` on one machine with CPU stages runs on plain Ray actors, not Ray Data (whose fixed cost made
it slower than local, README "Local or Ray"); the bytes are those of the local executor."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
from pairforge.config import degrade_section_for_preset, parse_config
from pairforge.pipeline.runner import run_pipeline

src, out, executor = sys.argv[1:4]
cfg = parse_config({"run": {"name": "one-node", "seed": 3}, "source": {"kind": "files", "paths": [src]},
                    "degrade": degrade_section_for_preset("realesrgan"),
                    "output": {"samples_per_shard": 2, "report": False}, "ray": {"num_cpus": 2}})
s = run_pipeline(cfg, out, executor=executor)
print(s.shards_written, "ray.data" in sys.modules)
"""


def _tar_digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "shards").glob("*.tar"))}


def test_one_node_cpu_run_uses_plain_actors_and_writes_the_local_bytes(tmp_path):
    from tests.conftest import photo, png_bytes

    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("astronaut", "coffee", "chelsea", "rocket", "astronaut")):
        (src / f"{i}-{name}.png").write_bytes(png_bytes(photo(name, 96 + 8 * i)))
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)  # a private Ray started by the run, not a cluster someone else runs
    got = {}
    for executor in ("ray", "local"):
        out = tmp_path / executor
        r = subprocess.run([sys.executable, "-c", SCRIPT, str(src), str(out), executor], capture_output=True,
                           text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        got[executor] = r.stdout.split()[-2:]
    assert got["ray"] == ["3", "False"], "three shards written on Ray without importing ray.data"
    assert _tar_digests(tmp_path / "ray") == _tar_digests(tmp_path / "local") and len(_tar_digests(tmp_path / "ray")) == 3


def test_quiet_ray_degrade_prints_nothing(tmp_path):
    """`-q` means no chatter: Ray's announcement that it switched token authentication on for the
    local cluster it started (printed on every start) is not shown; the run still succeeds."""
    from tests.conftest import photo, png_bytes

    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("astronaut", "coffee")):
        (src / f"{i}.png").write_bytes(png_bytes(photo(name, 64)))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env["HOME"] = str(tmp_path / "home")  # Ray keeps the token it generates under ~/.ray
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "degrade", str(src), str(tmp_path / "out"), "--ray", "-q"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Token authentication" not in r.stderr, r.stderr[-2000:]
    assert len(list((tmp_path / "out" / "shards").glob("*.tar"))) == 1
