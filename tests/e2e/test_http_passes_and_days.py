"""Over HTTP and the CLI: selling a pass, listing refused journeys, closing a service day."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hardware.sam import SoftwareSam
from tapledger.bootstrap import Container, bootstrap
from tapledger.cli import app as cli
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings
from tests.doubles import Clock
from tests.e2e.riders import ADMIN, gate, qr, rider_with_phone
from tests.tap_media import MASTER_KEYS, Phone
from ticketing.fares.journey_fares import service_day
from ticketing.shared.access import Role

ENTRY, EXIT_12, EXIT_99 = 311, 312, 319
SEED_VND = 100_000


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def container(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    settings = ExplicitSettings(data_dir=tmp_path, follow_in_process=False)
    built = bootstrap(settings, clock=clock, sam=SoftwareSam(MASTER_KEYS))
    yield built
    built.close()


def seeded_rider(client: TestClient) -> tuple[str, Phone]:
    account_id, phone = rider_with_phone(client)
    topped = client.post(
        f"/v1/accounts/{account_id}/top-ups",
        json={"amount_vnd": SEED_VND, "payment_reference": f"seed-{account_id}"},
        headers=ADMIN,
    )
    assert topped.status_code == 201, topped.text
    return account_id, phone


def upload(client: TestClient, headers: dict[str, str], validator_id: int, tap: Any) -> None:
    response = client.post(
        "/v1/taps/batch", json={"validator_id": validator_id, "taps": [tap]}, headers=headers
    )
    assert response.json()["results"][0]["status"] == "accepted", response.text


def rider_token(container: Container, account_id: str) -> dict[str, str]:
    issued = container.tokens.issue(Role.RIDER, account_id=UUID(account_id))
    return {"Authorization": f"Bearer {issued.token}"}


def posted(client: TestClient, account_id: str) -> int:
    balance: int = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()["posted_vnd"]
    return balance


# Passes


def test_staff_sell_a_pass_once_per_purchase_id_and_the_rider_reads_it(
    client: TestClient, container: Container
) -> None:
    account_id, _ = seeded_rider(client)
    body = {"purchase_id": "desk-7-0001", "fare_product_id": "metro_2a_day"}
    url = f"/v1/accounts/{account_id}/passes"
    first = client.post(url, json=body, headers=ADMIN)
    again = client.post(url, json=body, headers=ADMIN)
    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert first.json() == again.json()
    assert first.json()["price_vnd"] == 30_000
    assert posted(client, account_id) == SEED_VND - 30_000
    listed = client.get(url, headers=rider_token(container, account_id))
    assert listed.status_code == 200, listed.text
    assert [p["purchase_id"] for p in listed.json()] == ["desk-7-0001"]


def test_a_rider_cannot_sell_itself_a_pass_nor_read_anothers(
    client: TestClient, container: Container
) -> None:
    account_id, _ = seeded_rider(client)
    other_id, _ = seeded_rider(client)
    rider = rider_token(container, account_id)
    body = {"purchase_id": "self-1", "fare_product_id": "metro_2a_day"}
    assert (
        client.post(f"/v1/accounts/{account_id}/passes", json=body, headers=rider).status_code
        == 403
    )
    assert client.get(f"/v1/accounts/{other_id}/passes", headers=rider).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"purchase_id": "p-1", "fare_product_id": "bus_single_8000"}, 404, "unknown_pass_product"),
        (
            {"purchase_id": "p-1", "fare_product_id": "bus_monthly_one_route"},
            422,
            "pass_route_invalid",
        ),
        (
            {"purchase_id": "p-1", "fare_product_id": "bus_monthly_all_routes"},
            422,
            "insufficient_funds",
        ),
    ],
)
def test_a_pass_sale_that_cannot_be_made_answers_a_problem_with_its_code(
    client: TestClient, body: dict[str, str], status: int, code: str
) -> None:
    account_id, _ = seeded_rider(client)
    response = client.post(f"/v1/accounts/{account_id}/passes", json=body, headers=ADMIN)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert posted(client, account_id) == SEED_VND


# Refused journeys


def test_staff_list_refused_journeys_of_every_account(
    client: TestClient, container: Container
) -> None:
    entry = gate(client, ENTRY, "2A-01", "entry")
    # A gate at a station the feed does not know, registered before registration checked the
    # place against the feed: its journeys are refused `unknown_stop`.
    container.taps.register_validator(
        validator_id=EXIT_99,
        kind="metro_gate",
        network_id=2,
        location=EXIT_99,
        stop_id="2A-99",
        route_id="2A",
        direction="exit",
    )
    token = container.tokens.issue_device_token(EXIT_99, label="gate at 2A-99")
    exit_99 = {"Authorization": f"Bearer {token}"}
    account_id, phone = seeded_rider(client)
    now = int(time.time())
    upload(client, entry, ENTRY, qr(phone, 1, now=now - 60, counter=1))
    upload(client, exit_99, EXIT_99, qr(phone, 1, now=now, counter=2))
    container.catch_up()
    listed = client.get("/v1/journeys", params={"status": "refused"}, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    [journey] = listed.json()
    assert (journey["account_id"].replace("-", ""), journey["reason_code"]) == (
        account_id.replace("-", ""),
        "unknown_stop",
    )
    assert posted(client, account_id) == SEED_VND
    account = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    assert account["pending_vnd"] == 0
    rider = rider_token(container, account_id)
    assert client.get("/v1/journeys", params={"status": "refused"}, headers=rider).status_code == (
        403
    )
    assert client.get("/v1/journeys", headers=ADMIN).status_code == 422


# Closing a service day


def test_closing_an_ended_day_charges_open_journeys_once(
    client: TestClient, container: Container, clock: Clock
) -> None:
    entry = gate(client, ENTRY, "2A-01", "entry")
    account_id, phone = seeded_rider(client)
    now = int(clock.now.timestamp())
    upload(client, entry, ENTRY, qr(phone, 1, now=now, counter=1))
    container.catch_up()
    day = service_day(clock.now, container.journeys.fares.timezone).isoformat()
    url = f"/v1/journeys/service-days/{day}/close"
    early = client.post(url, headers=ADMIN)
    assert early.status_code == 409, early.text
    assert early.json()["code"] == "service_day_not_ended"
    clock.now += timedelta(days=1)
    rider = rider_token(container, account_id)
    assert client.post(url, headers=rider).status_code == 403
    first, again = client.post(url, headers=ADMIN), client.post(url, headers=ADMIN)
    assert (first.status_code, first.json()) == (200, {"service_day": day, "closed": 1})
    assert again.json() == {"service_day": day, "closed": 0}
    assert posted(client, account_id) == SEED_VND - 15_000


def test_the_cli_closes_the_last_ended_day_by_default_and_refuses_one_not_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAPLEDGER_DATA_DIR", str(tmp_path))
    yesterday = Clock(datetime.now(UTC) - timedelta(days=1))
    settings = ExplicitSettings(data_dir=tmp_path, follow_in_process=False)
    container = bootstrap(settings, clock=yesterday, sam=SoftwareSam(MASTER_KEYS))
    with TestClient(create_app(container, own_container=False)) as client:
        entry = gate(client, ENTRY, "2A-01", "entry")
        account_id, phone = seeded_rider(client)
        upload(client, entry, ENTRY, qr(phone, 1, now=int(yesterday.now.timestamp()), counter=1))
    container.catch_up()
    container.close()
    day = service_day(yesterday.now, container.journeys.fares.timezone)

    closed = CliRunner().invoke(cli, ["journeys", "close-day"])
    again = CliRunner().invoke(cli, ["journeys", "close-day", "--day", day.isoformat()])
    future = CliRunner().invoke(cli, ["journeys", "close-day", "--day", "2999-01-01"])

    assert closed.exit_code == 0, closed.output
    assert f"service day {day}: closed 1 journeys" in closed.output
    assert f"service day {day}: closed 0 journeys" in again.output
    assert future.exit_code == 2
    assert "has not ended" in future.output
    after = bootstrap(settings, sam=SoftwareSam(MASTER_KEYS))
    try:
        assert after.ledger.get_account(UUID(account_id)).posted_vnd == SEED_VND - 15_000
    finally:
        after.close()
