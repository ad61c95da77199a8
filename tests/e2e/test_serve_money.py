"""The layout a city deploys: `tapledger serve --workers 2` on PostgreSQL and Redis, every worker
running its own followers (the default), validators uploading bus and metro taps both all at once
and paced, and workers killed while they price. Every rider's ledger must then show exactly what
their journeys cost, once, with no hold left that no journey owns."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from pydantic import SecretStr

from tapledger.bootstrap import Container, bootstrap
from tests.builders.settings import ExplicitSettings
from tests.e2e.conftest import Server, production_env, start_server, stop_server
from tests.e2e.workers import REPLACED_WITHIN_S, wait_for_workers, worker_pids
from tests.integration.conftest import DatabaseFactory
from tests.tap_media import Phone
from ticketing.journeys.application.reconciliation import reconcile

WORKERS = 2
RIDERS = 800
SEED_VND = 100_000
METRO_01_TO_12_VND = 15_000
BUS_01_VND = 10_000
# A metro ride then a bus ride: one journey (the bus boards within the transfer window), and the
# feed has no metro-to-bus discount, so it costs the two fares.
RIDES_VND = METRO_01_TO_12_VND + BUS_01_VND
# The taps happened in the last seconds before the upload: the server judges a batched tap at
# its own time, but refuses one stamped later than its upload (beyond the clock skew), and a
# code is valid only once its certificate is. Each rider's four taps are this far apart.
TAP_GAP_S = 3
TAPS_BEFORE_UPLOAD_S = 20
# The first half of the riders' taps arrive all at once, the rest as validators send them.
BURST_BATCH_TAPS = 500
PACED_BATCH_TAPS = 50
PACED_PAUSE_S = 0.05  # the validators' own rhythm, not a wait on the server
KILLS = 3
UPLOAD_ATTEMPTS_MAX = 50
REQUEST_TIMEOUT_S = 30.0
SETTLED_WITHIN_S = 300.0
POLL_S = 0.2
BUS, GATE_IN, GATE_OUT = 501, 502, 503
VALIDATORS = (
    (BUS, "bus", "bus-kim-ma", "01", ""),
    (GATE_IN, "metro_gate", "2A-01", "2A", "entry"),
    (GATE_OUT, "metro_gate", "2A-12", "2A", "exit"),
)


@dataclass
class Deployment:
    server: Server
    env: dict[str, str]
    admin: dict[str, str]
    devices: dict[int, dict[str, str]] = field(default_factory=dict)

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
        yield Deployment(server, env, {"Authorization": f"Bearer {admin_token}"})
    finally:
        stop_server(server)
        e2e_database_factory.drop(database_url)


@dataclass
class Rider:
    account_id: str
    phone: Phone
    counter: int = 0

    def code(self, at: int) -> str:
        self.counter += 1
        return self.phone.code(at - 1, self.counter)


def register_validators(deployment: Deployment, client: httpx.Client) -> None:
    for validator_id, kind, stop_id, route_id, direction in VALIDATORS:
        body = {
            "validator_id": validator_id,
            "kind": kind,
            "network_id": 1,
            "location": validator_id,
            "stop_id": stop_id,
            "route_id": route_id,
            "direction": direction,
        }
        response = client.post("/v1/validators", json=body, headers=deployment.admin)
        assert response.status_code == 201, response.text
        deployment.devices[validator_id] = {"Authorization": f"Bearer {response.json()['token']}"}


def new_rider(deployment: Deployment, client: httpx.Client, index: int) -> Rider:
    admin = deployment.admin
    account = client.post("/v1/accounts", json={}, headers=admin)
    assert account.status_code == 201, account.text
    account_id: str = account.json()["id"]
    topped = client.post(
        f"/v1/accounts/{account_id}/top-ups",
        json={"amount_vnd": SEED_VND, "payment_reference": f"seed-{index}"},
        headers=admin,
    )
    assert topped.status_code == 201, topped.text
    phone = Phone.new()
    key = base64.b64encode(phone.public_key()).decode()
    card = client.post(
        f"/v1/accounts/{account_id}/virtual-cards", json={"device_key": key}, headers=admin
    )
    assert card.status_code == 201, card.text
    phone.certify(card.json()["certificate"])
    return Rider(account_id, phone)


def day_of_taps(riders: list[Rider], start: int) -> dict[int, list[tuple[int, str]]]:
    """Each validator's taps as (tapped_at, code), in the order it saw them: every rider rides
    the metro from Cát Linh to Yên Nghĩa, then boards and leaves a bus on route 01."""
    seen: dict[int, list[tuple[int, str]]] = {v[0]: [] for v in VALIDATORS}
    for rider in riders:
        for step, validator_id in enumerate((GATE_IN, GATE_OUT, BUS, BUS)):
            at = start + step * TAP_GAP_S
            seen[validator_id].append((at, rider.code(at)))
    return seen


def tap_body(seq: int, tapped_at: int, code: str) -> dict[str, Any]:
    return {
        "medium": "qr",
        "seq": seq,
        "tapped_at": tapped_at,
        "device_decision": "accepted",
        "device_reason": "accepted",
        "code": code,
    }


def upload(
    deployment: Deployment,
    validator_id: int,
    taps: list[tuple[int, str]],
    *,
    first_seq: int,
    batch_taps: int,
    pause_s: float,
) -> None:
    """Uploads as a validator's outbox does: each batch again, with the same seqs, until every
    tap in it is acknowledged; a worker killed mid-request is simply another failed attempt."""
    headers = deployment.devices[validator_id]
    with deployment.client() as client:
        for offset in range(0, len(taps), batch_taps):
            chunk = taps[offset : offset + batch_taps]
            body = {
                "validator_id": validator_id,
                "taps": [
                    tap_body(first_seq + offset + i, at, code) for i, (at, code) in enumerate(chunk)
                ],
            }
            for _ in range(UPLOAD_ATTEMPTS_MAX):
                try:
                    response = client.post("/v1/taps/batch", json=body, headers=headers)
                except httpx.TransportError:
                    continue
                if response.status_code == httpx.codes.OK:
                    break
            else:
                pytest.fail(f"validator {validator_id} could not upload seq {first_seq + offset}")
            statuses = {r["status"] for r in response.json()["results"]}
            assert statuses <= {"accepted", "duplicate"}, response.text
            time.sleep(pause_s)


def upload_all(
    deployment: Deployment,
    seen: dict[int, list[tuple[int, str]]],
    first_seq: dict[int, int],
    *,
    batch_taps: int,
    pause_s: float,
) -> None:
    """Every validator uploads at the same time, each from its own thread."""
    failures: list[BaseException] = []

    def run(validator_id: int) -> None:
        try:
            upload(
                deployment,
                validator_id,
                seen[validator_id],
                first_seq=first_seq[validator_id],
                batch_taps=batch_taps,
                pause_s=pause_s,
            )
        except BaseException as error:  # reported to the test thread below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(v,)) for v in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]


class WorkerKiller:
    """SIGKILLs a worker whenever asked, once the supervisor has replaced the last one."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.killed: list[int] = []

    def kill_one(self) -> None:
        workers = wait_for_workers(self.server, WORKERS)
        victim = max(workers)
        os.kill(victim, signal.SIGKILL)
        self.killed.append(victim)
        deadline = time.monotonic() + REPLACED_WITHIN_S
        while victim in (after := worker_pids(self.server)) or len(after) != WORKERS:
            assert time.monotonic() < deadline, f"workers {after} after killing {victim}"
            time.sleep(POLL_S)


