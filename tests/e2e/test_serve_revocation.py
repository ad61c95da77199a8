"""Revocations across `tapledger serve --workers 2` on PostgreSQL: what one worker revokes or
blocks, the other refuses, with no window in which its caches still let it through."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, production_env, start_server, stop_server
from tests.e2e.workers import socket_inodes, wait_for_workers, worker_pids
from tests.integration.conftest import DatabaseFactory
from tests.tap_media import Phone
from ticketing.taps.application.tap_verification import TRUST_REFRESH_S

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WORKERS = 2
# With a hash spreading them, all 16 landing on one of two workers has odds of 1 in 32,768.
CONNECTIONS = 16
# The first answer waits for its worker to start; later answers come in milliseconds.
FIRST_ANSWER_TIMEOUT_S = 60.0
# The bound for a revoked token; polled, never slept.
TOKEN_REFUSED_WITHIN_S = 1.0
CARD_REFUSED_WITHIN_S = TRUST_REFRESH_S
POLL_S = 0.01
RESPONSE_MAX_BYTES = 1024 * 1024
BUS = 17


class Connection:
    """One keep-alive HTTP/1.1 connection, so a request goes to the worker that accepted it."""

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock = sock
        self.host = host
        self.buffer = b""

    def request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + payload)
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        raw_head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            (
                int(v)
                for k, _, v in (x.partition(":") for x in lines[1:])
                if k.lower() == "content-length"
            ),
            0,
        )
        while len(self.buffer) < length:
            self._receive()
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, json.loads(content) if content else None

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection"
        self.buffer += chunk
        assert len(self.buffer) < RESPONSE_MAX_BYTES


@dataclass
class Workers:
    admin: str
    # One connection to each worker: the worker with the lower pid, then the other.
    first: Connection
    second: Connection


def server_inode(port: int, client_port: int) -> str:
    """The inode of the server's end of the connection from `client_port`."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
            return inode
    raise AssertionError(f"no server end for client port {client_port}")


def one_connection_per_worker(server: Server, admin: str, stack: ExitStack) -> Workers:
    workers = wait_for_workers(server, WORKERS)
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    by_worker: dict[int, Connection] = {}
    for _ in range(CONNECTIONS):
        sock = stack.enter_context(socket.create_connection((host, int(port))))
        sock.settimeout(FIRST_ANSWER_TIMEOUT_S)
        connection = Connection(sock, host)
        # Answered, so its worker has accepted it (a worker still starting answers late).
        assert connection.request("GET", "/v1/deny-list", admin)[0] == 200
        inode = server_inode(int(port), sock.getsockname()[1])
        owner = next(pid for pid in worker_pids(server) if inode in socket_inodes(pid))
        by_worker.setdefault(owner, connection)
    assert set(by_worker) == workers, "every worker holds one of the connections"
    first, second = (by_worker[pid] for pid in sorted(by_worker))
    return Workers(admin, first, second)


@pytest.fixture
def workers(e2e_database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Workers]:
    database_url = e2e_database_factory.create()
    admin = secrets.token_urlsafe(30)
    env = production_env(database_url, admin, tmp_path / "var")
    server = start_server(env, tmp_path, workers=WORKERS)
    try:
        with ExitStack() as stack:
            yield one_connection_per_worker(server, admin, stack)
    finally:
        stop_server(server)
        e2e_database_factory.drop(database_url)


def refused_by(connection: Connection, token: str) -> bool:
    status, _ = connection.request("GET", "/v1/deny-list", token)
    assert status in (200, 401), status
    return status == 401


def test_a_token_revoked_through_one_worker_is_refused_by_the_other_within_a_second(
    workers: Workers,
) -> None:
    status, issued = workers.first.request(
        "POST", "/v1/tokens", workers.admin, {"role": "operator", "label": "desk"}
    )
    assert status == 201, issued
    token = issued["token"]
    # Both workers have now authenticated the token, and remember it for seconds.
    assert not refused_by(workers.first, token)
    assert not refused_by(workers.second, token)
    status, _ = workers.first.request("DELETE", f"/v1/tokens/{issued['token_id']}", workers.admin)
    assert status == 204
    assert refused_by(workers.first, token)
    deadline = time.monotonic() + TOKEN_REFUSED_WITHIN_S
    while not refused_by(workers.second, token):
        assert time.monotonic() < deadline, "the other worker still accepts the revoked token"
        time.sleep(POLL_S)


def online_tap(connection: Connection, device: str, phone: Phone, seq: int) -> tuple[str, Any]:
    now = int(time.time())
    tap = {
        "medium": "qr",
        "seq": seq,
        "tapped_at": now,
        "device_decision": "accepted",
        "device_reason": "accepted",
        "code": phone.code(now - 1, seq),
    }
    status, result = connection.request(
        "POST", "/v1/taps", device, {"validator_id": BUS, "tap": tap}
    )
    assert status == 200, result
    return result["status"], result["reason"]


def test_a_card_blocked_through_one_worker_is_refused_there_at_once_and_by_the_other_soon(
    workers: Workers,
) -> None:
    admin, first, second = workers.admin, workers.first, workers.second
    body = {"validator_id": BUS, "kind": "bus", "network_id": 1, "location": 32}
    body |= {"stop_id": "bus-kim-ma", "route_id": "01"}
    status, registered = first.request("POST", "/v1/validators", admin, body)
    assert status == 201, registered
    device = registered["token"]
    status, account = first.request("POST", "/v1/accounts", admin, {})
    assert status == 201, account
    phone = Phone.new()
    key = base64.b64encode(phone.public_key()).decode()
    status, card = first.request(
        "POST", f"/v1/accounts/{account['id']}/virtual-cards", admin, {"device_key": key}
    )
    assert status == 201, card
    phone.certify(card["certificate"])
    # Both workers have read their trust: fresh, by the timer, for seconds yet.
    assert online_tap(first, device, phone, 1) == ("accepted", None)
    assert online_tap(second, device, phone, 2) == ("accepted", None)
    status, blocked = first.request(
        "POST", f"/v1/virtual-cards/{card['card_id']}/block", admin, {"reason": "phone stolen"}
    )
    assert status == 200, blocked
    # The worker that blocked the card applied the news before it answered: no window there.
    assert online_tap(first, device, phone, 3) == ("refused", "card_denied")
    # The other hears it over NOTIFY, milliseconds later on an idle machine; the bound is the
    # trust timer's, the fallback should a notification be lost.
    deadline = time.monotonic() + CARD_REFUSED_WITHIN_S
    seq = 4
    while online_tap(second, device, phone, seq) != ("refused", "card_denied"):
        assert time.monotonic() < deadline, "the other worker still accepts the blocked card"
        seq += 1
        time.sleep(POLL_S)
