"""A request whose saves keep losing the race is answered 503 problem+json, in process: the
client may send it again, and it learns so from a stable code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tapledger.settings import LOCAL_ADMIN_TOKEN, Settings
from ticketing.shared import optimistic

ADMIN = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}
SERIAL = "0011223344556677"


def no_sleep(_: int) -> None:
    """The back-off between attempts, without the wait."""


@pytest.fixture
def container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    monkeypatch.setattr(optimistic, "back_off", no_sleep)
    settings = Settings(_env_file=None, data_dir=tmp_path, follow_in_process=False)  # type: ignore[call-arg]
    built = bootstrap(settings)
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, own_container=False)) as test_client:
        yield test_client


def refuse_every_save(monkeypatch: pytest.MonkeyPatch, app: Application[UUID]) -> None:
    """The app's store answers every save as if another writer had saved first."""

    def insert_events(stored_events: list[Any], **_: Any) -> None:
        raise IntegrityError("another writer saved first")

    monkeypatch.setattr(app.recorder, "insert_events", insert_events)


def test_a_card_block_that_never_wins_the_race_is_503_contended(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    issued = client.post(
        "/v1/cards", json={"serial": SERIAL, "account_id": account_id}, headers=ADMIN
    )
    assert issued.status_code == 201
    refuse_every_save(monkeypatch, container.cards)
    blocked = client.post(f"/v1/cards/{SERIAL}/block", json={"reason": "lost"}, headers=ADMIN)
    assert blocked.status_code == 503
    assert blocked.headers["content-type"] == "application/problem+json"
    assert blocked.json()["code"] == "contended"
    monkeypatch.undo()
    card = client.get(f"/v1/cards/{SERIAL}", headers=ADMIN).json()
    assert card["status"] == "active"


def test_a_top_up_that_never_wins_the_race_keeps_the_ledgers_own_code(
    client: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    refuse_every_save(monkeypatch, container.ledger)
    top_up = {"amount_vnd": 10_000, "payment_reference": "bank-1"}
    answer = client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "ledger_busy"
