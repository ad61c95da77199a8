"""The listening sockets of `tapledger serve --workers N`."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import closing

import pytest

from tapledger.http.workers import PortInUse, listening_sockets

HOST = "127.0.0.1"
BACKLOG = 16


@pytest.fixture
def three() -> Iterator[list[socket.socket]]:
    sockets = listening_sockets(HOST, 0, 3, BACKLOG)
    yield sockets
    for sock in sockets:
        sock.close()


def test_every_worker_gets_its_own_socket_on_one_port(three: list[socket.socket]) -> None:
    ports = {sock.getsockname() for sock in three}
    assert len(ports) == 1
    assert len({sock.fileno() for sock in three}) == len(three)
    assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in three)


def test_each_socket_accepts_connections(three: list[socket.socket]) -> None:
    address = three[0].getsockname()
    for sock in three:
        sock.settimeout(0)
    with closing(socket.create_connection(address)):
        accepted = []
        for sock in three:
            try:
                accepted.append(sock.accept()[0])
            except BlockingIOError:
                continue
        assert len(accepted) == 1, "the kernel hands a connection to exactly one socket"
        accepted[0].close()


def test_a_port_held_by_another_server_of_workers_is_refused(three: list[socket.socket]) -> None:
    port = three[0].getsockname()[1]
    with pytest.raises(PortInUse, match=f"cannot serve on {HOST}:{port}"):
        listening_sockets(HOST, port, 2, BACKLOG)


def test_a_port_held_by_a_plain_socket_is_refused() -> None:
    with socket.socket() as plain:
        plain.bind((HOST, 0))
        plain.listen()
        port = plain.getsockname()[1]
        with pytest.raises(PortInUse):
            listening_sockets(HOST, port, 2, BACKLOG)
