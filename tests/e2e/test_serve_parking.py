"""Parking in the layout a city deploys: `tapledger serve --workers 2` on PostgreSQL and Redis,
riders starting, extending and ending their stays from many connections at once, a worker killed
in the middle, and `tapledger parking sweep` afterwards. Whatever the interleaving, a plate has
one open session per lot, a request id has one effect, and every account has paid exactly the
fees of its sealed records, with no hold left over."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from pydantic import SecretStr

from parking.domain.session import EndedBy
from tapledger.bootstrap import Container, bootstrap
from tests.builders.settings import ExplicitSettings
from tests.e2e.conftest import (
    Server,
    production_env,
    server_env,
    start_server,
    stop_server,
    tapledger_command,
)
from tests.e2e.workers import REPLACED_WITHIN_S, wait_for_workers, wait_until, worker_pids
from tests.integration.conftest import DatabaseFactory
from ticketing.accounts.domain.commands import Command

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WORKERS = 2
LOT = "serve-lot"
OPERATOR = "serve-operator"
FUNDS_VND = 1_000_000
# Dong Da's table: a car pays 25,000 VND for each of its first two hours, so a stay paid two
# hours ahead holds 50,000 and one ended within the hour costs 25,000, whatever the time of day.
START_HOLD_VND = 50_000
HOUR_VND = 25_000
RIDERS = 12
ROUNDS = 3  # sessions each rider parks, one after another, during the traffic
SAME_PLATE_STARTS = 8  # different start ids for one plate, all at once
SAME_ID_STARTS = 6  # one start id, sent this many times at once
ATTEMPTS_MAX = 40
REQUEST_TIMEOUT_S = 30.0
SWEEP_TIMEOUT_S = 120.0
RETRY_PAUSE_S = 0.05  # between a failed attempt and its retry: the client's own rhythm
KILL_WITHIN_S = 60.0
RETRYABLE = {502, 503, 504}


@dataclass
class Deployment:
    server: Server
    env: dict[str, str]
    admin: dict[str, str]
    workdir: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, timeout=REQUEST_TIMEOUT_S)


@pytest.fixture
def deployment(e2e_database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Deployment]:
    database_url = e2e_database_factory.create()
    admin_token = secrets.token_urlsafe(30)
    env = production_env(database_url, admin_token, tmp_path / "var")
    # The test's own setup makes many requests with one token.
    env["TAPLEDGER_RATE_LIMIT_REQUESTS"] = "1000000"
    server = start_server(env, tmp_path, workers=WORKERS)
    try:
        yield Deployment(server, env, {"Authorization": f"Bearer {admin_token}"}, tmp_path)
    finally:
        stop_server(server)
        e2e_database_factory.drop(database_url)


@dataclass
class Rider:
    index: int
    account_id: str
    headers: dict[str, str]
    sessions: list[str] = field(default_factory=list)

    @property
    def plate(self) -> str:
        return f"30E-{100 + self.index:03d}.{10 + self.index % 90:02d}"


def send(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], body: Any = None
) -> httpx.Response:
    """Sends as an app does: again, with the same body and so the same ids, while the answer is
    lost (a worker killed mid-request) or the server says to come back; anything else is the
    answer."""
    for _ in range(ATTEMPTS_MAX):
        try:
            response = client.request(method, path, json=body, headers=headers)
        except httpx.TransportError:
            time.sleep(RETRY_PAUSE_S)
            continue
        if response.status_code not in RETRYABLE:
            return response
        time.sleep(RETRY_PAUSE_S)
    pytest.fail(f"{method} {path} failed {ATTEMPTS_MAX} times")


def ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201)), response.text
    answer: dict[str, Any] = response.json()
    return answer


def at_once(
    calls: list[Callable[[httpx.Client], httpx.Response]], deployment: Deployment
) -> list[httpx.Response]:
    """Runs every call from its own connection, all released together."""
    barrier = threading.Barrier(len(calls))
    clients = [deployment.client() for _ in calls]

    def run(index: int) -> httpx.Response:
        barrier.wait(REQUEST_TIMEOUT_S)
        return calls[index](clients[index])

    try:
        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(run, range(len(calls))))
    finally:
        for client in clients:
            client.close()


def setup_lot(deployment: Deployment, client: httpx.Client) -> None:
    operator = {"operator_id": OPERATOR, "name": "Serve parking"}
    ok(client.post("/v1/parking/operators", json=operator, headers=deployment.admin), 201)
    lot = {
        "lot_id": LOT,
        "operator_id": OPERATOR,
        "name": "Ton Duc Thang",
        "address": "Ton Duc Thang, Dong Da, Hanoi",
        "lat": 21.0187,
        "lon": 105.8290,
        "opening_hours": None,
        "capacity": {"car": 500, "motorbike": 0},
        "table_id": "hanoi-dong-da",
    }
    ok(client.post("/v1/parking/lots", json=lot, headers=deployment.admin), 201)


def new_rider(deployment: Deployment, client: httpx.Client, index: int) -> Rider:
    admin = deployment.admin
    account_id: str = ok(client.post("/v1/accounts", json={}, headers=admin), 201)["id"]
    top_up = {"amount_vnd": FUNDS_VND, "payment_reference": f"seed-{index}"}
    ok(client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=admin), 201)
    issued = client.post(
        "/v1/tokens", json={"role": "rider", "account_id": account_id}, headers=admin
    )
    token = ok(issued, 201)["token"]
    return Rider(index, account_id, {"Authorization": f"Bearer {token}"})


def start_body(start_id: str, plate: str, paid_until: datetime) -> dict[str, Any]:
    return {
        "start_id": start_id,
        "lot_id": LOT,
        "plate": plate,
        "vehicle_class": "car",
        "paid_until": paid_until.isoformat(),
    }


def two_hours_ahead() -> datetime:
    return datetime.now().astimezone() + timedelta(hours=2)


def balances(deployment: Deployment, client: httpx.Client, account_id: str) -> tuple[int, int]:
    account = ok(client.get(f"/v1/accounts/{account_id}", headers=deployment.admin), 200)
    return account["posted_vnd"], account["pending_vnd"]


def check_money(deployment: Deployment, riders: list[Rider]) -> None:
    """Every account paid exactly the fees of its records, and holds nothing."""
    wrong = []
    with deployment.client() as client:
        for rider in riders:
            fees_vnd = 0
            for session_id in rider.sessions:
                record = ok(
                    client.get(f"/v1/parking/records/{session_id}", headers=deployment.admin), 200
                )
                assert record["unpaid_vnd"] == 0, record
                assert record["posted_vnd"] + record["debited_vnd"] == record["fee_vnd"], record
                fees_vnd += record["fee_vnd"]
            seen = balances(deployment, client, rider.account_id)
            if seen != (FUNDS_VND - fees_vnd, 0):
                wrong.append(f"{rider.account_id}: posted, pending {seen}; fees {fees_vnd}")
    assert not wrong, f"{len(wrong)} of {len(riders)} accounts are off: {wrong[:5]}"


def same_plate_at_once(deployment: Deployment, racers: list[Rider]) -> Rider:
    """Several start ids for one plate at once, from the apps of several riders: one session,
    and only its hold left, on the account of the rider who got it; the winner."""
    paid_until = two_hours_ahead()
    plate = racers[0].plate

    def start(index: int) -> Callable[[httpx.Client], httpx.Response]:
        racer = racers[index % len(racers)]
        body = start_body(f"race-{index}", plate, paid_until)
        return lambda c: send(c, "POST", "/v1/parking/sessions", racer.headers, body)

    answers = at_once([start(i) for i in range(SAME_PLATE_STARTS)], deployment)
    created = [a for a in answers if a.status_code == httpx.codes.CREATED]
    refused = [a for a in answers if a.status_code == httpx.codes.CONFLICT]
    assert (len(created), len(refused)) == (1, SAME_PLATE_STARTS - 1), [
        (a.status_code, a.text) for a in answers
    ]
    session = created[0].json()
    assert {a.json()["code"] for a in refused} == {"session_already_open"}
    assert {a.json()["session_id"] for a in refused} == {session["session_id"]}
    (winner,) = [r for r in racers if r.account_id == session["account_id"]]
    winner.sessions.append(session["session_id"])
    with deployment.client() as client:
        for racer in racers:
            held_vnd = START_HOLD_VND if racer is winner else 0
            assert balances(deployment, client, racer.account_id) == (FUNDS_VND, held_vnd)
    return winner


def same_start_id_at_once(deployment: Deployment, rider: Rider) -> None:
    """One start id sent several times at once: one session, one hold."""
    body = start_body("resent-1", rider.plate, two_hours_ahead())
    answers = at_once(
        [
            lambda c: send(c, "POST", "/v1/parking/sessions", rider.headers, body)
            for _ in range(SAME_ID_STARTS)
        ],
        deployment,
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * (SAME_ID_STARTS - 1) + [201], [a.text for a in answers]
    session_ids = {a.json()["session_id"] for a in answers}
    assert len(session_ids) == 1
    rider.sessions.append(session_ids.pop())
    with deployment.client() as client:
        assert balances(deployment, client, rider.account_id) == (FUNDS_VND, START_HOLD_VND)


def end_session(client: httpx.Client, rider: Rider, session_id: str, end_id: str) -> dict[str, Any]:
    path = f"/v1/parking/sessions/{session_id}/end"
    return ok(send(client, "POST", path, rider.headers, {"end_id": end_id}), 200)


class Traffic:
    """Each rider parks `ROUNDS` times from its own connection; half way through the first
    round a worker is killed, and no rider starts its last round before the kill."""

    def __init__(self, deployment: Deployment, riders: list[Rider]) -> None:
        self.deployment = deployment
        self.riders = riders
        self.first_round_done = 0
        self.lock = threading.Lock()
        self.half_way = threading.Event()
        self.killed = threading.Event()

    def park(self, rider: Rider) -> None:
        with self.deployment.client() as client:
            for round_ in range(ROUNDS):
                if round_ == ROUNDS - 1:
                    assert self.killed.wait(KILL_WITHIN_S), "no worker was killed"
                self.park_once(client, rider, round_)
                if round_ == 0:
                    with self.lock:
                        self.first_round_done += 1
                        if self.first_round_done * 2 >= len(self.riders):
                            self.half_way.set()

    def park_once(self, client: httpx.Client, rider: Rider, round_: int) -> None:
        tag = f"r{rider.index}-{round_}"
        body = start_body(f"start-{tag}", rider.plate, two_hours_ahead())
        session = ok(send(client, "POST", "/v1/parking/sessions", rider.headers, body))
        session_id = session["session_id"]
        rider.sessions.append(session_id)
        path = f"/v1/parking/sessions/{session_id}"
        later = datetime.fromisoformat(session["paid_until"]) + timedelta(hours=1)
        extension = {"extension_id": f"ext-{tag}", "paid_until": later.isoformat()}
        end = {"end_id": f"end-{tag}"}
        resend = (rider.index + round_) % 2 == 0
        extended = self.maybe_twice(resend, f"{path}/extensions", rider, extension)
        assert {e["held_vnd"] for e in extended} == {START_HOLD_VND + 35_000}
        ended = self.maybe_twice(resend, f"{path}/end", rider, end)
        assert len({e["record"]["record_id"] for e in ended}) == 1
        assert {e["record"]["fee_vnd"] for e in ended} == {HOUR_VND}

    def maybe_twice(
        self, twice: bool, path: str, rider: Rider, body: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The request once, or the same request twice at once from two connections."""
        calls = [lambda c: send(c, "POST", path, rider.headers, body)] * (2 if twice else 1)
        return [ok(answer) for answer in at_once(calls, self.deployment)]

    def kill_a_worker(self) -> None:
        assert self.half_way.wait(KILL_WITHIN_S), "the traffic did not get half way"
        server = self.deployment.server
        victim = max(wait_for_workers(server, WORKERS))
        os.kill(victim, signal.SIGKILL)
        self.killed.set()
        wait_until(
            lambda: victim not in (pids := worker_pids(server)) and len(pids) == WORKERS,
            REPLACED_WITHIN_S,
            lambda: f"worker {victim} was not replaced",
        )

    def run(self) -> None:
        with ThreadPoolExecutor(len(self.riders) + 1) as pool:
            killing = pool.submit(self.kill_a_worker)
            parked = [pool.submit(self.park, rider) for rider in self.riders]
            for future in [killing, *parked]:
                future.result()


