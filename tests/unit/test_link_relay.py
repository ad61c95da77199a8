"""The relay the demo cuts a gate's link with: it forwards while up, drops and refuses while cut."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from urllib.parse import urlsplit

import pytest

from tapledger.link_relay import LinkRelay

LOOPBACK = "127.0.0.1"
WAIT_S = 5.0


@pytest.fixture
def echo_port() -> Iterator[int]:
    """An upstream that echoes every connection's bytes back."""
    server = socket.create_server((LOOPBACK, 0))

    def echo(connection: socket.socket) -> None:
        with connection, suppress(OSError):
            while data := connection.recv(4096):
                connection.sendall(data)

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    with suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)
    server.close()


def connect(relay: LinkRelay) -> socket.socket:
    address = urlsplit(relay.url)
    connection = socket.create_connection((address.hostname, address.port), timeout=WAIT_S)
    return connection


def echoed(connection: socket.socket, data: bytes) -> bytes:
    connection.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = connection.recv(len(data) - len(received))
        if not chunk:
            break
        received += chunk
    return received


def test_an_open_link_forwards_bytes_both_ways(echo_port: int) -> None:
    with LinkRelay(echo_port) as relay, connect(relay) as connection:
        assert echoed(connection, b"tap 1") == b"tap 1"


def test_cutting_the_link_drops_open_connections(echo_port: int) -> None:
    with LinkRelay(echo_port) as relay, connect(relay) as connection:
        assert echoed(connection, b"before") == b"before"
        relay.cut()
        assert connection.recv(16) == b""


def test_a_cut_link_accepts_and_hangs_up_on_each_new_connection(echo_port: int) -> None:
    with LinkRelay(echo_port) as relay:
        relay.cut()
        with connect(relay) as connection, suppress(ConnectionResetError):
            assert echoed(connection, b"lost") == b""
        assert relay.refused == 1


def test_a_restored_link_forwards_again(echo_port: int) -> None:
    with LinkRelay(echo_port) as relay:
        relay.cut()
        relay.restore()
        with connect(relay) as connection:
            assert echoed(connection, b"after") == b"after"
