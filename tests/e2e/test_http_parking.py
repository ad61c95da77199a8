"""Parking over HTTP, in process (docs/parking-api.md): staff create an operator and a lot, a
rider parks from the app, an attendant parks a car from a scanned code, an officer checks
plates, and every creating request is one effect however often it is sent."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container
from tests.e2e.riders import ADMIN, rider_with_phone

# The lot charges by Dong Da's table (25,000 VND an hour for a car's first two hours) and is
# always open, so the amounts do not depend on the time of day the test runs.
LOT = "test-lot"
OPERATOR = "test-operator"
FUNDS_VND = 200_000
HOUR_VND = 25_000
PLATE = "29A-123.45"
LOT_BODY: dict[str, Any] = {
    "lot_id": LOT,
    "operator_id": OPERATOR,
    "name": "Ton Duc Thang",
    "address": "Ton Duc Thang, Dong Da, Hanoi",
    "lat": 21.0187,
    "lon": 105.8290,
    "capacity": {"car": 3, "motorbike": 10},
    "table_id": "hanoi-dong-da",
}


def token(client: TestClient, role: str, account_id: str | None = None) -> dict[str, str]:
    body: dict[str, Any] = {"role": role}
    if account_id is not None:
        body["account_id"] = account_id
    issued = client.post("/v1/tokens", json=body, headers=ADMIN)
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}"}


def in_hours(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


@pytest.fixture
def lot(client: TestClient) -> str:
    operator = {"operator_id": OPERATOR, "name": "Test parking"}
    assert client.post("/v1/parking/operators", json=operator, headers=ADMIN).status_code == 201
    created = client.post("/v1/parking/lots", json=LOT_BODY, headers=ADMIN)
    assert created.status_code == 201, created.text
    return LOT


def funded_rider(client: TestClient) -> tuple[str, Any, dict[str, str]]:
    account_id, phone = rider_with_phone(client)
    top_up = {"amount_vnd": FUNDS_VND, "payment_reference": f"pay-{account_id}"}
    assert client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN).is_success
    return account_id, phone, token(client, "rider", account_id)


def balances(client: TestClient, account_id: str) -> tuple[int, int]:
    account = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    return account["posted_vnd"], account["pending_vnd"]


def start_body(start_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "start_id": start_id,
        "lot_id": LOT,
        "plate": PLATE,
        "vehicle_class": "car",
        "paid_until": in_hours(2),
    }
    return body | fields


def test_a_rider_parks_extends_and_ends_from_the_app(client: TestClient, lot: str) -> None:
    account_id, _, rider = funded_rider(client)
    started = client.post("/v1/parking/sessions", json=start_body("app-1"), headers=rider)
    assert started.status_code == 201, started.text
    session = started.json()
    assert (session["held_vnd"], session["started_by"]) == (2 * HOUR_VND, "app")
    assert balances(client, account_id) == (FUNDS_VND, 2 * HOUR_VND)

    path = f"/v1/parking/sessions/{session['session_id']}"
    paid_until = datetime.fromisoformat(session["paid_until"]) + timedelta(hours=1)
    extension = {"extension_id": "ext-1", "paid_until": paid_until.isoformat()}
    extended = client.post(f"{path}/extensions", json=extension, headers=rider)
    assert extended.status_code == 201, extended.text
    assert extended.json()["held_vnd"] == 2 * HOUR_VND + 35_000
    again = client.post(f"{path}/extensions", json=extension, headers=rider)
    assert (again.status_code, again.json()) == (200, extended.json())

    ended = client.post(f"{path}/end", json={"end_id": "end-1"}, headers=rider)
    assert ended.status_code == 200, ended.text
    record = ended.json()["record"]
    assert (record["fee_vnd"], record["posted_vnd"], record["net_vnd"]) == (HOUR_VND,) * 3
    assert record["ended_by"] == "app"
    assert balances(client, account_id) == (FUNDS_VND - HOUR_VND, 0)


def test_a_quote_prices_a_stay_and_starts_a_session(client: TestClient, lot: str) -> None:
    account_id, _, rider = funded_rider(client)
    body = {"lot_id": lot, "vehicle_class": "car", "end": in_hours(3)}
    quoted = client.post("/v1/parking/quotes", json=body, headers=rider)
    assert quoted.status_code == 201, quoted.text
    quote = quoted.json()
    assert quote["amount_vnd"] == 2 * HOUR_VND + 35_000
    assert sum(segment["amount_vnd"] for segment in quote["segments"]) == quote["amount_vnd"]

    start = start_body("app-q", paid_until=None, quote_id=quote["quote_id"])
    started = client.post("/v1/parking/sessions", json=start, headers=rider)
    assert started.status_code == 201, started.text
    assert balances(client, account_id) == (FUNDS_VND, quote["amount_vnd"])


def test_an_attendant_parks_a_car_from_a_scanned_code_once(client: TestClient, lot: str) -> None:
    account_id, phone, _ = funded_rider(client)
    attendant = token(client, "operator")
    code = phone.code(int(time.time()), 1)
    body = start_body("handheld-3-1", code=code)
    started = client.post("/v1/parking/sessions", json=body, headers=attendant)
    assert started.status_code == 201, started.text
    assert (started.json()["account_id"], started.json()["started_by"]) == (account_id, "attendant")

    again = client.post("/v1/parking/sessions", json=body, headers=attendant)
    assert (again.status_code, again.json()["session_id"]) == (200, started.json()["session_id"])
    other = start_body("handheld-3-2", code=code, plate="30E-678.90")
    reused = client.post("/v1/parking/sessions", json=other, headers=attendant)
    assert (reused.status_code, reused.json()["code"]) == (409, "code_already_used")
    assert balances(client, account_id) == (FUNDS_VND, 2 * HOUR_VND)


def test_a_bad_code_or_plate_is_refused_with_its_reason(client: TestClient, lot: str) -> None:
    attendant = token(client, "operator")
    bad_code = client.post(
        "/v1/parking/sessions", json=start_body("h-1", code="TL1:NOTACODE"), headers=attendant
    )
    assert bad_code.status_code == 422
    assert bad_code.json()["code"].startswith("code_")
    account_id, _, _ = funded_rider(client)
    bad_plate = client.post(
        "/v1/parking/sessions",
        json=start_body("h-2", plate="HELLO", account_id=account_id),
        headers=attendant,
    )
    assert (bad_plate.status_code, bad_plate.json()["code"]) == (422, "plate_unreadable")


def test_one_open_session_per_plate_per_lot(client: TestClient, lot: str) -> None:
    _, _, rider = funded_rider(client)
    first = client.post("/v1/parking/sessions", json=start_body("a"), headers=rider)
    assert first.is_success
    second = client.post(
        "/v1/parking/sessions", json=start_body("b", plate="29a12345"), headers=rider
    )
    assert (second.status_code, second.json()["code"]) == (409, "session_already_open")
    # The answer names the session that is open, as docs/parking-api.md says.
    assert second.json()["session_id"] == first.json()["session_id"]


def test_an_officer_sees_paid_and_unpaid_plates(client: TestClient, lot: str) -> None:
    _, _, rider = funded_rider(client)
    officer = token(client, "operator")
    client.post("/v1/parking/sessions", json=start_body("a"), headers=rider)

    paid = client.get(f"/v1/parking/enforcement?lot_id={lot}&plate=29A12345", headers=officer)
    unpaid = client.get(f"/v1/parking/enforcement?lot_id={lot}&plate=30E67890", headers=officer)

    assert (paid.status_code, paid.json()["status"]) == (200, "paid")
    assert paid.json()["plate"] == PLATE
    assert (unpaid.json()["status"], unpaid.json()["session_id"]) == ("unpaid", None)
    forbidden = client.get(f"/v1/parking/enforcement?lot_id={lot}&plate=29A12345", headers=rider)
    assert forbidden.status_code == 403


def test_an_enforcement_check_refuses_a_bad_query_as_any_route_would(
    client: TestClient, lot: str
) -> None:
    officer = token(client, "operator")
    url = "/v1/parking/enforcement"

    missing = client.get(f"{url}?plate=29A12345", headers=officer)
    too_long = client.get(f"{url}?lot_id={lot}&plate={'9' * 21}", headers=officer)
    unreadable = client.get(f"{url}?lot_id={lot}&plate=29A-12", headers=officer)
    no_lot = client.get(f"{url}?lot_id=nowhere&plate=29A12345", headers=officer)
    no_token = client.get(f"{url}?lot_id={lot}&plate=29A12345")

    assert (missing.status_code, missing.json()["code"]) == (422, "validation_error")
    assert missing.json()["errors"] == [
        {"location": ["query", "lot_id"], "message": "Field required"}
    ]
    assert too_long.json()["errors"][0]["location"] == ["query", "plate"]
    assert (unreadable.status_code, unreadable.json()["code"]) == (422, "plate_unreadable")
    assert (no_lot.status_code, no_lot.json()["code"]) == (404, "lot_not_found")
    assert no_token.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_credit_refunds_part_of_a_fee_and_never_more_than_it(
    client: TestClient, lot: str
) -> None:
    account_id, _, rider = funded_rider(client)
    session = client.post("/v1/parking/sessions", json=start_body("a"), headers=rider).json()
    path = f"/v1/parking/sessions/{session['session_id']}/end"
    client.post(path, json={"end_id": "e"}, headers=rider)
    credits = f"/v1/parking/records/{session['session_id']}/credits"

    credit = {"credit_id": "c-1", "amount_vnd": 10_000, "reason": "meter fault"}
    first = client.post(credits, json=credit, headers=ADMIN)
    again = client.post(credits, json=credit, headers=ADMIN)
    second = client.post(credits, json=credit | {"credit_id": "c-2"}, headers=ADMIN)
    too_much = client.post(
        credits, json=credit | {"credit_id": "c-3", "amount_vnd": 5_001}, headers=ADMIN
    )

    assert first.status_code == again.status_code == second.status_code == 201
    assert (first.json()["net_vnd"], second.json()["net_vnd"]) == (15_000, 5_000)
    assert (too_much.status_code, too_much.json()["code"]) == (409, "credit_exceeds_fee")
    assert balances(client, account_id) == (FUNDS_VND - HOUR_VND + 20_000, 0)


def test_a_lot_lists_its_sessions_and_free_places(
    client: TestClient, container: Container, lot: str
) -> None:
    _, _, rider = funded_rider(client)
    client.post("/v1/parking/sessions", json=start_body("a"), headers=rider)
    container.parking.follower.catch_up()

    sessions = client.get(f"/v1/parking/sessions?lot_id={lot}&state=open", headers=ADMIN).json()
    lot_now = client.get(f"/v1/parking/lots/{lot}", headers=rider).json()
    near = client.get(
        "/v1/parking/lots?lat=21.0190&lon=105.8292&vehicle_class=car", headers=rider
    ).json()
    ending = client.get("/v1/parking/sessions?ending_within_minutes=180", headers=rider).json()

    assert [s["plate_display"] for s in sessions["items"]] == [PLATE]
    assert lot_now["free"] == {"car": 2, "motorbike": 10, "large": 0}
    assert [found["lot_id"] for found in near["items"]] == [lot]
    assert 0 < near["items"][0]["distance_m"] < 100
    assert len(ending["items"]) == 1


def test_a_validator_token_does_nothing_in_parking(
    client: TestClient, container: Container, lot: str
) -> None:
    device_token = container.tokens.issue_device_token(77, label="a gate")
    validator = {"Authorization": f"Bearer {device_token}"}
    assert client.get(f"/v1/parking/lots/{lot}", headers=validator).status_code == 403


def test_a_rider_sees_and_ends_only_its_own_sessions(client: TestClient, lot: str) -> None:
    _, _, owner = funded_rider(client)
    _, _, stranger = funded_rider(client)
    session = client.post("/v1/parking/sessions", json=start_body("a"), headers=owner).json()
    path = f"/v1/parking/sessions/{session['session_id']}"

    read = client.get(path, headers=stranger)
    ended = client.post(f"{path}/end", json={"end_id": "e"}, headers=stranger)
    record = client.get(f"/v1/parking/records/{session['session_id']}", headers=stranger)

    assert (read.status_code, read.json()["code"]) == (404, "session_not_found")
    assert (ended.status_code, ended.json()["code"]) == (404, "session_not_found")
    assert record.status_code == 404
    assert client.get(path, headers=owner).json()["state"] == "open"


def test_a_rider_may_not_backdate_a_start_or_an_end(client: TestClient, lot: str) -> None:
    _, _, rider = funded_rider(client)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    start = client.post(
        "/v1/parking/sessions", json=start_body("a", started_at=an_hour_ago), headers=rider
    )
    assert (start.status_code, start.json()["code"]) == (422, "action_time_out_of_range")
    session = client.post("/v1/parking/sessions", json=start_body("b"), headers=rider).json()
    end = client.post(
        f"/v1/parking/sessions/{session['session_id']}/end",
        json={"end_id": "e", "ended_at": an_hour_ago},
        headers=rider,
    )
    assert (end.status_code, end.json()["code"]) == (422, "action_time_out_of_range")


def test_an_attendant_may_not_date_an_action_beyond_the_offline_limit(
    client: TestClient, lot: str
) -> None:
    account_id, _, _ = funded_rider(client)
    attendant = token(client, "operator")
    a_day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    body = start_body("h-1", account_id=account_id, started_at=a_day_ago)

    refused = client.post("/v1/parking/sessions", json=body, headers=attendant)

    assert (refused.status_code, refused.json()["code"]) == (422, "action_time_out_of_range")
    assert balances(client, account_id) == (FUNDS_VND, 0)


def test_a_handhelds_queued_actions_are_answered_each_as_if_sent_alone(
    client: TestClient, lot: str
) -> None:
    account_id, phone, _ = funded_rider(client)
    attendant = token(client, "operator")
    code = phone.code(int(time.time()), 1)
    actions: list[dict[str, Any]] = [
        {"kind": "start", **start_body("hh-1", account_id=account_id)},
        {"kind": "start", **start_body("hh-2", plate="30E-678.90", code=code)},
        {"kind": "start", **start_body("hh-3", plate="29a12345", account_id=account_id)},
        {"kind": "start", **start_body("hh-4", plate="51G-111.22", code=code)},
    ]
    started = client.post("/v1/parking/actions", json={"actions": actions}, headers=attendant)
    assert started.status_code == 200, started.text
    items = started.json()["items"]
    assert [item["status"] for item in items] == [201, 201, 409, 409]
    assert [item["problem"]["code"] for item in items[2:]] == [
        "session_already_open",
        "code_already_used",
    ]
    session_id = items[0]["session"]["session_id"]
    later = [
        {
            "kind": "extend",
            "session_id": session_id,
            "extension_id": "x",
            "paid_until": in_hours(3),
        },
        {"kind": "end", "session_id": session_id, "end_id": "e"},
        {"kind": "end", "session_id": items[1]["session"]["session_id"], "end_id": "e"},
    ]
    ended = client.post("/v1/parking/actions", json={"actions": later}, headers=attendant)
    assert [item["status"] for item in ended.json()["items"]] == [200, 200, 200]
    assert ended.json()["items"][1]["record"]["fee_vnd"] == HOUR_VND
    again = client.post("/v1/parking/actions", json={"actions": actions[:2]}, headers=attendant)
    assert [item["status"] for item in again.json()["items"]] == [200, 200]
    assert balances(client, account_id) == (FUNDS_VND - 2 * HOUR_VND, 0)


def test_a_batch_of_actions_is_bounded_and_for_staff(client: TestClient, lot: str) -> None:
    account_id, _, rider = funded_rider(client)
    attendant = token(client, "operator")
    one = {"kind": "start", **start_body("b-1", account_id=account_id)}
    too_many = {"actions": [one] * 101}
    refused = client.post("/v1/parking/actions", json=too_many, headers=attendant)
    assert refused.status_code == 422
    by_rider = client.post("/v1/parking/actions", json={"actions": [one]}, headers=rider)
    assert by_rider.status_code == 403
    empty = client.post("/v1/parking/actions", json={"actions": []}, headers=attendant)
    assert empty.status_code == 422
