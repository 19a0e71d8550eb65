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
