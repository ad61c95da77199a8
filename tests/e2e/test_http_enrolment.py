"""A device's life over HTTP, in process: enrolled with a one-time code, revoked, and refused
when it uploads as another; every refusal is recorded with its reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import ADMIN, qr, rider_with_phone
from ticketing.taps.domain.enrolment_code import ENROLMENT_CODE_TTL_S

BUS = 17
GATE = 42
PLACES = {
    BUS: {"kind": "bus", "stop_id": "bus-kim-ma", "route_id": "01"},
    GATE: {"kind": "metro_gate", "stop_id": "2A-01", "route_id": "2A", "direction": "entry"},
}


class Clock:
    """The backend's clock, moved by the test (a code expires)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def container(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    built = bootstrap(ExplicitSettings(data_dir=tmp_path, follow_in_process=False), clock=clock)
    yield built
    built.close()


def register(client: TestClient, validator_id: int) -> None:
    body = {"validator_id": validator_id, "network_id": 1, "location": 32}
    response = client.post("/v1/validators", json=body | PLACES[validator_id], headers=ADMIN)
    assert response.status_code == 201, response.text


def enrolment_code(client: TestClient, validator_id: int) -> str:
    response = client.post(f"/v1/validators/{validator_id}/enrolment-codes", headers=ADMIN)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def enrol(client: TestClient, code: str) -> dict[str, Any]:
    response = client.post("/v1/enrolments", json={"code": code})
    assert response.status_code == 201, response.text
    enrolled: dict[str, Any] = response.json()
    return enrolled


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def batch(
    client: TestClient, token: str, validator_id: int, taps: list[dict[str, Any]], epoch: int
) -> Any:
    body = {"validator_id": validator_id, "epoch": epoch, "taps": taps}
    return client.post("/v1/taps/batch", json=body, headers=bearer(token))


