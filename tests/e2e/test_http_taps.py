"""The tap path over HTTP, in process: devices registered, batches uploaded, gaps reported."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from hardware.sam import SoftwareSam
from tapledger.bootstrap import Container, bootstrap
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import (
    ADMIN,
    card,
    qr,
    rider_with_phone,
)
from tests.tap_media import CARD_SERIAL, MASTER_KEYS, bus_ride, personalised_card
from ticketing.taps.application.ingestion import (
    DEVICE_CLOCK_SKEW_S_MAX,
    SCANNED_TEXT_MAX_CHARS,
    TAP_BATCH_BYTES_MAX,
    TAP_BATCH_MAX,
)

BUS = 17
GATE = 42
JSON_CONTENT = {"Content-Type": "application/json"}
# Places of the built-in Hanoi fare feed, by kind: registration refuses one the feed cannot price.
PLACES = {
    "bus": {"stop_id": "bus-kim-ma", "route_id": "01"},
    "metro_gate": {"stop_id": "2A-01", "route_id": "2A", "direction": "entry"},
}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = ExplicitSettings(data_dir=tmp_path, follow_in_process=False)
    built = bootstrap(settings, sam=SoftwareSam(MASTER_KEYS))
    yield built
    built.close()


def register(client: TestClient, validator_id: int, kind: str = "bus") -> dict[str, str]:
    body = {"validator_id": validator_id, "kind": kind, "network_id": 1, "location": 32}
    body |= PLACES.get(kind, {})
    response = client.post("/v1/validators", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def upload(
    client: TestClient, headers: dict[str, str], validator_id: int, taps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    response = client.post(
        "/v1/taps/batch", json={"validator_id": validator_id, "taps": taps}, headers=headers
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_a_registered_validator_uploads_a_batch_and_gets_a_result_per_tap(
    client: TestClient,
) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    now = int(time.time())
    taps = [qr(phone, 1, now=now), qr(phone, 2, now=now), qr(phone, 3, now=now, counter=1)]
    taps.append({**qr(phone, 4, now=now), "code": "TL1:garbage", "device_decision": "refused"})
    results = upload(client, device, BUS, taps)
    assert [(r["seq"], r["status"], r["reason"]) for r in results] == [
        (1, "accepted", None),
        (2, "accepted", None),
        (3, "refused", "code_replayed"),
        (4, "refused", "malformed"),
    ]
    again = upload(client, device, BUS, taps)
    assert [r["status"] for r in again] == ["duplicate"] * 4
    assert [r["tap_id"] for r in again] == [r["tap_id"] for r in results]


def test_a_registration_returns_the_device_token_once_and_an_id_registers_once(
    client: TestClient,
) -> None:
    register(client, BUS)
    body = {"validator_id": BUS, "kind": "metro_gate", "network_id": 1, "location": 9}
    body |= PLACES["metro_gate"]
    again = client.post("/v1/validators", json=body, headers=ADMIN)
    assert (again.status_code, again.json()["code"]) == (409, "validator_already_registered")
    shown = client.get(f"/v1/validators/{BUS}", headers=ADMIN).json()
    assert "token" not in shown
    assert (shown["kind"], shown["location"]) == ("bus", 32)


def test_a_device_cannot_upload_as_another_validator_nor_act_as_staff(client: TestClient) -> None:
    device = register(client, BUS)
    register(client, GATE, kind="metro_gate")
    _, phone = rider_with_phone(client)
    now = int(time.time())
    foreign = client.post(
        "/v1/taps/batch",
        json={"validator_id": GATE, "taps": [qr(phone, 1, now=now)]},
        headers=device,
    )
    assert (foreign.status_code, foreign.json()["code"]) == (403, "forbidden")
    admin_upload = client.post(
        "/v1/taps", json={"validator_id": BUS, "tap": qr(phone, 1, now=now)}, headers=ADMIN
    )
    assert admin_upload.status_code == 403
    assert client.get("/v1/accounts", headers=device).status_code == 403
    account_id, _ = rider_with_phone(client)
    assert client.get(f"/v1/accounts/{account_id}", headers=device).status_code == 403
    assert client.post("/v1/validators", json={}, headers=device).status_code == 403
    token = client.post("/v1/tokens", json={"role": "validator"}, headers=ADMIN)
    assert (token.status_code, token.json()["code"]) == (422, "invalid_token_request")


def test_gaps_in_a_devices_sequence_are_reported(client: TestClient, container: Container) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    now = int(time.time())
    upload(client, device, BUS, [qr(phone, seq, now=now) for seq in (1, 2, 5, 9)])
    container.catch_up()
    report = client.get(f"/v1/validators/{BUS}", headers=ADMIN).json()["sequence"]
    assert report["highest_seq"] == 9
    assert (report["taps_recorded"], report["missing_count"]) == (4, 5)
    assert report["missing_seqs"] == [3, 4, 6, 7, 8]
    upload(client, device, BUS, [qr(phone, seq, now=now) for seq in (3, 4)])
    container.catch_up()
    report = client.get(f"/v1/validators/{BUS}", headers=ADMIN).json()["sequence"]
    assert (report["missing_count"], report["missing_seqs"]) == (3, [6, 7, 8])


def test_the_online_check_answers_a_card_tap_with_the_backends_decision(
    client: TestClient,
) -> None:
    device = register(client, BUS)
    account_id, _ = rider_with_phone(client)
    issued = client.post(
        "/v1/cards", json={"serial": CARD_SERIAL.hex(), "account_id": account_id}, headers=ADMIN
    )
    assert issued.status_code == 201, issued.text
    now = int(time.time())
    proof = bus_ride(personalised_card(UUID(account_id)), at=now, validator=BUS)
    answer = client.post(
        "/v1/taps", json={"validator_id": BUS, "tap": card(proof, 1, now=now)}, headers=device
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["reason"]) == ("accepted", None)
    forged = card(proof, 2, now=now)
    forged["proof"]["card_mac"] = "00" * 8
    refused = upload(client, device, BUS, [forged])
    assert (refused[0]["status"], refused[0]["reason"]) == ("refused", "bad_card_mac")


def test_a_batch_over_the_limit_or_with_unbounded_fields_is_refused_by_the_schema(
    client: TestClient,
) -> None:
    device = register(client, BUS)
    tap = {
        "medium": "qr",
        "seq": 1,
        "tapped_at": 0,
        "device_decision": "accepted",
        "device_reason": "accepted",
        "code": "TL1:",
    }
    too_many = [{**tap, "seq": s} for s in range(1, TAP_BATCH_MAX + 2)]
    response = client.post(
        "/v1/taps/batch", json={"validator_id": BUS, "taps": too_many}, headers=device
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    # Longer than any QR code can hold: no scan, but abuse.
    long_code = {**tap, "code": "A" * (SCANNED_TEXT_MAX_CHARS + 1)}
    response = client.post(
        "/v1/taps/batch", json={"validator_id": BUS, "taps": [long_code]}, headers=device
    )
    assert response.status_code == 422
    huge = {"validator_id": BUS, "taps": [], "pad": " " * TAP_BATCH_BYTES_MAX}
    response = client.post("/v1/taps/batch", json=huge, headers=device)
    assert (response.status_code, response.json()["code"]) == (413, "tap_batch_too_large")


def test_the_online_check_refuses_bad_requests_with_problems(client: TestClient) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    now = int(time.time())
    tap = {"validator_id": BUS, "tap": qr(phone, 1, now=now)}
    anonymous = client.post("/v1/taps", json=tap)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    not_bearer = client.post("/v1/taps", json=tap, headers={"Authorization": "Basic abc"})
    assert not_bearer.status_code == 401
    unknown = client.post("/v1/taps", json=tap, headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    broken = client.post(
        "/v1/taps", content=b'{"validator_id": 17, "tap": ', headers=device | JSON_CONTENT
    )
    assert (broken.status_code, broken.json()["code"]) == (422, "validation_error")
    unknown_field = client.post("/v1/taps", json=tap | {"extra": 1}, headers=device)
    assert (unknown_field.status_code, unknown_field.json()["code"]) == (422, "validation_error")
    bad_seq = {"validator_id": BUS, "tap": qr(phone, 1, now=now) | {"seq": 0}}
    assert client.post("/v1/taps", json=bad_seq, headers=device).status_code == 422
    accepted = client.post("/v1/taps", json=tap, headers=device)
    assert (accepted.status_code, accepted.json()["status"]) == (200, "accepted")
    assert accepted.headers["content-type"] == "application/json"


def test_the_openapi_document_describes_the_online_check(client: TestClient) -> None:
    route = client.get("/openapi.json").json()["paths"]["/v1/taps"]["post"]
    schema = route["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"validator_id", "tap"}
    assert "200" in route["responses"]


def test_the_openapi_document_describes_the_batch_upload(client: TestClient) -> None:
    route = client.get("/openapi.json").json()["paths"]["/v1/taps/batch"]["post"]
    schema = route["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"validator_id", "taps"}
    assert schema["properties"]["taps"]["maxItems"] == TAP_BATCH_MAX


def test_a_reused_seq_is_a_seq_conflict_kept_for_review_until_the_device_is_enrolled_again(
    client: TestClient, container: Container
) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    now = int(time.time())
    before_wipe = [qr(phone, seq, now=now) for seq in (1, 2, 3)]
    originals = upload(client, device, BUS, before_wipe)
    after_wipe = [qr(phone, seq, now=now, counter=10 + seq) for seq in (1, 2, 3)]
    conflicts = upload(client, device, BUS, after_wipe)
    assert [(r["seq"], r["status"]) for r in conflicts] == [
        (1, "seq_conflict"),
        (2, "seq_conflict"),
        (3, "seq_conflict"),
    ]
    assert {r["tap_id"] for r in conflicts}.isdisjoint(r["tap_id"] for r in originals)
    container.catch_up()
    listed = client.get(f"/v1/validators/{BUS}/seq-conflicts", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    assert sorted(
        (c["seq"], c["conflict_id"], c["conflicts_with"]) for c in listed.json()["items"]
    ) == [(r["seq"], c["tap_id"], r["tap_id"]) for r, c in zip(originals, conflicts, strict=True)]
    assert client.get(f"/v1/validators/{BUS}/seq-conflicts", headers=device).status_code == 403

    enrolled = client.post(f"/v1/validators/{BUS}/enrolments", headers=ADMIN)
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["epoch"] == 1
    renewed = {"Authorization": f"Bearer {enrolled.json()['token']}"}
    body = {"validator_id": BUS, "epoch": 1, "taps": after_wipe}
    again = client.post("/v1/taps/batch", json=body, headers=renewed)
    assert [r["status"] for r in again.json()["results"]] == ["accepted"] * 3
    container.catch_up()
    shown = client.get(f"/v1/validators/{BUS}", headers=ADMIN).json()
    assert (shown["epoch"], shown["sequence"]["epoch"]) == (1, 1)
    assert (shown["sequence"]["highest_seq"], shown["sequence"]["missing_count"]) == (3, 0)
    config = client.get(f"/v1/validators/{BUS}/config", headers=renewed).json()
    assert config["validator"]["epoch"] == 1
    never = client.post("/v1/taps/batch", json=body | {"epoch": 2}, headers=renewed)
    assert (never.status_code, never.json()["code"]) == (409, "epoch_not_enrolled")


def test_two_taps_numbered_alike_in_one_batch_are_one_tap_and_one_seq_conflict(
    client: TestClient,
) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    now = int(time.time())
    first, other = qr(phone, 7, now=now), qr(phone, 7, now=now, counter=70)
    results = upload(client, device, BUS, [first, other, first])
    assert [r["status"] for r in results] == ["accepted", "seq_conflict", "duplicate"]


def test_a_bad_scan_in_a_batch_is_that_taps_malformed_refusal_and_the_rest_is_recorded(
    client: TestClient,
) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    now = int(time.time())
    scans = ["A" * 401, "", "TL1:" + "0" * 3000, "TL1:\u0000\u001b é"]
    taps = [{**qr(phone, seq, now=now), "code": code} for seq, code in enumerate(scans, 1)]
    taps.append(qr(phone, 5, now=now))
    # Sent as a scanner may read it: control characters escaped, any Unicode letter.
    body = json.dumps({"validator_id": BUS, "taps": taps})
    response = client.post("/v1/taps/batch", content=body, headers=device | JSON_CONTENT)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["seq"], r["status"], r["reason"]) for r in results] == [
        (1, "refused", "malformed"),
        (2, "refused", "malformed"),
        (3, "refused", "malformed"),
        (4, "refused", "malformed"),
        (5, "accepted", None),
    ]
    again = client.post("/v1/taps/batch", content=body, headers=device | JSON_CONTENT)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 5


def test_the_online_check_refuses_a_tap_from_a_device_clock_an_hour_ahead(
    client: TestClient,
) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    ahead = int(time.time()) + 3600
    answer = client.post(
        "/v1/taps", json={"validator_id": BUS, "tap": qr(phone, 1, now=ahead)}, headers=device
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["status"], result["reason"]) == ("refused", "device_clock_skewed")
    assert result["code_consumed"]  # a genuine code, seen: it cannot be sent again later
    route = client.get("/openapi.json").json()["paths"]["/v1/taps"]["post"]
    assert f"{DEVICE_CLOCK_SKEW_S_MAX} s" in route["description"]


def test_a_code_sent_twice_as_refused_is_not_accepted_the_third_time(client: TestClient) -> None:
    device = register(client, BUS)
    _, phone = rider_with_phone(client)
    now = int(time.time())
    code = phone.code(now - 1, 77)
    answers = []
    for seq, decision in ((1, "refused"), (2, "refused"), (3, "accepted")):
        tap = {**qr(phone, seq, now=now), "code": code, "device_decision": decision}
        response = client.post("/v1/taps", json={"validator_id": BUS, "tap": tap}, headers=device)
        answers.append(response.json())
    assert [(a["status"], a["reason"], a["code_consumed"]) for a in answers] == [
        ("accepted", None, True),
        ("refused", "code_replayed", False),
        ("refused", "code_replayed", False),
    ]


@pytest.mark.parametrize(
    ("place", "field"),
    [
        ({"kind": "bus"}, "stop_id"),
        ({"kind": "bus", "stop_id": "nowhere", "route_id": "01"}, "stop_id"),
        ({"kind": "bus", "stop_id": "bus-kim-ma", "route_id": "999"}, "route_id"),
        ({"kind": "bus", "stop_id": "2A-01", "route_id": "2A"}, "route_id"),
        ({"kind": "metro_gate", "stop_id": "2A-01", "route_id": "2A"}, "direction"),
        (
            {"kind": "metro_gate", "stop_id": "bus-kim-ma", "route_id": "2A", "direction": "exit"},
            "stop_id",
        ),
        (
            {"kind": "metro_gate", "stop_id": "3-01", "route_id": "01", "direction": "exit"},
            "route_id",
        ),
    ],
)
def test_a_validator_at_a_place_the_fare_feed_cannot_price_is_refused_naming_the_field(
    client: TestClient, place: dict[str, str], field: str
) -> None:
    body = {"validator_id": BUS, "network_id": 1, "location": 32, **place}
    response = client.post("/v1/validators", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validator_place_unpriced"
    assert problem["detail"].startswith(f"{field}: ")
    assert client.get(f"/v1/validators/{BUS}", headers=ADMIN).status_code == 404


def test_a_parking_handheld_names_no_fare_place(client: TestClient) -> None:
    body = {"validator_id": BUS, "kind": "parking_handheld", "network_id": 1, "location": 5}
    assert client.post("/v1/validators", json=body, headers=ADMIN).status_code == 201
