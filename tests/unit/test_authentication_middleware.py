"""Authentication ahead of the body: 401 at once, 429 for a flood of made-up tokens."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from tapledger.http.authentication import AuthenticationMiddleware
from tapledger.http.hotstate_memory import MemoryHotState
from tapledger.http.problems import PROBLEM_MEDIA_TYPE
from tests.asgi_script import ScriptedBody, call, stream
from tests.doubles import MillisClock
from tests.hotstate_contract import SwitchableHotState
from tests.http_auth import ALICE, TableAuthenticator
from ticketing.shared.access import PRINCIPAL_STATE_KEY, Principal

FAILURES = 5
WINDOW_MS = 60_000


@dataclass
class Rig:
    app: FastAPI
    client: TestClient
    store: SwitchableHotState
    authenticator: TableAuthenticator
    seen: list[Principal | None]


@pytest.fixture
def rig() -> Rig:
    store = SwitchableHotState(MemoryHotState(now_ms=MillisClock()))
    authenticator = TableAuthenticator()
    app = FastAPI()
    app.add_middleware(
        AuthenticationMiddleware,
        authenticator=authenticator,
        hot_state=store,
        failures_per_window=FAILURES,
        window_ms=WINDOW_MS,
    )
    seen: list[Principal | None] = []

    @app.post("/v1/accounts")
    async def open_account(request: Request) -> dict[str, int]:
        seen.append(request.scope["state"].get(PRINCIPAL_STATE_KEY))
        return {"bytes": len(await request.body())}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Rig(app, TestClient(app), store, authenticator, seen)


def test_valid_token_hands_its_principal_to_the_route(rig: Rig) -> None:
    response = rig.client.post("/v1/accounts", headers=ALICE, content=b"{}")
    assert response.status_code == 200
    assert [p.token_id if p else None for p in rig.seen] == ["alice"]
    assert rig.authenticator.lookups == 1
    rig.client.post("/v1/accounts", headers=ALICE, content=b"{}")
    assert rig.authenticator.lookups == 1  # remembered: no second lookup


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic YWxpY2U6eA=="}],
    ids=["missing", "unknown", "other-scheme"],
)
def test_missing_or_unknown_token_is_401_before_the_body_is_read(
    rig: Rig, headers: dict[str, str]
) -> None:
    body = ScriptedBody(stream(4096, 64 * 1024))
    answer = call(rig.app, "POST", "/v1/accounts", body, headers)
    assert answer.status == 401
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["code"] == "not_authenticated"
    assert body.receive_calls == 0
    assert rig.seen == []


def test_flood_of_made_up_tokens_from_one_address_is_answered_429(rig: Rig) -> None:
    here = TestClient(rig.app, client=("203.0.113.7", 50000))
    statuses = [
        here.post("/v1/accounts", headers={"Authorization": f"Bearer fake-{n}"}).status_code
        for n in range(FAILURES + 3)
    ]
    assert statuses == [401] * FAILURES + [429] * 3
    refused = here.post("/v1/accounts", headers={"Authorization": "Bearer fake-x"})
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1


def test_flood_from_one_address_leaves_another_address_alone(rig: Rig) -> None:
    here = TestClient(rig.app, client=("203.0.113.7", 50000))
    there = TestClient(rig.app, client=("198.51.100.9", 50000))
    for n in range(FAILURES + 1):
        here.post("/v1/accounts", headers={"Authorization": f"Bearer fake-{n}"})
    assert there.post("/v1/accounts", headers={"Authorization": "Bearer fake"}).status_code == 401


def test_valid_token_passes_from_an_address_that_is_flooding(rig: Rig) -> None:
    here = TestClient(rig.app, client=("203.0.113.7", 50000))
    for n in range(FAILURES + 1):
        here.post("/v1/accounts", headers={"Authorization": f"Bearer fake-{n}"})
    assert here.post("/v1/accounts", headers=ALICE, content=b"{}").status_code == 200


def test_unavailable_hot_state_still_answers_401_not_500(rig: Rig) -> None:
    rig.store.down = True
    assert rig.client.post("/v1/accounts").status_code == 401


def test_routes_outside_the_api_need_no_token(rig: Rig) -> None:
    assert rig.client.get("/healthz").status_code == 200
    assert rig.authenticator.lookups == 0


def test_a_device_enrols_without_a_token_and_a_revoked_devices_upload_gets_its_reason() -> None:
    asked: list[tuple[str, str]] = []

    def refused_upload(token: str, path: str) -> tuple[int, str, str] | None:
        asked.append((token, path))
        return (403, "validator_revoked", "revoked") if token == "revoked-gate" else None

    app = FastAPI()
    app.add_middleware(
        AuthenticationMiddleware,
        authenticator=TableAuthenticator(),
        hot_state=MemoryHotState(now_ms=MillisClock()),
        failures_per_window=FAILURES,
        window_ms=WINDOW_MS,
        refused_upload=refused_upload,
    )

    @app.post("/v1/enrolments")
    async def enrol() -> dict[str, str]:
        return {"token": "new"}

    @app.post("/v1/taps/batch")
    async def upload() -> dict[str, str]:
        return {}

    client = TestClient(app)
    assert client.post("/v1/enrolments").status_code == 200
    assert client.get("/v1/enrolments").status_code == 401  # only the exchange is open
    revoked = client.post("/v1/taps/batch", headers={"Authorization": "Bearer revoked-gate"})
    assert (revoked.status_code, revoked.json()["code"]) == (403, "validator_revoked")
    unknown = client.post("/v1/taps/batch", headers={"Authorization": "Bearer made-up"})
    assert (unknown.status_code, unknown.json()["code"]) == (401, "not_authenticated")
    assert client.post("/v1/taps/batch").status_code == 401  # no token: nothing to ask
    assert asked == [("revoked-gate", "/v1/taps/batch"), ("made-up", "/v1/taps/batch")]
