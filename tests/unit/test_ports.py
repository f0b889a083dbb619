import socket

from ingestlab.host.ports import LOOPBACK, free_port, free_ports


def test_free_port_can_be_bound_on_loopback():
    port = free_port()
    with socket.socket() as s:
        s.bind((LOOPBACK, port))
        assert s.getsockname() == (LOOPBACK, port)


def test_free_ports_are_distinct():
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(1024 <= p <= 65535 for p in ports)
