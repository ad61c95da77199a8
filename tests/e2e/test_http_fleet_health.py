"""The fleet's health over HTTP, in process: devices report on each sync, staff list the fleet
with its flags (stale, offline, behind the deny list, deep outbox, clock skewed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings
from tests.doubles import Clock
from tests.e2e.riders import ADMIN, rider_with_phone
from tests.e2e.test_http_validator_sync import register
from ticketing.taps.adapters.health_views import (
    DENY_LIST_GRACE_S,
    HEALTH_STALE_S,
    OFFLINE_S,
    OUTBOX_DEPTH_DEEP,
)

GATE = 3101
BUS = 3001
SILENT = 3002  # registered, never reported


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def container(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    built = bootstrap(ExplicitSettings(data_dir=tmp_path, follow_in_process=False), clock=clock)
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, own_container=False)) as test_client:
        yield test_client


def report(clock: Clock, **fields: Any) -> dict[str, Any]:
    """A healthy device's report at `clock`'s time, with `fields` changed."""
    now_s = int(clock.now.timestamp())
    return {
        "sent_at_ms": now_s * 1000,
        "outbox_depth": 0,
        "oldest_tap_age_s": None,
        "last_upload_at": now_s,
        "last_sync_at": now_s,
        "clock_offset_ms": 12,
        "software_version": "0.1.0",
        "keys_version": 1,
        "keys_etag": '"keys-1"',
        "deny_version": 0,
        "config_etag": '"config-0"',
        **fields,
    }


def fleet(client: TestClient, container: Container, query: str = "") -> dict[int, list[str]]:
    container.health_follower.catch_up()
    answer = client.get(f"/v1/validators{query}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return {item["validator_id"]: item["flags"] for item in answer.json()["items"]}


def sent(
    client: TestClient, device: dict[str, str], validator_id: int, body: dict[str, Any]
) -> int:
    answer = client.post(f"/v1/validators/{validator_id}/health", json=body, headers=device)
    assert answer.status_code == 201, answer.text
    server_time_ms: int = answer.json()["server_time_ms"]
    return server_time_ms


def test_the_fleet_lists_a_silent_device_stale_and_a_full_outbox_deep(
    client: TestClient, container: Container, clock: Clock
) -> None:
    gate = register(client, GATE, stop_id="2A-01", route_id="2A", direction="entry")
    bus = register(client, BUS)
    register(client, SILENT)
    sent(client, bus, BUS, report(clock, outbox_depth=OUTBOX_DEPTH_DEEP + 1, oldest_tap_age_s=40))
    clock.advance(HEALTH_STALE_S + 1)  # the bus falls silent; the gate reports
    server_time_ms = sent(client, gate, GATE, report(clock))
    assert server_time_ms == int(clock.now.timestamp() * 1000)

    assert fleet(client, container) == {
        GATE: [],
        BUS: ["stale", "deep_outbox"],
        SILENT: ["stale", "offline"],
    }
    assert fleet(client, container, "?flag=deep_outbox") == {BUS: ["stale", "deep_outbox"]}
    clock.advance(OFFLINE_S)
    assert fleet(client, container, "?flag=offline").keys() == {GATE, BUS, SILENT}


def test_the_latest_report_is_listed_with_its_fields_and_the_limits(
    client: TestClient, container: Container, clock: Clock
) -> None:
    gate = register(client, GATE, stop_id="2A-01", route_id="2A", direction="entry")
    first = report(clock, outbox_depth=3)
    sent(client, gate, GATE, first)
    sent(client, gate, GATE, first)  # sent twice (an answer lost): stored once
    clock.advance(60)
    sent(client, gate, GATE, report(clock, outbox_depth=0, clock_offset_ms=-45_000))
    container.health_follower.catch_up()
    page = client.get("/v1/validators", headers=ADMIN).json()
    (item,) = page["items"]
    assert item["health"]["outbox_depth"] == 0
    assert item["health"]["software_version"] == "0.1.0"
    assert item["flags"] == ["clock_skewed"]
    assert page["limits"]["stale_after_s"] == HEALTH_STALE_S
    assert page["next_after"] is None
    reports = [
        e for e in container.taps.recorder.select_notifications(start=1, limit=1000)
        if e.topic.endswith("HealthReported")
    ]  # fmt: skip
    assert len(reports) == 2


def test_a_device_behind_the_deny_list_is_flagged_once_the_grace_has_passed(
    client: TestClient, container: Container, clock: Clock
) -> None:
    gate = register(client, GATE, stop_id="2A-01", route_id="2A", direction="entry")
    bus = register(client, BUS)
    account_id, _ = rider_with_phone(client)
    container.card_follower.catch_up()
    card_id = client.get(f"/v1/accounts/{account_id}/virtual-cards", headers=ADMIN).json()[0][
        "card_id"
    ]
    client.post(f"/v1/virtual-cards/{card_id}/block", json={"reason": "lost"}, headers=ADMIN)
    container.card_follower.catch_up()
    current = client.get("/v1/deny-list?since=0", headers=bus).json()["version"]
    sent(client, gate, GATE, report(clock, deny_version=0))  # just after the block: in grace
    sent(client, bus, BUS, report(clock, deny_version=current))
    assert fleet(client, container) == {GATE: [], BUS: []}
    clock.advance(DENY_LIST_GRACE_S + 1)
    sent(client, gate, GATE, report(clock, deny_version=0))
    sent(client, bus, BUS, report(clock, deny_version=current))
    assert fleet(client, container) == {GATE: ["behind_deny_list"], BUS: []}


def test_a_device_reports_only_as_itself_and_staff_only_read_the_fleet(
    client: TestClient, clock: Clock
) -> None:
    gate = register(client, GATE, stop_id="2A-01", route_id="2A", direction="entry")
    bus = register(client, BUS)
    as_other = client.post(f"/v1/validators/{BUS}/health", json=report(clock), headers=gate)
    assert (as_other.status_code, as_other.json()["code"]) == (403, "forbidden")
    by_admin = client.post(f"/v1/validators/{BUS}/health", json=report(clock), headers=ADMIN)
    assert by_admin.status_code == 403
    assert client.get("/v1/validators", headers=bus).status_code == 403
    bad = client.post(
        f"/v1/validators/{BUS}/health", json=report(clock, outbox_depth=-1), headers=bus
    )
    assert bad.status_code == 422
