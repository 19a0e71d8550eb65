"""A Ray address that cannot be joined ends the run at once with one line saying why (Ray itself retries
a dead address for ~11 minutes and then prints a long traceback)."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from pairforge.errors import RayConnectError, UserError
from pairforge.pipeline.rayaddress import check_ray_address, ray_connect_message


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_address_fails_fast_with_the_address():
    port = _closed_port()
    with pytest.raises(RayConnectError, match=f"127.0.0.1:{port}") as e:
        check_ray_address(f"127.0.0.1:{port}")
    assert isinstance(e.value, UserError) and "ray status" in str(e.value)
    with pytest.raises(RayConnectError, match="ray://127.0.0.1"):
        check_ray_address(f"ray://127.0.0.1:{port}")


@pytest.mark.parametrize("bad", ["head-node", "10.0.0.1:", ":6379", "10.0.0.1:port"])
def test_malformed_address_is_named(bad):
    with pytest.raises(RayConnectError, match="is not host:port"):
        check_ray_address(bad)


@pytest.mark.parametrize("addr", ["auto", "local"])
def test_auto_and_local_are_left_to_ray(addr):
    check_ray_address(addr)  # no exception, no connection attempt


def test_a_listening_address_passes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        check_ray_address(f"127.0.0.1:{s.getsockname()[1]}")


def test_token_auth_failure_says_what_to_set():
    """What Ray raises when a driver names a token-protected cluster's address without a token."""
    cause = RuntimeError("Failed to connect to GCS. Last connection error: ray.exceptions.AuthenticationError: "
                         "RPC error: InvalidAuthToken: Authentication token is missing or incorrect.")
    try:
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from cause
    except ConnectionError as e:
        msg = ray_connect_message("10.0.0.1:6379", e)
    assert "10.0.0.1:6379" in msg and "RAY_AUTH_MODE=token" in msg and "auto" in msg
    assert "\n" not in msg
    other = ray_connect_message("10.0.0.1:6379", ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379"))
    assert "10.0.0.1:6379" in other and "RAY_AUTH_MODE" not in other


def test_cli_dead_address_is_one_line(tmp_path):
    from tests.conftest import photo, png_bytes

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(png_bytes(photo("astronaut", 32)))
    port = _closed_port()
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "degrade", str(tmp_path / "in"), str(tmp_path / "out"),
                        "--ray", "--ray-address", f"127.0.0.1:{port}", "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert f"127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) <= 3, r.stderr


def test_train_on_a_dead_ray_address_is_one_line(tmp_path):
    port = _closed_port()
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "train", "configs/train-quickstart.yaml", "--ray",
                        "--set", f"ray.address=127.0.0.1:{port}", "--set", f"output.dir={tmp_path / 'out'}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert f"127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


class _Init:
    """Stands in for ray.init in the decision tests: records how it was called."""

    def __init__(self):
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)


@pytest.fixture
def fake_ray(monkeypatch):
    import ray

    from pairforge.pipeline import rayaddress

    init = _Init()
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return rayaddress, init, monkeypatch


def test_no_address_no_recorded_cluster_starts_a_sized_ray(fake_ray):
    rayaddress, init, mp = fake_ray
    mp.setattr(rayaddress, "recorded_cluster", lambda: None)
    assert rayaddress.init_ray(None, num_cpus=2, object_store_memory=10**9) == "started"
    assert init.calls == [{"num_cpus": 2, "object_store_memory": 10**9}]


def test_stale_recorded_cluster_is_ignored_with_a_warning(fake_ray, caplog):
    """A stopped `ray start` leaves its head's address behind; a plain ray.init() would wait on it."""
    rayaddress, init, mp = fake_ray
    port = _closed_port()
    mp.setattr(rayaddress, "recorded_cluster", lambda: f"127.0.0.1:{port}")
    with caplog.at_level("WARNING", logger="pairforge.pipeline.rayaddress"):
        got = rayaddress.init_ray(None, num_cpus=2)
    assert got.startswith("started") and init.calls == [{"address": "local", "num_cpus": 2, "object_store_memory": None}]
    assert f"127.0.0.1:{port}" in caplog.text
    with pytest.raises(RayConnectError, match=f"recorded its head at 127.0.0.1:{port}"):
        rayaddress.init_ray("auto")
    assert len(init.calls) == 1


def test_a_live_recorded_cluster_is_joined_without_sizing_it(fake_ray):
    rayaddress, init, mp = fake_ray
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        mp.setattr(rayaddress, "recorded_cluster", lambda: addr)
        assert rayaddress.init_ray(None, num_cpus=2) == f"joined {addr}"
        assert rayaddress.init_ray("auto", num_cpus=2) == f"joined {addr}"
    # joined as ray.init joins it (address None / auto), so Ray also finds the cluster's token
    assert init.calls == [{"address": None}, {"address": "auto"}]


def test_ray_address_env_is_an_address_like_the_flag(fake_ray):
    rayaddress, init, mp = fake_ray
    port = _closed_port()
    mp.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(RayConnectError, match=f"127.0.0.1:{port}"):
        rayaddress.init_ray(None)
    assert init.calls == []


def test_local_starts_a_sized_ray_even_beside_a_running_one(fake_ray):
    rayaddress, init, mp = fake_ray
    mp.setattr(rayaddress, "recorded_cluster", lambda: "127.0.0.1:1")
    assert rayaddress.init_ray("local", num_cpus=3) == "started"
    assert init.calls == [{"address": "local", "num_cpus": 3, "object_store_memory": None}]


def test_a_damaged_recorded_address_starts_a_private_ray(fake_ray):
    rayaddress, init, mp = fake_ray
    mp.setattr(rayaddress, "recorded_cluster", lambda: "not-an-address")
    assert rayaddress.address_answers("not-an-address") is False
    assert rayaddress.init_ray(None, num_cpus=1).startswith("started")
    assert init.calls == [{"address": "local", "num_cpus": 1, "object_store_memory": None}]
