"""Joining a Ray cluster by address, with the two failures users meet turned into one line each: an
address where nothing answers (``ray.init`` retries it for ~11 minutes, measured) and a cluster that
wants an authentication token this process does not send."""
from __future__ import annotations

import socket

from pairforge.errors import RayConnectError


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a Ray address nothing listens at: ``ray.init`` keeps retrying such an address for
    about 11 minutes (measured) before it gives up. ``auto`` and ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayConnectError(f"Ray address {address!r} is not host:port, ray://host:port, auto or local")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise RayConnectError(
            f"nothing answers at the Ray address {address} ({e.strerror or type(e).__name__}); is the cluster "
            "running (`ray status` on its head), and is this the head's host:port (or auto on the head node)?"
        ) from None


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
