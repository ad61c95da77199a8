"""A local relay that stands for a device's network link: it forwards TCP byte for byte to the
backend until it is cut, and again once it is restored.

The demo's fleet scene puts one gate behind it to take the gate offline for a while without
touching the gate: while the link is cut, every connection already open is closed and each new
one is accepted and closed at once, so the device sees its requests fail (as with a cable pulled
or a modem dropping) and decides on its own; once restored, its retries go through.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from types import TracebackType

LOOPBACK = "127.0.0.1"
# Connections the relay carries at once; a device holds a few (uploads, the deny-list poll).
RELAY_CONNECTIONS_MAX = 32
LISTEN_BACKLOG = 16
PIPE_CHUNK_BYTES = 65536
UPSTREAM_CONNECT_TIMEOUT_S = 5.0


class LinkRelay:
    """Listens on 127.0.0.1 (an ephemeral port) and forwards to `upstream_port` while up."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(LISTEN_BACKLOG)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._up = True
        self._closed = False
        self.refused = 0  # connections refused while cut: the device did try
        self._thread = threading.Thread(target=self._accept_loop, name="link-relay", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._listener.getsockname()[1]}"

    def cut(self) -> None:
        """Takes the link down: open connections are closed, new ones refused."""
        with self._lock:
            self._up = False
            live, self._open = self._open, set()
        for end in live:
            _close(end)

    def restore(self) -> None:
        """Brings the link back: new connections are forwarded again."""
        with self._lock:
            self._up = True

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.cut()
        _close(self._listener)

    def __enter__(self) -> LinkRelay:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            admitted = self._up and not self._closed and len(self._open) < RELAY_CONNECTIONS_MAX
            if not admitted:
                self.refused += 1
        if not admitted:
            _close(client)
            return
        try:
            upstream = socket.create_connection(
                (LOOPBACK, self._upstream_port), timeout=UPSTREAM_CONNECT_TIMEOUT_S
            )
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.update((client, upstream))
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(
                target=self._pipe, args=(source, target), name="link-relay-pipe", daemon=True
            ).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(PIPE_CHUNK_BYTES):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((source, target))
            _close(source)
            _close(target)


def _close(end: socket.socket) -> None:
    with suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        end.close()
