"""The slow link: a loopback TCP proxy that passes bytes through unchanged, or late, or slowly."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from ingestlab.stack.slow_link import CLEAR, LinkShape, SlowLink


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _round_trip(port: int, payload: bytes) -> tuple[bytes, float]:
    """Send `payload` through 127.0.0.1:`port`, read as many bytes back; (bytes, seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        began = time.monotonic()
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received, time.monotonic() - began


def test_a_clear_link_passes_bytes_through_unchanged(echo_port: int) -> None:
    payload = bytes(range(256)) * 1000
    with SlowLink(target_port=echo_port) as link:
        received, _ = _round_trip(link.port, payload)
        assert received == payload
        assert link.connections == 1
    assert link.bytes_carried == {"up": len(payload), "down": len(payload)}


def test_delay_applies_each_way_and_clears(echo_port: int) -> None:
    with SlowLink(target_port=echo_port) as link:
        link.shape = LinkShape(delay_s=0.1)
        _, slow_s = _round_trip(link.port, b"x" * 100)
        link.shape = CLEAR
        _, clear_s = _round_trip(link.port, b"x" * 100)
    assert 0.2 <= slow_s < 0.5  # 100 ms up and 100 ms down
    assert clear_s < 0.1


def test_bandwidth_limit_bounds_the_rate(echo_port: int) -> None:
    size = 200_000
    with SlowLink(target_port=echo_port) as link:
        link.shape = LinkShape(bandwidth_bytes_per_s=1_000_000)
        received, seconds = _round_trip(link.port, b"y" * size)
    assert len(received) == size
    # 0.2 s each way at 1 MB/s, the two directions overlapping chunk by chunk
    assert 0.2 <= seconds < 0.8


def test_a_target_that_is_down_closes_the_client_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]
    with SlowLink(target_port=closed_port) as link, \
            socket.create_connection(("127.0.0.1", link.port), timeout=5) as sock:
        assert sock.recv(10) == b""


def test_shape_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        LinkShape(delay_s=-1)
    with pytest.raises(ValueError):
        LinkShape(bandwidth_bytes_per_s=0)