def refusals(client: TestClient, container: Container, validator_id: int) -> list[Any]:
    container.catch_up()
    response = client.get(f"/v1/device-refusals?validator_id={validator_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    listed: list[Any] = response.json()
    return listed


def test_a_device_enrols_with_a_code_and_uploads_as_itself_with_the_token_it_got(
    client: TestClient,
) -> None:
    register(client, BUS)
    code = enrolment_code(client, BUS)
    assert len(code.replace("-", "")) == 16  # 80 bits in base32
    enrolled = enrol(client, code.lower())  # case and dashes do not matter
    assert (enrolled["validator_id"], enrolled["epoch"]) == (BUS, 1)
    assert enrolled["validator"]["kind"] == "bus"
    _, phone = rider_with_phone(client)
    now = int(time.time())
    answer = batch(client, enrolled["token"], BUS, [qr(phone, 1, now=now)], epoch=1)
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"]


def test_an_enrolment_code_used_twice_is_refused_the_second_time_and_the_refusal_recorded(
    client: TestClient, container: Container
) -> None:
    register(client, BUS)
    code = enrolment_code(client, BUS)
    first = enrol(client, code)
    second = client.post("/v1/enrolments", json={"code": code})
    assert (second.status_code, second.json()["code"]) == (409, "enrolment_code_used")
    # The first device's token still works: the refused exchange issued nothing.
    config = client.get(f"/v1/validators/{BUS}/config", headers=bearer(first["token"]))
    assert config.status_code == 200
    [refusal] = refusals(client, container, BUS)
    assert (refusal["request"], refusal["reason"], refusal["validator_id"]) == (
        "enrolment",
        "enrolment_code_used",
        BUS,
    )


def test_an_expired_or_unknown_enrolment_code_is_refused_and_recorded(
    client: TestClient, container: Container, clock: Clock
) -> None:
    register(client, BUS)
    code = enrolment_code(client, BUS)
    clock.offset = timedelta(seconds=ENROLMENT_CODE_TTL_S)
    expired = client.post("/v1/enrolments", json={"code": code})
    assert (expired.status_code, expired.json()["code"]) == (410, "enrolment_code_expired")
    unknown = client.post("/v1/enrolments", json={"code": "0000-0000-0000-0000"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "enrolment_code_unknown")
    container.catch_up()
    listed = client.get("/v1/device-refusals", headers=ADMIN).json()
    assert [(r["reason"], r["validator_id"]) for r in listed] == [
        ("enrolment_code_unknown", 0),
        ("enrolment_code_expired", BUS),
    ]


def test_a_revoked_validators_uploads_are_refused_and_recorded_until_a_new_code_enrols_it(
    client: TestClient, container: Container
) -> None:
    register(client, BUS)
    stale_code = enrolment_code(client, BUS)
    token = enrol(client, enrolment_code(client, BUS))["token"]
    _, phone = rider_with_phone(client)
    now = int(time.time())
    revoked = client.post(f"/v1/validators/{BUS}/revoke", headers=ADMIN)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    for _ in range(2):  # a device retrying the same batch: one record
        refused = batch(client, token, BUS, [qr(phone, 1, now=now)], epoch=1)
        assert (refused.status_code, refused.json()["code"]) == (403, "validator_revoked")
    tokens = client.post(f"/v1/validators/{BUS}/tokens", headers=ADMIN)
    assert (tokens.status_code, tokens.json()["code"]) == (403, "validator_revoked")
    # A code made before the revocation (handed out with the stolen device) enrols nothing.
    stale = client.post("/v1/enrolments", json={"code": stale_code})
    assert (stale.status_code, stale.json()["code"]) == (410, "enrolment_code_revoked")
    assert [
        (r["request"], r["reason"], r["token_validator_id"])
        for r in refusals(client, container, BUS)
    ] == [("enrolment", "enrolment_code_revoked", 0), ("upload", "validator_revoked", BUS)]

    again = enrol(client, enrolment_code(client, BUS))
    assert again["epoch"] == 2
    assert again["validator"]["revoked_at"] is None
    answer = batch(client, again["token"], BUS, [qr(phone, 1, now=now)], epoch=2)
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"]
    # The old token stays refused, now as a replaced token of a validator no longer revoked.
    old = batch(client, token, BUS, [qr(phone, 2, now=now)], epoch=1)
    assert (old.status_code, old.json()["code"]) == (401, "device_token_revoked")


def test_a_device_uploading_as_another_validator_is_refused_and_recorded(
    client: TestClient, container: Container
) -> None:
    register(client, BUS)
    register(client, GATE)
    token = enrol(client, enrolment_code(client, BUS))["token"]
    _, phone = rider_with_phone(client)
    now = int(time.time())
    taps = [qr(phone, seq, now=now) for seq in (5, 6, 7)]
    foreign = batch(client, token, GATE, taps, epoch=0)
    assert (foreign.status_code, foreign.json()["code"]) == (403, "forbidden")
    online = client.post(
        "/v1/taps", json={"validator_id": GATE, "tap": qr(phone, 9, now=now)}, headers=bearer(token)
    )
    assert online.status_code == 403
    listed = refusals(client, container, GATE)
    assert sorted(
        (r["reason"], r["validator_id"], r["token_validator_id"], r["first_seq"], r["last_seq"])
        for r in listed
    ) == [("not_this_device", GATE, BUS, 5, 7), ("not_this_device", GATE, BUS, 9, 9)]
    assert (
        client.get(f"/v1/validators/{GATE}", headers=ADMIN).json()["sequence"]["taps_recorded"] == 0
    )


def test_only_staff_make_enrolment_codes_revoke_and_read_refusals(client: TestClient) -> None:
    register(client, BUS)
    token = enrol(client, enrolment_code(client, BUS))["token"]
    for path in (f"/v1/validators/{BUS}/enrolment-codes", f"/v1/validators/{BUS}/revoke"):
        assert client.post(path, headers=bearer(token)).status_code == 403
        assert client.post(path).status_code == 401
    assert client.get("/v1/device-refusals", headers=bearer(token)).status_code == 403
    missing = client.post("/v1/validators/999/enrolment-codes", headers=ADMIN)
    assert (missing.status_code, missing.json()["code"]) == (404, "validator_not_found")


def test_a_revoked_validators_upload_with_a_token_still_cached_is_refused_by_the_tap_path(
    client: TestClient, container: Container
) -> None:
    register(client, BUS)
    token = enrol(client, enrolment_code(client, BUS))["token"]
    _, phone = rider_with_phone(client)
    now = int(time.time())
    # As in a worker whose news of the token's revocation is late: the token still works.
    container.taps.revoke_validator(BUS)
    refused = batch(client, token, BUS, [qr(phone, seq, now=now) for seq in (3, 4)], epoch=1)
    assert (refused.status_code, refused.json()["code"]) == (403, "validator_revoked")
    online = client.post(
        "/v1/taps",
        json={"validator_id": BUS, "epoch": 1, "tap": qr(phone, 5, now=now)},
        headers=bearer(token),
    )
    assert (online.status_code, online.json()["code"]) == (403, "validator_revoked")
    assert sorted(
        (r["reason"], r["first_seq"], r["last_seq"], r["taps"])
        for r in refusals(client, container, BUS)
    ) == [("validator_revoked", 3, 4, 2), ("validator_revoked", 5, 5, 1)]
