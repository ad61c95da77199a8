"""`tapledger serve --workers 2`: each worker listens on its own socket, and the supervisor keeps
them running and stops them together."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, server_env, start_server, stop_server, tapledger_command
from tests.integration.conftest import DatabaseFactory
from tests.services import redis_url

WORKERS = 2
# With a hash spreading them, all 16 landing on one of two workers has odds of 1 in 32,768.
CONNECTIONS = 16
REQUEST_TIMEOUT_S = 10.0
REPLACED_WITHIN_S = 30.0
STOPPED_WITHIN_S = 30.0
POLL_S = 0.2
ALONE_S = 1.0
TCP_ESTABLISHED = "01"


@pytest.fixture
def two_workers(
    e2e_database_factory: DatabaseFactory, tmp_path: Path
) -> Iterator[tuple[Server, dict[str, str]]]:
    database_url = e2e_database_factory.create()
    env = {
        "TAPLEDGER_DATABASE_URL": database_url,
        "TAPLEDGER_REDIS_URL": redis_url(),
        "TAPLEDGER_ADMIN_TOKEN": secrets.token_urlsafe(30),
        "TAPLEDGER_ENVIRONMENT": "production",
        "TAPLEDGER_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "TAPLEDGER_DATA_DIR": str(tmp_path / "var"),
    }
    server = start_server(env, tmp_path, workers=WORKERS)
    try:
        yield server, env
    finally:
        stop_server(server)
        e2e_database_factory.drop(database_url)


def worker_pids(server: Server) -> set[int]:
    """The serve process's children that run a worker (spawned by multiprocessing)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def wait_for_workers(server: Server, count: int) -> set[int]:
    deadline = time.monotonic() + REPLACED_WITHIN_S
    while (pids := worker_pids(server)) and len(pids) != count:
        assert time.monotonic() < deadline, f"workers {pids}, expected {count}"
        time.sleep(POLL_S)
    return pids


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def established_on(port: int) -> set[str]:
    """The inodes of the server's ends of established IPv4 connections to `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == TCP_ESTABLISHED and int(local.split(":")[1], 16) == port:
            inodes.add(inode)
    return inodes


def connections_per_worker(server: Server, sockets: list[socket.socket]) -> Counter[int]:
    port = int(server.base_url.rsplit(":", 1)[1])
    ours = established_on(port)
    owners: Counter[int] = Counter()
    for pid in worker_pids(server):
        owners[pid] = len(socket_inodes(pid) & ours)
    assert sum(owners.values()) == len(sockets), owners
    return owners


def connect(server: Server, count: int, stack: ExitStack) -> list[socket.socket]:
    """`count` connections, complete as soon as the kernel has queued them for a worker."""
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    return [stack.enter_context(socket.create_connection((host, int(port)))) for _ in range(count)]


def ask_health(server: Server, sockets: list[socket.socket]) -> None:
    """One request on each connection, answered, so its worker has surely accepted it."""
    host = server.base_url.removeprefix("http://").rsplit(":", 1)[0]
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for sock in sockets:
        sock.settimeout(REQUEST_TIMEOUT_S)
        sock.sendall(request)
    for sock in sockets:
        assert sock.recv(64).startswith(b"HTTP/1.1 200"), "every connection is answered"


def open_connections(server: Server, count: int, stack: ExitStack) -> list[socket.socket]:
    sockets = connect(server, count, stack)
    ask_health(server, sockets)
    return sockets


def test_connections_opened_together_are_spread_over_the_workers(
    two_workers: tuple[Server, dict[str, str]],
) -> None:
    server, _ = two_workers
    workers = wait_for_workers(server, WORKERS)
    # Stopped workers cannot accept, so all the connections wait in the kernel together, as
    # when validators connect while the workers are busy. One worker then runs alone for a
    # while: on one shared socket it would accept every connection waiting.
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    first = min(workers)
    with ExitStack() as stack:
        try:
            sockets = connect(server, CONNECTIONS, stack)
            os.kill(first, signal.SIGCONT)
            time.sleep(ALONE_S)
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        ask_health(server, sockets)
        owners = connections_per_worker(server, sockets)
    assert len(owners) == WORKERS
    assert all(count > 0 for count in owners.values()), owners


def test_a_worker_that_dies_is_replaced_and_serves_on_its_socket(
    two_workers: tuple[Server, dict[str, str]],
) -> None:
    server, _ = two_workers
    before = wait_for_workers(server, WORKERS)
    killed = min(before)
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + REPLACED_WITHIN_S
    while (after := worker_pids(server)) == before or len(after) != WORKERS:
        assert time.monotonic() < deadline, f"workers {after} after killing {killed}"
        time.sleep(POLL_S)
    assert killed not in after
    assert server.process.poll() is None
    # The new worker took over the dead one's socket: connections reach it again.
    with ExitStack() as stack:
        deadline = time.monotonic() + REPLACED_WITHIN_S
        while True:
            sockets = open_connections(server, CONNECTIONS, stack)
            owners = connections_per_worker(server, sockets)
            if all(owners[pid] > 0 for pid in after):
                break
            assert time.monotonic() < deadline, owners
            time.sleep(POLL_S)


def test_sigterm_stops_every_worker_and_exits_cleanly(
    two_workers: tuple[Server, dict[str, str]],
) -> None:
    server, _ = two_workers
    workers = wait_for_workers(server, WORKERS)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(STOPPED_WITHIN_S) == 0, server.stderr()
    # The supervisor waited for each worker, so none is left running or unreaped.
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_second_server_on_the_same_port_is_refused(
    two_workers: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = two_workers
    port = server.base_url.rsplit(":", 1)[1]
    command = [*tapledger_command(), "serve", "--host", "127.0.0.1", "--port", port]
    second = subprocess.run(
        [*command, "--workers", str(WORKERS)],
        cwd=tmp_path,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=STOPPED_WITHIN_S,
        check=False,
    )
    assert second.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in second.stdout
    with httpx.Client(base_url=server.base_url, timeout=REQUEST_TIMEOUT_S) as client:
        assert client.get("/healthz").status_code == httpx.codes.OK
