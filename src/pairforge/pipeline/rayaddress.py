"""Joining or starting Ray without the hangs and tracebacks ``ray.init`` gives for three things users
meet: an address where nothing answers (``ray.init`` retries it for ~11 minutes, measured), a
cluster that wants an authentication token this process does not send, and the "current cluster"
file a stopped ``ray start`` leaves behind (a plain ``ray.init()`` then tries to join that dead head,
with the same 11-minute wait, or refuses ``num_cpus``)."""
from __future__ import annotations

import logging
import os
import socket

from pairforge.errors import RayConnectError

log = logging.getLogger(__name__)


def _host_port(address: str) -> tuple[str, int]:
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayConnectError(f"Ray address {address!r} is not host:port, ray://host:port, auto or local")
    return host.strip("[]"), int(port)


def _connect_error(address: str, timeout: float) -> OSError | None:
    """Why a TCP connection to a Ray head's host:port fails, or None when something accepts it."""
    try:
        socket.create_connection(_host_port(address), timeout=timeout).close()
        return None
    except OSError as e:
        return e


def address_answers(address: str, timeout: float = 5.0) -> bool:
    """Whether something accepts a TCP connection at a Ray head's host:port (False for an address that
    is not one, e.g. a damaged current-cluster file)."""
    try:
        return _connect_error(address, timeout) is None
    except RayConnectError:
        return False


def recorded_cluster() -> str | None:
    """The head address the last ``ray start`` on this machine recorded (Ray's current-cluster file),
    which a plain ``ray.init()`` joins; None without one."""
    try:
        from ray._private.services import find_bootstrap_address

        return find_bootstrap_address(None)
    except Exception:  # noqa: BLE001 (a Ray without this helper: leave the choice to ray.init)
        return None


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a Ray address nothing listens at: ``ray.init`` keeps retrying such an address for
    about 11 minutes (measured) before it gives up. ``auto`` and ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    e = _connect_error(address, timeout)
    if e is not None:
        raise RayConnectError(
            f"nothing answers at the Ray address {address} ({e.strerror or type(e).__name__}); is the cluster "
            "running (`ray status` on its head), and is this the head's host:port (or auto on the head node)?"
        )


def ray_connect_message(address: str, exc: BaseException) -> str:
    """One line saying why joining the Ray cluster at ``address`` failed and what to do. A local Ray
    switches token authentication on, and a driver that names its address (rather than ``auto``) does
    not send the token unless RAY_AUTH_MODE=token: the commonest failure after ``ray start --head``."""
    text = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None)
    if "InvalidAuthToken" in text or "AuthenticationError" in text or "Authentication token" in text:
        return (f"could not join the Ray cluster at {address}: it requires token authentication and this "
                "process sent no valid token. On the head node use --ray-address auto; elsewhere set "
                "RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token)")
    return (f"could not join the Ray cluster at {address} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "is it running (`ray status`), and is the address host:port of its head (or auto)?")


def join_ray(address: str, **init_kwargs) -> None:
    """``ray.init(address=...)`` after :func:`check_ray_address`; a refused connection becomes a
    :class:`~pairforge.errors.RayConnectError` saying why."""
    import ray

    check_ray_address(address)
    try:
        ray.init(address=address, **init_kwargs)
    except ConnectionError as e:
        raise RayConnectError(ray_connect_message(address, e)) from None


def init_ray(address: str | None, num_cpus: int | None = None, object_store_memory: int | None = None,
             **init_kwargs) -> str:
    """Join the Ray cluster ``address`` names, or (no address) the one ``ray.init()`` would join, or
    start a private one; returns which, for the log. ``num_cpus`` and ``object_store_memory`` size a
    Ray this process starts; a running cluster keeps its own."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None  # as ray.init reads it
    if address == "local":  # Ray's word for "start a new one here", whatever else runs
        ray.init(address="local", num_cpus=num_cpus, object_store_memory=object_store_memory, **init_kwargs)
        return "started"
    if address not in (None, "auto"):
        join_ray(address, **init_kwargs)
        return f"joined {address}"
    recorded = recorded_cluster()
    if recorded is not None and not address_answers(recorded):
        if address == "auto":
            raise RayConnectError(
                f"Ray address auto: the last `ray start` on this machine recorded its head at {recorded}, where "
                "nothing answers now (stopped, or the machine restarted); start it again (`ray start --head`), "
                "or leave the address out to start a Ray for this run")
        log.warning("the last `ray start` on this machine recorded a head at %s where nothing answers now; "
                    "starting a Ray for this run instead", recorded)
        ray.init(address="local", num_cpus=num_cpus, object_store_memory=object_store_memory, **init_kwargs)
        return "started (stale current-cluster file ignored)"
    if recorded is not None or address == "auto":
        if num_cpus is not None or object_store_memory is not None:
            log.info("joining the running Ray cluster: ray.num_cpus and ray.object_store_memory size only a Ray "
                     "this run starts")
        try:
            ray.init(address=address, **init_kwargs)  # None/auto: Ray finds the head and its token itself
        except ConnectionError as e:
            raise RayConnectError(ray_connect_message(recorded or "auto", e)) from None
        return f"joined {recorded or 'auto'}"
    ray.init(num_cpus=num_cpus, object_store_memory=object_store_memory, **init_kwargs)
    return "started"
