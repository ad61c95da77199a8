"""Parking reservations over HTTP, in process (docs/parking-api.md, Reservations): a rider books a
place and cancels it late, arrives and parks, or does not come; staff book for an account; the
last place is booked once; every request is one effect however often it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tests.builders.settings import ExplicitSettings
from tests.doubles import Clock
from tests.e2e.riders import ADMIN
from tests.e2e.test_http_parking import (
    FUNDS_VND,
    HOUR_VND,
    LOT,
    LOT_BODY,
    OPERATOR,
    PLATE,
    balances,
    funded_rider,
    token,
)

# The lot has 3 car places and charges by Dong Da's table: 25,000 VND an hour for the first two
# hours; cancelling is free until an hour before the window, then 10,000; a no-show 25,000.
LATE_CANCEL_VND = 10_000
NO_SHOW_VND = 25_000
RESERVATIONS = "/v1/parking/reservations"
MINUTE_S = 60


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def container(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    built = bootstrap(ExplicitSettings(data_dir=tmp_path, follow_in_process=False), clock=clock)
    yield built
    built.close()


@pytest.fixture
def lot(client: TestClient) -> str:
    operator = {"operator_id": OPERATOR, "name": "Test parking"}
    assert client.post("/v1/parking/operators", json=operator, headers=ADMIN).status_code == 201
    created = client.post("/v1/parking/lots", json=LOT_BODY, headers=ADMIN)
    assert created.status_code == 201, created.text
    return LOT


def booking(
    clock: Clock, reservation_id: str, *, in_hours: float = 2, **fields: Any
) -> dict[str, Any]:
    window_from = clock() + timedelta(hours=in_hours)
    body = {
        "reservation_id": reservation_id,
        "lot_id": LOT,
        "vehicle_class": "car",
        "plate": PLATE,
        "from": window_from.isoformat(),
        "to": (window_from + timedelta(hours=2)).isoformat(),
    }
    return body | fields


def test_a_rider_books_a_place_and_cancels_it_late(
    client: TestClient, clock: Clock, lot: str
) -> None:
    account_id, _, rider = funded_rider(client)
    body = booking(clock, "app-r1", in_hours=1.5)
    booked = client.post(RESERVATIONS, json=body, headers=rider)
    assert booked.status_code == 201, booked.text
    reservation = booked.json()
    assert (reservation["state"], reservation["held_vnd"]) == ("booked", 2 * HOUR_VND)
    window_from = datetime.fromisoformat(body["from"])
    assert datetime.fromisoformat(reservation["from"]) == window_from
    assert booked.headers["Location"] == f"{RESERVATIONS}/app-r1"
    again = client.post(RESERVATIONS, json=body, headers=rider)
    assert (again.status_code, again.json()["reservation_id"]) == (200, "app-r1")
    assert balances(client, account_id) == (FUNDS_VND, 2 * HOUR_VND)

    clock.advance(40 * MINUTE_S)  # 50 minutes before the window: too late to cancel free
    cancel = client.post(f"{RESERVATIONS}/app-r1/cancel", json={"cancel_id": "c1"}, headers=rider)
    assert cancel.status_code == 200, cancel.text
    assert (cancel.json()["state"], cancel.json()["fee_vnd"]) == ("cancelled", LATE_CANCEL_VND)
    assert balances(client, account_id) == (FUNDS_VND - LATE_CANCEL_VND, 0)
    other = client.post(f"{RESERVATIONS}/app-r1/cancel", json={"cancel_id": "c2"}, headers=rider)
    assert (other.status_code, other.json()["code"]) == (409, "reservation_closed")


def test_a_rider_arrives_and_parks_until_the_window_ends(
    client: TestClient, clock: Clock, lot: str
) -> None:
    account_id, _, rider = funded_rider(client)
    booked = client.post(RESERVATIONS, json=booking(clock, "app-r2", in_hours=1), headers=rider)
    assert booked.status_code == 201, booked.text
    clock.advance(60 * MINUTE_S)

    path = f"{RESERVATIONS}/app-r2/arrive"
    arrived = client.post(path, json={"start_id": "app-s2"}, headers=rider)
    assert arrived.status_code == 201, arrived.text
    session = arrived.json()
    assert session["started_by"] == "reservation"
    assert datetime.fromisoformat(session["paid_until"]) == datetime.fromisoformat(
        booked.json()["to"]
    )
    assert client.post(path, json={"start_id": "app-s2"}, headers=rider).status_code == 200
    reservation = client.get(f"{RESERVATIONS}/app-r2", headers=rider).json()
    assert (reservation["state"], reservation["session_id"]) == ("fulfilled", session["session_id"])
    assert balances(client, account_id) == (FUNDS_VND, 2 * HOUR_VND)


def test_a_reservation_nobody_arrives_for_pays_the_no_show_fee(
    client: TestClient, container: Container, clock: Clock, lot: str
) -> None:
    account_id, _, rider = funded_rider(client)
    client.post(RESERVATIONS, json=booking(clock, "app-r3", in_hours=1), headers=rider)
    clock.advance(91 * MINUTE_S)
    container.parking.follower.catch_up()

    assert container.parking.sweeper.sweep().no_shows == 1

    reservation = client.get(f"{RESERVATIONS}/app-r3", headers=rider).json()
    assert (reservation["state"], reservation["fee_vnd"]) == ("no_show", NO_SHOW_VND)
    assert balances(client, account_id) == (FUNDS_VND - NO_SHOW_VND, 0)
    late = client.post(f"{RESERVATIONS}/app-r3/arrive", json={"start_id": "s"}, headers=rider)
    assert (late.status_code, late.json()["code"]) == (409, "reservation_closed")


def test_staff_book_for_an_account_and_the_last_place_is_booked_once(
    client: TestClient, clock: Clock, lot: str
) -> None:
    plates = ["29A-111.11", "29A-222.22", "29A-333.33", "29A-444.44"]
    accounts = [funded_rider(client)[0] for _ in plates]
    answers = [
        client.post(
            RESERVATIONS,
            json=booking(clock, f"desk-{n}", plate=plate, account_id=account),
            headers=ADMIN,
        )
        for n, (plate, account) in enumerate(zip(plates, accounts, strict=True))
    ]

    assert [answer.status_code for answer in answers] == [201, 201, 201, 409]
    assert answers[3].json()["code"] == "no_place_free"
    assert balances(client, accounts[3]) == (FUNDS_VND, 0)
    missing = client.post(RESERVATIONS, json=booking(clock, "desk-9"), headers=ADMIN)
    assert (missing.status_code, missing.json()["code"]) == (422, "payer_missing")


def test_a_reservation_is_its_owners_and_its_id_is_not_reused(
    client: TestClient, clock: Clock, lot: str
) -> None:
    _, _, rider = funded_rider(client)
    _, _, stranger = funded_rider(client)
    client.post(RESERVATIONS, json=booking(clock, "app-r5"), headers=rider)

    hidden = client.get(f"{RESERVATIONS}/app-r5", headers=stranger)
    reused = client.post(
        RESERVATIONS, json=booking(clock, "app-r5", plate="30E-678.90"), headers=rider
    )
    past = client.post(RESERVATIONS, json=booking(clock, "app-r6", in_hours=-1), headers=rider)
    absent = client.get(f"{RESERVATIONS}/nobody", headers=rider)

    assert (hidden.status_code, hidden.json()["code"]) == (404, "reservation_not_found")
    assert (reused.status_code, reused.json()["code"]) == (409, "request_id_reused")
    assert (past.status_code, past.json()["code"]) == (422, "invalid_reservation")
    assert absent.status_code == 404


def test_a_rider_lists_its_own_reservations(
    client: TestClient, container: Container, clock: Clock, lot: str
) -> None:
    _, _, rider = funded_rider(client)
    _, _, other = funded_rider(client)
    client.post(RESERVATIONS, json=booking(clock, "app-r7"), headers=rider)
    client.post(RESERVATIONS, json=booking(clock, "app-r8", plate="30E-678.90"), headers=other)
    container.parking.follower.catch_up()

    mine = client.get(RESERVATIONS, headers=rider).json()["items"]
    staff = client.get(
        f"{RESERVATIONS}?lot_id={LOT}&state=booked", headers=token(client, "operator")
    )

    assert [item["reservation_id"] for item in mine] == ["app-r7"]
    assert len(staff.json()["items"]) == 2