def wait_until_priced(container: Container) -> None:
    """Until the journey follower has applied every tap, and the journeys and ledger read models
    show what it did."""
    deadline = time.monotonic() + SETTLED_WITHIN_S
    while container.journeys.lag() or container.journey_follower.lag() or container.follower.lag():
        assert time.monotonic() < deadline, "the servers' followers did not catch up"
        time.sleep(POLL_S)


def reader(deployment: Deployment) -> Container:
    """The same stores, read from the test: no follower of its own runs here."""
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


def test_two_workers_with_kills_charge_every_rider_exactly_their_journeys(
    deployment: Deployment,
) -> None:
    with deployment.client() as client:
        register_validators(deployment, client)
        riders = [new_rider(deployment, client, i) for i in range(RIDERS)]
    half = RIDERS // 2
    start = int(time.time()) - TAPS_BEFORE_UPLOAD_S
    burst = day_of_taps(riders[:half], start)
    paced = day_of_taps(riders[half:], start)
    after_burst = {v: len(taps) + 1 for v, taps in burst.items()}
    killer = WorkerKiller(deployment.server)

    def kill_while_pricing() -> None:
        for _ in range(KILLS):
            killer.kill_one()

    kills = threading.Thread(target=kill_while_pricing)
    kills.start()
    upload_all(deployment, burst, dict.fromkeys(burst, 1), batch_taps=BURST_BATCH_TAPS, pause_s=0)
    upload_all(deployment, paced, after_burst, batch_taps=PACED_BATCH_TAPS, pause_s=PACED_PAUSE_S)
    kills.join()
    assert len(killer.killed) == KILLS

    container = reader(deployment)
    try:
        wait_until_priced(container)
        wrong: list[str] = []
        for rider in riders:
            account_id = UUID(rider.account_id)
            account = container.ledger.get_account(account_id)
            rows = container.journey_views.for_account(account_id)
            journeys_vnd = sum(row.charged_vnd for row in rows)
            seen = (SEED_VND - account.posted_vnd, account.pending_vnd, journeys_vnd)
            if seen != (RIDES_VND, 0, RIDES_VND):
                wrong.append(f"{rider.account_id}: paid, held, journeys {seen}")
        assert not wrong, (
            f"{len(wrong)} of {RIDERS} riders charged other than {RIDES_VND} VND: {wrong[:5]}"
        )
        # Transfer by transfer too: everything moved under a journey's id is that journey's.
        disagreements = reconcile(
            container.read_model.journey_lines(),
            container.read_model.pending_journey_holds(),
            container.journeys.get_journey,
        )
        assert disagreements == []
    finally:
        container.close()
