"""What a stranger's traffic may cost, on the real app in process: the size limit, then
authentication before the body, then limits per principal and per address, then idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tapledger.auth import api_tokens
from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tapledger.http.body_limit import REQUEST_BODY_MAX_BYTES, TAP_BATCH_BODY_MAX_BYTES
from tests.asgi_script import ScriptedBody, call, stream
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import ADMIN
from tests.hotstate_contract import RecordingHotState

AUTH_FAILURES = 10
CHUNK_BYTES = 64 * 1024
STREAMED_BYTES = 4 * TAP_BATCH_BODY_MAX_BYTES


@dataclass
class Rig:
    app: FastAPI
    client: TestClient
    container: Container
    hot_state: RecordingHotState


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    settings = ExplicitSettings(
        data_dir=tmp_path,
        follow_in_process=False,
        auth_failures_per_window=AUTH_FAILURES,
    )
    hot_state = RecordingHotState()
    container = bootstrap(settings, hot_state=hot_state)
    app = create_app(container, own_container=False)
    with TestClient(app) as client:
        yield Rig(app, client, container, hot_state)
    container.close()


def test_oversized_body_is_refused_413_before_its_token_is_even_checked(rig: Rig) -> None:
    response = rig.client.post("/v1/accounts", content=b" " * (REQUEST_BODY_MAX_BYTES + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"


def test_request_without_a_valid_token_is_401_before_its_body_is_read(rig: Rig) -> None:
    # A FastAPI route reads its body before solving its dependencies; the tap routes by hand.
    paths = ("/v1/accounts", "/v1/taps/batch")
    for path, headers in product(paths, ({}, {"Authorization": "Bearer tlk_made-up"})):
        body = ScriptedBody(stream(CHUNK_BYTES, 4 * REQUEST_BODY_MAX_BYTES))
        answer = call(rig.app, "POST", path, body, headers)
        assert answer.status == 401
        assert answer.json()["code"] == "not_authenticated"
        assert body.pulled_bytes == 0


def test_streamed_tap_batch_is_cut_off_once_past_its_route_limit(rig: Rig) -> None:
    body = ScriptedBody(stream(CHUNK_BYTES, STREAMED_BYTES))
    answer = call(rig.app, "POST", "/v1/taps/batch", body, ADMIN)
    assert answer.status == 413
    assert answer.json()["code"] == "body_too_large"
    assert body.pulled_bytes <= TAP_BATCH_BODY_MAX_BYTES + CHUNK_BYTES


def test_flood_of_made_up_tokens_is_answered_429(rig: Rig) -> None:
    statuses = [
        rig.client.get("/v1/me", headers={"Authorization": f"Bearer tlk_fake{n}"}).status_code
        for n in range(AUTH_FAILURES + 5)
    ]
    assert statuses == [401] * AUTH_FAILURES + [429] * 5
    # The flood holds back no one with a real token.
    assert rig.client.get("/v1/me", headers=ADMIN).status_code == 200


def test_requests_without_a_valid_token_leave_no_idempotency_key(rig: Rig) -> None:
    for n in range(20):
        headers = {"Idempotency-Key": f"k{n}", "Authorization": f"Bearer tlk_fake{n}"}
        rig.client.post("/v1/accounts", json={"rider_category": 1}, headers=headers)
        rig.client.post(
            "/v1/accounts", json={"rider_category": 1}, headers={"Idempotency-Key": "x"}
        )
    assert [key for key in rig.hot_state.written if key.startswith("idempotency:")] == []


def test_account_retried_after_hot_state_came_back_empty_is_opened_once(rig: Rig) -> None:
    headers = ADMIN | {"Idempotency-Key": "open-rider-7"}
    first = rig.client.post("/v1/accounts", json={"rider_category": 1}, headers=headers)
    events = rig.container.ledger.recorder.max_notification_id()
    rig.hot_state.empty()
    retry = rig.client.post("/v1/accounts", json={"rider_category": 1}, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert rig.container.ledger.recorder.max_notification_id() == events


def test_token_retried_after_hot_state_came_back_empty_is_issued_once(rig: Rig) -> None:
    def tokens_stored() -> int:
        with rig.container.engine.connect() as conn:
            count: int = conn.execute(select(func.count()).select_from(api_tokens)).scalar_one()
        return count

    headers = ADMIN | {"Idempotency-Key": "operator-token-1"}
    first = rig.client.post("/v1/tokens", json={"role": "operator"}, headers=headers)
    stored = tokens_stored()
    rig.hot_state.empty()
    retry = rig.client.post("/v1/tokens", json={"role": "operator"}, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["token_id"] == first.json()["token_id"]
    assert tokens_stored() == stored
