"""Starts the real `tapledger serve` in a subprocess and stops it again.

`tapledger/cli.py` has no `if __name__ == "__main__"` guard, so `python -m tapledger.cli` would
import the app and exit. The console script is used when it is installed next to the
interpreter; otherwise the same typer app is called through `python -c`, which is what the
script does.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings
from tests.integration.conftest import DatabaseFactory
from tests.services import postgres_url, redis_url

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: the server imports the whole app and creates its tables before it answers, which
# on a busy shared machine took over 30 s. The wait is for /healthz, so an idle machine does
# not wait any longer.
SERVER_START_TIMEOUT_S = 120.0
SERVER_STOP_TIMEOUT_S = 10.0
HEALTH_POLL_S = 0.2
HEALTH_REQUEST_TIMEOUT_S = 2.0
STDERR_SHOWN_MAX_CHARS = 8000
ENV_PREFIX = "TAPLEDGER_"


@dataclass
class Server:
    """A running `tapledger serve` process."""

    base_url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        text = self.stderr_path.read_text(errors="replace")
        return text[-STDERR_SHOWN_MAX_CHARS:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tapledger_command() -> list[str]:
    script = Path(sys.executable).parent / "tapledger"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tapledger.cli import app; app(prog_name='tapledger')"]


def server_env(settings_env: dict[str, str]) -> dict[str, str]:
    """The process environment without any `TAPLEDGER_*` of ours, plus the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env["PYTHONUNBUFFERED"] = "1"
    return env | settings_env


def production_env(database_url: str, admin_token: str, data_dir: Path) -> dict[str, str]:
    """The settings of a deployed server: PostgreSQL, Redis, its own secrets, production mode."""
    return {
        "TAPLEDGER_DATABASE_URL": database_url,
        "TAPLEDGER_REDIS_URL": redis_url(),
        "TAPLEDGER_ADMIN_TOKEN": admin_token,
        "TAPLEDGER_ENVIRONMENT": "production",
        "TAPLEDGER_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "TAPLEDGER_DATA_DIR": str(data_dir),
    }


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(SERVER_STOP_TIMEOUT_S)


def start_server(settings_env: dict[str, str], workdir: Path, workers: int = 1) -> Server:
    """Starts the server in `workdir` (so no `.env` of the repository is read) and waits until
    `/healthz` answers 200, failing the test with the server's stderr otherwise."""
    port = free_port()
    stderr_path = workdir / "server.stderr"
    command = [
        *tapledger_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=server_env(settings_env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Server(f"http://127.0.0.1:{port}", process, stderr_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited with {process.returncode}:\n{server.stderr()}", pytrace=False
            )
        try:
            response = httpx.get(f"{server.base_url}/healthz", timeout=HEALTH_REQUEST_TIMEOUT_S)
        except httpx.TransportError as error:
            last = repr(error)
        else:
            if response.status_code == httpx.codes.OK:
                return server
            last = f"{response.status_code} {response.text}"
        time.sleep(HEALTH_POLL_S)
    stop_server(server)
    pytest.fail(
        f"/healthz did not answer 200 within {SERVER_START_TIMEOUT_S} s (last: {last}):\n"
        f"{server.stderr()}",
        pytrace=False,
    )


ServerFactory = Callable[[dict[str, str], Path], Server]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """Starts servers on demand; every one of them is stopped when the test ends."""
    servers: list[Server] = []

    def _start(settings_env: dict[str, str], workdir: Path) -> Server:
        server = start_server(settings_env, workdir)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        stop_server(server)


@pytest.fixture(scope="session")
def e2e_database_factory() -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(postgres_url())
    yield factory
    factory.drop_all()


@pytest.fixture
def e2e_postgres_url(e2e_database_factory: DatabaseFactory) -> Iterator[str]:
    """A fresh PostgreSQL database for one server; dropped after the server has stopped."""
    url = e2e_database_factory.create()
    yield url
    e2e_database_factory.drop(url)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    """The product in process, as `bootstrap` builds it in local mode on SQLite under
    `tmp_path`; no follower runs unless the test runs it. A module that needs another clock,
    SAM or setting overrides this fixture."""
    built = bootstrap(ExplicitSettings(data_dir=tmp_path, follow_in_process=False))
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    """The HTTP app over `container`, in process."""
    with TestClient(create_app(container, own_container=False)) as test_client:
        yield test_client
