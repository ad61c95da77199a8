"""An app served by uvicorn in a thread of the calling process, on 127.0.0.1 and a port of its own.

The demo's fleet scene needs a live backend beside its simulated day, and device processes to
talk to it over HTTP; running uvicorn in a thread keeps it inside the demo's process, so it stops
with it. The socket is bound here and handed to uvicorn, so no other process can take the port
between choosing it and listening on it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

LOOPBACK = "127.0.0.1"
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 10.0
# How often the start is checked: uvicorn sets a flag and offers nothing to wait on.
START_POLL_S = 0.02


class ServerDidNotStart(Exception):
    """uvicorn did not start serving within the bound (or its thread ended first)."""

    code = "server_did_not_start"


class ServerDidNotStop(Exception):
    """uvicorn was asked to stop and its thread was still serving after the bound."""

    code = "server_did_not_stop"


@contextmanager
def served_in_thread(app: FastAPI, *, name: str) -> Iterator[str]:
    """Serves `app` (its lifespan run by uvicorn) until the block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServerDidNotStart(f"{name}: uvicorn did not start serving")
            time.sleep(START_POLL_S)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_STOP_TIMEOUT_S)
        sock.close()
    # Reached only when the block ended normally: a failure inside it is the one to report.
    if thread.is_alive():
        raise ServerDidNotStop(f"{name}: uvicorn did not stop within {SERVER_STOP_TIMEOUT_S:g} s")
