"""`tapledger serve --workers 2`: each worker listens on its own socket, and the supervisor keeps
them running and stops them together."""

from __future__ import annotations

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

from tests.e2e.conftest import (
    Server,
    production_env,
    server_env,
    start_server,
    stop_server,
    tapledger_command,
)
from tests.e2e.workers import (
    POLL_S,
    REPLACED_WITHIN_S,
    socket_inodes,
    wait_for_workers,
    wait_until,
    worker_pids,
)
from tests.integration.conftest import DatabaseFactory

WORKERS = 2
# With a hash spreading them, all 16 landing on one of two workers has odds of 1 in 32,768.
CONNECTIONS = 16
REQUEST_TIMEOUT_S = 10.0
STOPPED_WITHIN_S = 30.0
# Every wait below is on a condition, bounded by one of these deadlines: a busy machine makes the
# test slower, never wrong. They are generous because spawning a worker imports the whole app.
ANSWERED_WITHIN_S = 60.0
ACCEPTED_WITHIN_S = 60.0
TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"


@pytest.fixture
def two_workers(
    e2e_database_factory: DatabaseFactory, tmp_path: Path
) -> Iterator[tuple[Server, dict[str, str]]]:
    database_url = e2e_database_factory.create()
    env = production_env(database_url, secrets.token_urlsafe(30), tmp_path / "var")
    server = start_server(env, tmp_path, workers=WORKERS)
    try:
        yield server, env
    finally:
        stop_server(server)
        e2e_database_factory.drop(database_url)


def tcp_sockets_on(port: int, state: str) -> dict[str, int]:
    """The inodes of the IPv4 sockets on local `port` in `state`, each with its receive queue: for
    a listening socket, the connections waiting to be accepted.

    The kernel writes /proc/net/tcp a page per read, walking tables that other processes change
    meanwhile, so one reading may miss a socket: callers read again until the condition holds."""
    sockets = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, queues, inode = fields[1], fields[4], fields[9]
        if fields[3] == state and int(local.split(":")[1], 16) == port:
            sockets[inode] = int(queues.split(":")[1], 16)
    return sockets


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def connections_per_worker(server: Server, sockets: list[socket.socket]) -> Counter[int]:
    """The server's ends of `sockets`, counted by the worker holding them: every one of them once
    this reading saw them all, else fewer (see `tcp_sockets_on`)."""
    ours = set(tcp_sockets_on(port_of(server), TCP_ESTABLISHED))
    owners: Counter[int] = Counter()
    for pid in worker_pids(server):
        owners[pid] = len(socket_inodes(pid) & ours)
    return owners


def count_accepted(server: Server, sockets: list[socket.socket]) -> Counter[int]:
    """`connections_per_worker` once the workers have accepted every one of `sockets`, read
    again until then: a worker still starting accepts late, and a reading may miss some.

    Count before any request is answered: uvicorn closes a connection 5 s after its last answer
    (its keep-alive timeout), never one that has not yet sent a request. Counted after the
    answers, a test held up for 5 s finds some connections gone, as one did on a busy machine
    (9 of 16 counted)."""
    owners: Counter[int] = Counter()

    def all_accepted() -> bool:
        nonlocal owners
        owners = connections_per_worker(server, sockets)
        return sum(owners.values()) == len(sockets)

    wait_until(all_accepted, ACCEPTED_WITHIN_S, lambda: f"{owners} of {len(sockets)} accepted")
    return owners


def connect(server: Server, count: int, stack: ExitStack) -> list[socket.socket]:
    """`count` connections, complete as soon as the kernel has queued them for a worker."""
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    return [stack.enter_context(socket.create_connection((host, int(port)))) for _ in range(count)]


def ask_health(server: Server, sockets: list[socket.socket]) -> None:
    """One request on each connection, answered, so its worker has surely accepted it. A worker
    still starting answers late, so the wait is for the answers, up to one deadline for all."""
    host = server.base_url.removeprefix("http://").rsplit(":", 1)[0]
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for sock in sockets:
        sock.sendall(request)
    deadline = time.monotonic() + ANSWERED_WITHIN_S
    for sock in sockets:
        sock.settimeout(max(deadline - time.monotonic(), POLL_S))
        assert sock.recv(64).startswith(b"HTTP/1.1 200"), "every connection is answered"


def spread_of_fresh_connections(server: Server, workers: set[int]) -> Counter[int]:
    """Opens `CONNECTIONS` connections, counts them per worker once accepted, and has each
    answered; again with new connections, in the unlikely case that the hash put them all on
    one socket, until every one of `workers` holds some."""
    owners: Counter[int] = Counter()
    deadline = time.monotonic() + ACCEPTED_WITHIN_S
    while True:
        with ExitStack() as stack:
            sockets = connect(server, CONNECTIONS, stack)
            owners = count_accepted(server, sockets)
            ask_health(server, sockets)
            if all(owners[pid] > 0 for pid in workers):
                return owners
        assert time.monotonic() < deadline, f"connections per worker {owners}, workers {workers}"
        time.sleep(POLL_S)


def listening_socket_of(server: Server, pid: int) -> str:
    """The inode of the one listening socket the worker `pid` was given."""
    found: set[str] = set()

    def one() -> bool:
        nonlocal found
        found = socket_inodes(pid) & set(tcp_sockets_on(port_of(server), TCP_LISTEN))
        return len(found) == 1

    wait_until(one, ACCEPTED_WITHIN_S, lambda: f"worker {pid} listens on {found}")
    return found.pop()


def test_connections_opened_together_are_spread_over_the_workers(
    two_workers: tuple[Server, dict[str, str]],
) -> None:
    server, _ = two_workers
    workers = wait_for_workers(server, WORKERS)
    first = min(workers)
    own = listening_socket_of(server, first)
    # Stopped workers cannot accept, so all the connections wait in the kernel together, as
    # when validators connect while the workers are busy. One worker then runs alone until it
    # has accepted every connection it can: on one shared socket that would be all of them.
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    with ExitStack() as stack:
        try:
            sockets = connect(server, CONNECTIONS, stack)
            os.kill(first, signal.SIGCONT)
            wait_until(
                lambda: tcp_sockets_on(port_of(server), TCP_LISTEN).get(own) == 0,
                ANSWERED_WITHIN_S,
                lambda: f"worker {first} left connections waiting on its socket",
            )
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        owners = count_accepted(server, sockets)
        ask_health(server, sockets)
    assert len(owners) == WORKERS
    assert all(count > 0 for count in owners.values()), owners


def test_a_worker_that_dies_is_replaced_and_serves_on_its_socket(
    two_workers: tuple[Server, dict[str, str]],
) -> None:
    server, _ = two_workers
    before = wait_for_workers(server, WORKERS)
    killed = min(before)
    os.kill(killed, signal.SIGKILL)
    after: set[int] = set()

    def replaced() -> bool:
        nonlocal after
        after = worker_pids(server)
        return after != before and len(after) == WORKERS

    wait_until(replaced, REPLACED_WITHIN_S, lambda: f"workers {after} after killing {killed}")
    assert killed not in after
    assert server.process.poll() is None
    # The new worker took over the dead one's socket: connections reach it again.
    spread_of_fresh_connections(server, after)


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
