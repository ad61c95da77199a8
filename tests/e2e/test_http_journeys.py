"""A metro journey over HTTP: gates registered at their stations, taps uploaded, journey read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hardware.sam import SoftwareSam
from tapledger.bootstrap import Container, bootstrap
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import (
    ADMIN,
    gate,
    qr,
    rider_with_phone,
)
from tests.tap_media import MASTER_KEYS

ENTRY, EXIT = 301, 302


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = ExplicitSettings(data_dir=tmp_path, follow_in_process=False)
    built = bootstrap(settings, sam=SoftwareSam(MASTER_KEYS))
    yield built
    built.close()


def test_a_2a_ride_is_held_posted_and_listed_for_its_rider(
    client: TestClient, container: Container
) -> None:
    entry, exit_ = gate(client, ENTRY, "2A-01", "entry"), gate(client, EXIT, "2A-12", "exit")
    account_id, phone = rider_with_phone(client)
    topped = client.post(
        f"/v1/accounts/{account_id}/top-ups",
        json={"amount_vnd": 50_000, "payment_reference": "seed-1"},
        headers=ADMIN,
    )
    assert topped.status_code == 201, topped.text
    now = int(time.time())
    taps = ((ENTRY, entry, now - 60, 1), (EXIT, exit_, now, 2))
    for validator_id, headers, at, counter in taps:
        response = client.post(
            "/v1/taps/batch",
            json={"validator_id": validator_id, "taps": [qr(phone, 1, now=at, counter=counter)]},
            headers=headers,
        )
        assert response.json()["results"][0]["status"] == "accepted", response.text
    container.catch_up()
    listed = client.get("/v1/journeys", params={"account_id": account_id}, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    [journey] = listed.json()
    assert (journey["status"], journey["fare_vnd"]) == ("ended", 15_000)
    assert journey["charged_vnd"] == 15_000
    account = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    assert account["posted_vnd"] == 35_000


def test_a_rider_cannot_list_another_accounts_journeys(client: TestClient) -> None:
    no_token = client.get("/v1/journeys", params={"account_id": "0" * 32})
    assert no_token.status_code == 401


def test_a_gate_refusal_is_not_charged_and_staff_list_it_as_a_disagreement(
    client: TestClient, container: Container
) -> None:
    entry = gate(client, ENTRY, "2A-01", "entry")
    account_id, phone = rider_with_phone(client)
    now = int(time.time())
    refused = qr(phone, 1, now=now) | {"device_decision": "refused", "device_reason": "gate_fault"}
    response = client.post(
        "/v1/taps/batch", json={"validator_id": ENTRY, "taps": [refused]}, headers=entry
    )
    assert response.json()["results"][0]["status"] == "accepted", response.text
    container.catch_up()
    listed = client.get("/v1/journeys", params={"account_id": account_id}, headers=ADMIN)
    assert listed.json() == []
    account = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    assert account["pending_vnd"] == 0
    assert client.get("/v1/taps/disagreements", headers=entry).status_code == 403
    review = client.get("/v1/taps/disagreements", params={"validator_id": ENTRY}, headers=ADMIN)
    assert review.status_code == 200, review.text
    [flagged] = review.json()
    assert (flagged["seq"], flagged["kind"], flagged["device_reason"]) == (
        1,
        "turned_away_verified",
        "gate_fault",
    )
