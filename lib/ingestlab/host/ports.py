"""The loopback interface: free TCP ports on it, and the rule that study traffic goes nowhere else."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({LOOPBACK, "localhost", "::1"})


def require_loopback(url: str) -> None:
    """Raise ValueError unless `url` points at this machine: study traffic stays on loopback."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"refusing to send load to {host!r}: only loopback targets are allowed")


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now.

    The kernel picks it from the ephemeral range; the socket is closed before the caller
    binds, so another process could take it in between: callers that bind treat a failed
    start as retryable.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free ports (held open together so they cannot repeat)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()