def reader(deployment: Deployment) -> Container:
    """The same stores, opened from the test: no follower of its own runs here."""
    env = deployment.env
    settings = ExplicitSettings(
        database_url=env["TAPLEDGER_DATABASE_URL"],
        redis_url=env["TAPLEDGER_REDIS_URL"],
        admin_token=SecretStr(env["TAPLEDGER_ADMIN_TOKEN"]),
        environment="production",
        key_encryption_key=SecretStr(env["TAPLEDGER_KEY_ENCRYPTION_KEY"]),
        data_dir=Path(env["TAPLEDGER_DATA_DIR"]),
        follow_in_process=False,
    )
    return bootstrap(settings, create_schema=False)


def end_interrupted(
    deployment: Deployment, session_ids: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ends the sessions as a worker that saved each end and died before moving its money."""
    container = reader(deployment)

    def die(command: Command) -> None:
        raise ConnectionError(f"the process died before {type(command).__name__}")

    monkeypatch.setattr(container.ledger, "execute", die)
    try:
        for session_id in session_ids:
            with pytest.raises(ConnectionError):
                container.parking.ending.end(UUID(session_id), "end-interrupted", EndedBy.APP)
    finally:
        monkeypatch.undo()
        container.close()


def sweep(deployment: Deployment) -> str:
    done = subprocess.run(
        [*tapledger_command(), "parking", "sweep"],
        cwd=deployment.workdir,
        env=server_env(deployment.env),
        capture_output=True,
        text=True,
        timeout=SWEEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_workers_with_a_kill_charge_every_rider_exactly_their_parking_fees(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    with deployment.client() as client:
        setup_lot(deployment, client)
        riders = [new_rider(deployment, client, i) for i in range(RIDERS)]

    winner = same_plate_at_once(deployment, [riders[0], riders[RIDERS // 2]])
    same_start_id_at_once(deployment, riders[1])
    with deployment.client() as client:
        for rider in (winner, riders[1]):
            end_session(client, rider, rider.sessions[0], "end-first")

    Traffic(deployment, riders).run()
    wait_for_workers(deployment.server, WORKERS)
    check_money(deployment, riders)

    # Two more stays whose ends were saved by a worker that died before paying them: their
    # holds stay pending and they have no record until the sweeper settles them.
    interrupted = riders[2:4]
    with deployment.client() as client:
        for rider in interrupted:
            body = start_body(f"start-interrupted-{rider.index}", rider.plate, two_hours_ahead())
            started = ok(send(client, "POST", "/v1/parking/sessions", rider.headers, body), 201)
            rider.sessions.append(started["session_id"])
    end_interrupted(deployment, [rider.sessions[-1] for rider in interrupted], monkeypatch)
    with deployment.client() as client:
        for rider in interrupted:
            assert balances(deployment, client, rider.account_id)[1] == START_HOLD_VND
            missing = client.get(
                f"/v1/parking/records/{rider.sessions[-1]}", headers=deployment.admin
            )
            assert missing.status_code == httpx.codes.NOT_FOUND

    assert "settled 2" in sweep(deployment)
    check_money(deployment, riders)
    assert "settled 0" in sweep(deployment)
    check_money(deployment, riders)
