"""The app (on SQLite in local mode, or one a test built) served by uvicorn in a thread of the
test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tapledger.bootstrap import bootstrap
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings

SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 10.0
POLL_S = 0.05


@contextmanager
def served_locally(data_dir: Path, *, name: str) -> Iterator[str]:
    """Serves the app until the block ends; yields its base URL."""
    settings = ExplicitSettings(
        data_dir=data_dir,
        follow_in_process=True,
        # Explicit, so that TAPLEDGER_* variables of the shell cannot point the test elsewhere.
        environment="local",
        database_url=None,
        redis_url=None,
        admin_token=None,
    )
    with served_app(create_app(bootstrap(settings)), name=name) as base_url:
        yield base_url


@contextmanager
def served_app(app: FastAPI, *, name: str) -> Iterator[str]:
    """Serves `app` (its lifespan run by uvicorn) until the block ends; yields its base URL."""
    # The socket is bound here and handed to uvicorn, so no other process can take the port
    # between choosing it and listening on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the in-process server did not start", pytrace=False)
            time.sleep(POLL_S)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_STOP_TIMEOUT_S)
        sock.close()
        assert not thread.is_alive(), "the in-process server did not stop"
