"""`/healthz` reports every follower's lag and is degraded past the configured bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import ADMIN

LAG_MAX = 3
FOLLOWERS = {"ledger", "cards", "tap_views", "journeys", "journey_views", "parking"}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = ExplicitSettings(data_dir=tmp_path, follow_in_process=False, health_lag_max=LAG_MAX)
    container = bootstrap(settings)
    yield container
    container.close()


def write_events(client: TestClient, count: int) -> None:
    for _ in range(count):
        assert client.post("/v1/accounts", json={}, headers=ADMIN).status_code == 201


def test_events_other_than_taps_are_no_lag_of_the_journey_follower(
    client: TestClient, container: Container
) -> None:
    # On SQLite every application shares one log: accounts opened after the last tap are not
    # taps the pricing follower has still to apply.
    container.catch_up()
    write_events(client, LAG_MAX + 2)
    assert container.journeys.lag() == 0
    assert client.get("/healthz").json()["followers"]["journeys"] == 0


def test_healthz_reports_the_lag_of_every_follower(
    client: TestClient, container: Container
) -> None:
    container.catch_up()
    body = client.get("/healthz").json()
    assert set(body["followers"]) == FOLLOWERS
    assert body["lag_max"] == LAG_MAX


def record_taps(client: TestClient, count: int) -> None:
    """`count` taps a bus validator uploads (unreadable scans: recorded, refused)."""
    body = {
        "validator_id": 601,
        "kind": "bus",
        "network_id": 1,
        "location": 601,
        "stop_id": "bus-kim-ma",
        "route_id": "01",
        "direction": "",
    }
    registered = client.post("/v1/validators", json=body, headers=ADMIN)
    assert registered.status_code == 201, registered.text
    device = {"Authorization": f"Bearer {registered.json()['token']}"}
    taps = [
        {
            "medium": "qr",
            "seq": seq,
            "tapped_at": 1_800_000_000,
            "device_decision": "refused",
            "device_reason": "code_malformed",
            "code": "TL1:x",
        }
        for seq in range(1, count + 1)
    ]
    uploaded = client.post(
        "/v1/taps/batch", json={"validator_id": 601, "taps": taps}, headers=device
    )
    assert uploaded.status_code == 200, uploaded.text


def test_healthz_is_degraded_when_only_the_journey_follower_lags(
    client: TestClient, container: Container
) -> None:
    record_taps(client, LAG_MAX + 2)
    # Every follower but the pricing one catches up: before, only the ledger's lag was read.
    for follower in container.followers:
        follower.catch_up()
    response = client.get("/healthz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert body["followers"]["journeys"] > LAG_MAX
    assert body["followers"]["ledger"] == 0
    assert body["checks"]["followers"] == "behind: journeys"


def test_healthz_is_ok_when_every_follower_is_within_the_bound(
    client: TestClient, container: Container
) -> None:
    container.catch_up()
    response = client.get("/healthz")
    assert response.status_code == 200, response.text
    assert all(lag <= LAG_MAX for lag in response.json()["followers"].values())
