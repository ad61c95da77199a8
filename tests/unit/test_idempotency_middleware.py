"""Idempotency-Key on a tiny app whose handlers count their effects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from tapledger.http.hotstate_memory import MemoryHotState
from tapledger.http.idempotency import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    IDEMPOTENCY_TTL_MS,
    IDEMPOTENT_BODY_MAX_BYTES,
    IDEMPOTENT_RESPONSE_MAX_BYTES,
    IN_PROGRESS_TTL_MS,
    IdempotencyMiddleware,
)
from tapledger.http.problems import PROBLEM_MEDIA_TYPE
from tests.doubles import MillisClock
from tests.hotstate_contract import RecordingHotState, SwitchableHotState
from tests.http_auth import ALICE, BOB, authenticate_everything

TOPUP = {"card": "04A1B2C3", "amount_vnd": 50_000}
OTHER_TOPUP = {"card": "04A1B2C3", "amount_vnd": 90_000}


def keyed(key: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


@dataclass
class Rig:
    """The app under test, its client, the store and clock behind it, and the effects counted."""

    client: TestClient
    store: SwitchableHotState
    clock: MillisClock
    effects: list[str] = field(default_factory=list)
    seen_in_flight: list[httpx.Response] = field(default_factory=list)


def build_rig() -> Rig:
    clock = MillisClock()
    store = SwitchableHotState(MemoryHotState(now_ms=clock))
    app = FastAPI()
    app.add_middleware(IdempotencyMiddleware, hot_state=store)
    authenticate_everything(app, store)
    # Alice calls unless a test says otherwise: keys are kept only for a principal.
    rig = Rig(TestClient(app, raise_server_exceptions=False, headers=ALICE), store, clock)

    @app.post("/topups")
    async def create_topup(request: Request) -> JSONResponse:
        rig.effects.append("topup")
        body: dict[str, Any] = await request.json()
        number = len(rig.effects)
        headers = {"Location": f"/topups/{number}"}
        return JSONResponse({"topup": number, **body}, status_code=201, headers=headers)

    @app.get("/topups")
    async def list_topups() -> dict[str, int]:
        rig.effects.append("list")
        return {"count": len(rig.effects)}

    @app.delete("/topups/1")
    async def cancel_topup() -> Response:
        rig.effects.append("cancel")
        return Response(status_code=204)

    @app.post("/flaky")
    async def flaky() -> JSONResponse:
        rig.effects.append("flaky")
        status = 503 if len(rig.effects) == 1 else 201
        return JSONResponse({"attempt": len(rig.effects)}, status_code=status)

    @app.post("/crashy")
    async def crashy() -> JSONResponse:
        rig.effects.append("crashy")
        if len(rig.effects) == 1:
            raise RuntimeError("the first attempt crashes")
        return JSONResponse({"attempt": len(rig.effects)}, status_code=201)

    @app.post("/huge")
    async def huge() -> Response:
        rig.effects.append("huge")
        return Response(b"x" * (IDEMPOTENT_RESPONSE_MAX_BYTES + 1), media_type="text/plain")

    @app.post("/reentrant")
    def reentrant() -> dict[str, str]:
        # A sync handler runs in a worker thread, so it can send the client's retries while the
        # first request is still running; only the first run does, so a broken guard cannot
        # recurse forever.
        rig.effects.append("reentrant")
        if len(rig.effects) == 1:
            retry = rig.client.post("/reentrant", headers=keyed("k1"), json=TOPUP)
            reuse = rig.client.post("/reentrant", headers=keyed("k1"), json={})
            rig.seen_in_flight.extend([retry, reuse])
        return {"status": "done"}

    @app.post("/loses-store")
    async def loses_store() -> JSONResponse:
        rig.effects.append("loses-store")
        rig.store.down = True
        return JSONResponse({"attempt": len(rig.effects)}, status_code=201)

    return rig


@pytest.fixture
def rig() -> Rig:
    return build_rig()


def test_same_key_twice_runs_the_handler_once_and_replays_the_response(rig: Rig) -> None:
    first = rig.client.post("/topups", headers=keyed("k1"), json=TOPUP)
    second = rig.client.post("/topups", headers=keyed("k1"), json=TOPUP)
    assert rig.effects == ["topup"]
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["location"] == first.headers["location"] == "/topups/1"
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


def test_empty_response_is_replayed_too(rig: Rig) -> None:
    first = rig.client.delete("/topups/1", headers=keyed("k1"))
    second = rig.client.delete("/topups/1", headers=keyed("k1"))
    assert rig.effects == ["cancel"]
    assert first.status_code == second.status_code == 204
    assert second.content == b""
    assert second.headers["idempotent-replayed"] == "true"


def test_same_key_with_a_different_body_is_refused(rig: Rig) -> None:
    rig.client.post("/topups", headers=keyed("k1"), json=TOPUP)
    reused = rig.client.post("/topups", headers=keyed("k1"), json=OTHER_TOPUP)
    assert rig.effects == ["topup"]
    assert reused.status_code == 422
    assert reused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert reused.json()["code"] == "idempotency_key_reused"


def test_same_key_with_a_different_query_is_refused(rig: Rig) -> None:
    rig.client.post("/topups?channel=app", headers=keyed("k1"), json=TOPUP)
    reused = rig.client.post("/topups?channel=kiosk", headers=keyed("k1"), json=TOPUP)
    assert rig.effects == ["topup"]
    assert reused.json()["code"] == "idempotency_key_reused"


def test_repeat_while_the_first_is_running_is_refused(rig: Rig) -> None:
    response = rig.client.post("/reentrant", headers=keyed("k1"), json=TOPUP)
    same_body, other_body = rig.seen_in_flight
    assert response.status_code == 200
    assert rig.effects == ["reentrant"]
    assert same_body.status_code == 409
    assert same_body.json()["code"] == "request_in_progress"
    assert other_body.status_code == 422
    assert other_body.json()["code"] == "idempotency_key_reused"


def test_server_error_is_not_stored_so_a_retry_runs_again(rig: Rig) -> None:
    failed = rig.client.post("/flaky", headers=keyed("k1"), json=TOPUP)
    retried = rig.client.post("/flaky", headers=keyed("k1"), json=TOPUP)
    replayed = rig.client.post("/flaky", headers=keyed("k1"), json=TOPUP)
    assert failed.status_code == 503
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert replayed.headers["idempotent-replayed"] == "true"
    assert rig.effects == ["flaky", "flaky"]


def test_crashed_handler_releases_the_key_for_a_retry(rig: Rig) -> None:
    crashed = rig.client.post("/crashy", headers=keyed("k1"), json=TOPUP)
    retried = rig.client.post("/crashy", headers=keyed("k1"), json=TOPUP)
    assert crashed.status_code == 500
    assert retried.status_code == 201
    assert rig.effects == ["crashy", "crashy"]


def test_different_callers_with_the_same_key_do_not_collide(rig: Rig) -> None:
    alice = rig.client.post("/topups", headers=keyed("k1", **ALICE), json=TOPUP)
    bob = rig.client.post("/topups", headers=keyed("k1", **BOB), json=OTHER_TOPUP)
    assert alice.status_code == bob.status_code == 201
    assert "idempotent-replayed" not in bob.headers
    assert rig.effects == ["topup", "topup"]


def test_same_key_on_another_route_does_not_collide(rig: Rig) -> None:
    rig.client.post("/topups", headers=keyed("k1"), json=TOPUP)
    other = rig.client.post("/flaky", headers=keyed("k1"), json=TOPUP)
    assert "idempotent-replayed" not in other.headers
    assert rig.effects == ["topup", "flaky"]


def test_requests_without_a_key_pass_through(rig: Rig) -> None:
    first = rig.client.post("/topups", json=TOPUP)
    second = rig.client.post("/topups", json=TOPUP)
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert rig.effects == ["topup", "topup"]


def test_get_with_a_key_passes_through(rig: Rig) -> None:
    rig.client.get("/topups", headers=keyed("k1"))
    second = rig.client.get("/topups", headers=keyed("not a valid key"))
    assert second.json() == {"count": 2}
    assert rig.effects == ["list", "list"]


def test_key_of_the_maximum_length_is_accepted(rig: Rig) -> None:
    key = "k" * IDEMPOTENCY_KEY_MAX_CHARS
    response = rig.client.post("/topups", headers=keyed(key), json=TOPUP)
    assert response.status_code == 201


@pytest.mark.parametrize(
    "key",
    [b"", b"k" * (IDEMPOTENCY_KEY_MAX_CHARS + 1), b"has space", b"caf\xe9", b"tab\there"],
    ids=["empty", "too-long", "space", "non-ascii", "control"],
)
def test_invalid_key_is_refused(rig: Rig, key: bytes) -> None:
    response = rig.client.post("/topups", headers={"Idempotency-Key": key}, json=TOPUP)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["code"] == "invalid_idempotency_key"
    assert rig.effects == []


def test_two_keys_on_one_request_are_refused(rig: Rig) -> None:
    headers = [("Idempotency-Key", "k1"), ("Idempotency-Key", "k2")]
    response = rig.client.post("/topups", headers=headers, json=TOPUP)
    assert response.json()["code"] == "invalid_idempotency_key"
    assert rig.effects == []


def test_body_of_the_maximum_size_is_accepted(rig: Rig) -> None:
    padding = "p" * (IDEMPOTENT_BODY_MAX_BYTES - len('{"pad":""}'))
    body = f'{{"pad":"{padding}"}}'.encode()
    assert len(body) == IDEMPOTENT_BODY_MAX_BYTES
    response = rig.client.post("/topups", headers=keyed("k1"), content=body)
    assert response.status_code == 201


def test_body_over_the_limit_is_refused(rig: Rig) -> None:
    body = b"x" * (IDEMPOTENT_BODY_MAX_BYTES + 1)
    response = rig.client.post("/topups", headers=keyed("k1"), content=body)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert rig.effects == []


def test_streamed_body_over_the_limit_is_refused(rig: Rig) -> None:
    # Without a Content-Length the middleware has to count the bytes as they arrive.
    chunks = iter([b"x" * IDEMPOTENT_BODY_MAX_BYTES, b"x"])
    response = rig.client.post("/topups", headers=keyed("k1"), content=chunks)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert rig.effects == []


def test_unavailable_hot_state_refuses_rather_than_run_unprotected(rig: Rig) -> None:
    rig.store.down = True
    response = rig.client.post("/topups", headers=keyed("k1"), json=TOPUP)
    assert response.status_code == 503
    assert response.json()["code"] == "hot_state_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert rig.effects == []


def test_unavailable_hot_state_still_lets_requests_without_a_key_through(rig: Rig) -> None:
    rig.store.down = True
    response = rig.client.post("/topups", json=TOPUP)
    assert response.status_code == 201


def test_store_lost_after_the_run_still_delivers_and_the_claim_expires(rig: Rig) -> None:
    first = rig.client.post("/loses-store", headers=keyed("k1"), json=TOPUP)
    rig.store.down = False
    while_claimed = rig.client.post("/loses-store", headers=keyed("k1"), json=TOPUP)
    rig.clock.advance(IN_PROGRESS_TTL_MS)
    after_expiry = rig.client.post("/loses-store", headers=keyed("k1"), json=TOPUP)
    assert first.status_code == 201
    assert while_claimed.json()["code"] == "request_in_progress"
    assert after_expiry.status_code == 201
    assert rig.effects == ["loses-store", "loses-store"]


def test_response_too_big_to_store_is_not_replayed_nor_run_again(rig: Rig) -> None:
    first = rig.client.post("/huge", headers=keyed("k1"), json=TOPUP)
    repeat = rig.client.post("/huge", headers=keyed("k1"), json=TOPUP)
    assert len(first.content) == IDEMPOTENT_RESPONSE_MAX_BYTES + 1
    assert repeat.status_code == 409
    assert repeat.json()["code"] == "response_not_replayable"
    assert rig.effects == ["huge"]


def test_key_runs_again_once_its_record_expired(rig: Rig) -> None:
    rig.client.post("/topups", headers=keyed("k1"), json=TOPUP)
    rig.clock.advance(IDEMPOTENCY_TTL_MS)
    again = rig.client.post("/topups", headers=keyed("k1"), json=TOPUP)
    assert "idempotent-replayed" not in again.headers
    assert rig.effects == ["topup", "topup"]


def test_request_without_a_principal_leaves_no_key_behind() -> None:
    store = RecordingHotState(MemoryHotState())
    app = FastAPI()
    app.add_middleware(IdempotencyMiddleware, hot_state=store)

    @app.post("/v1/accounts")
    async def open_account() -> JSONResponse:
        return JSONResponse({"detail": "a valid bearer token is required"}, status_code=401)

    client = TestClient(app)
    for n in range(20):
        client.post("/v1/accounts", headers=keyed(f"k{n}", **ALICE), json=TOPUP)
    assert store.written == []


def test_durable_routes_keep_their_records_in_the_durable_store() -> None:
    hot, durable = RecordingHotState(MemoryHotState()), RecordingHotState(MemoryHotState())
    app = FastAPI()
    routes = [("POST", re.compile("/v1/accounts"))]
    app.add_middleware(IdempotencyMiddleware, hot_state=hot, durable=durable, durable_routes=routes)
    authenticate_everything(app, hot)
    opened: list[int] = []

    @app.post("/v1/accounts")
    @app.post("/v1/top-ups")
    async def create() -> JSONResponse:
        opened.append(len(opened) + 1)
        return JSONResponse({"id": opened[-1]}, status_code=201)

    client = TestClient(app, headers=ALICE)
    first = client.post("/v1/accounts", headers=keyed("k1"), json=TOPUP)
    hot.inner = MemoryHotState()  # hot state comes back empty
    again = client.post("/v1/accounts", headers=keyed("k1"), json=TOPUP)
    client.post("/v1/top-ups", headers=keyed("k1"), json=TOPUP)
    assert again.json() == first.json() == {"id": 1}
    assert again.headers["idempotent-replayed"] == "true"
    assert opened == [1, 2]  # the account once, the top-up once
    assert len(set(durable.written)) == 1
    assert len(set(hot.written)) == 1
