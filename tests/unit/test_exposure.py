"""What a process listens on, from the kernel's socket table."""

from __future__ import annotations

import os
import socket

from ingestlab.host.exposure import listening_addresses, off_loopback


def test_a_listening_socket_of_this_process_is_found_and_a_bound_one_is_not():
    with socket.socket() as listening, socket.socket() as bound:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        bound.bind(("127.0.0.1", 0))
        found = listening_addresses(os.getpid())
        assert f"127.0.0.1:{listening.getsockname()[1]}" in found
        assert f"127.0.0.1:{bound.getsockname()[1]}" not in found


def test_only_loopback_addresses_are_private():
    addresses = ["127.0.0.1:3000", "127.0.0.2:1", "[::1]:80", "0.0.0.0:8080", "[::]:8080", "10.0.0.5:9092"]
    assert off_loopback(addresses) == ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:9092"]
