"""What a process exposes: the TCP addresses it listens on, read from the kernel's socket table.

The study's rule is loopback only (`host.ports`); this checks it on the running process rather
than trusting its configuration.
"""

from __future__ import annotations

import ipaddress

import psutil

from ingestlab.host.process import process_tree


def listening_addresses(pid: int) -> list[str]:
    """Every `ip:port` on which process `pid` or one of its descendants holds a TCP socket in
    LISTEN state, sorted (IPv6 as `[ip]:port`). Descendants count: a per-core service's
    workers listen, not its supervisor (Python's)."""
    sockets = [s for p in process_tree(pid) for s in _tcp_sockets(p)]
    return sorted({_address(s.laddr.ip, s.laddr.port) for s in sockets if s.status == psutil.CONN_LISTEN})


def _tcp_sockets(process: psutil.Process) -> list:
    try:
        return process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:  # a descendant that exited meanwhile
        return []


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def off_loopback(addresses: list[str]) -> list[str]:
    """Those of `addresses` (as `listening_addresses` writes them) reachable from another host:
    any address outside 127.0.0.0/8 and ::1, wildcards (0.0.0.0, ::) included."""
    return [a for a in addresses if not ipaddress.ip_address(a.rsplit(":", 1)[0].strip("[]")).is_loopback]
