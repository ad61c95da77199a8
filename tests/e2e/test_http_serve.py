"""The real server, started as `tapledger serve`, spoken to over HTTP.

One server on PostgreSQL and Redis in production mode serves the module; each test opens the
accounts it uses. A second, short test runs the embedded default: SQLite, no Redis, local mode.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tapledger.http.problems import PROBLEM_MEDIA_TYPE
from tapledger.settings import LOCAL_ADMIN_TOKEN
from tests.e2e.conftest import Server, ServerFactory, start_server, stop_server
from tests.integration.conftest import DatabaseFactory
from tests.services import redis_url
from ticketing.accounts.adapters.read_model import PAGE_SIZE_MAX

ADMIN_TOKEN_CHARS = 40
REQUEST_TIMEOUT_S = 10.0
FOLLOWER_WAIT_S = 15.0
FOLLOWER_POLL_S = 0.1


@dataclass
class Api:
    """A client of one running server, holding its admin token."""

    client: httpx.Client
    admin_token: str

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_token)

    def open_account(self, display_name: str = "") -> str:
        response = self.client.post(
            "/v1/accounts",
            json={"rider_category": 0, "display_name": display_name},
            headers=self.admin,
        )
        assert response.status_code == httpx.codes.CREATED, response.text
        account_id: str = response.json()["id"]
        assert response.headers["location"] == f"/v1/accounts/{account_id}"
        return account_id

    def top_up(self, account_id: str, amount_vnd: int, reference: str) -> httpx.Response:
        return self.client.post(
            f"/v1/accounts/{account_id}/top-ups",
            json={"amount_vnd": amount_vnd, "payment_reference": reference},
            headers=self.admin,
        )

    def rider_token(self, account_id: str) -> str:
        response = self.client.post(
            "/v1/tokens",
            json={"role": "rider", "account_id": account_id, "label": "rider app"},
            headers=self.admin,
        )
        assert response.status_code == httpx.codes.CREATED, response.text
        body = response.json()
        assert (body["role"], body["account_id"]) == ("rider", account_id)
        token: str = body["token"]
        return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["detail"]
    return body


@pytest.fixture(scope="module")
def api(
    e2e_database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    database_url = e2e_database_factory.create()
    admin_token = secrets.token_urlsafe(30)
    assert len(admin_token) == ADMIN_TOKEN_CHARS
    workdir = tmp_path_factory.mktemp("serve-postgres")
    server: Server | None = None
    try:
        server = start_server(
            {
                "TAPLEDGER_DATABASE_URL": database_url,
                "TAPLEDGER_REDIS_URL": redis_url(),
                "TAPLEDGER_ADMIN_TOKEN": admin_token,
                "TAPLEDGER_ENVIRONMENT": "production",
                "TAPLEDGER_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
                "TAPLEDGER_DATA_DIR": str(workdir / "var"),
            },
            workdir,
        )
        with httpx.Client(base_url=server.base_url, timeout=REQUEST_TIMEOUT_S) as client:
            yield Api(client, admin_token)
    finally:
        if server is not None:
            stop_server(server)
        e2e_database_factory.drop(database_url)


def test_healthz_reports_every_component_ok(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == httpx.codes.OK
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {
        "event_store": "ok",
        "read_models": "ok",
        "hot_state": "ok",
        "followers": "ok",
    }
    assert isinstance(body["follower_lag"], int)


def test_repeated_top_up_is_replayed_and_a_conflicting_repeat_is_a_problem(api: Api) -> None:
    account_id = api.open_account("Pham Minh Chau")
    first = api.top_up(account_id, 50_000, "vnpay-1001")
    assert first.status_code == httpx.codes.CREATED, first.text
    assert (first.json()["replayed"], first.json()["amount_vnd"]) == (False, 50_000)

    again = api.top_up(account_id, 50_000, "vnpay-1001")
    assert again.status_code == httpx.codes.OK
    assert again.json()["replayed"] is True
    assert again.json()["transfer_id"] == first.json()["transfer_id"]

    conflict = api.top_up(account_id, 60_000, "vnpay-1001")
    assert_problem(conflict, 409, "transfer_conflict")

    account = api.client.get(f"/v1/accounts/{account_id}", headers=api.admin).json()
    assert account["posted_vnd"] == 50_000


def test_a_hold_posted_in_part_cannot_then_be_voided(api: Api) -> None:
    account_id = api.open_account()
    api.top_up(account_id, 50_000, "momo-7")
    placed = api.client.post(
        f"/v1/accounts/{account_id}/holds",
        json={"hold_id": "metro-in-1", "amount_vnd": 20_000, "description": "Cat Linh"},
        headers=api.admin,
    )
    assert placed.status_code == httpx.codes.CREATED, placed.text
    assert placed.json()["outcome"] == "pending"

    posted = api.client.post(
        f"/v1/accounts/{account_id}/holds/metro-in-1/post",
        json={"amount_vnd": 8_000},
        headers=api.admin,
    )
    assert posted.status_code == httpx.codes.OK, posted.text
    assert (posted.json()["outcome"], posted.json()["amount_vnd"]) == ("posted", 8_000)

    voided = api.client.post(f"/v1/accounts/{account_id}/holds/metro-in-1/void", headers=api.admin)
    assert_problem(voided, 409, "hold_already_resolved")

    account = api.client.get(f"/v1/accounts/{account_id}", headers=api.admin).json()
    assert (account["posted_vnd"], account["pending_vnd"], account["holds"]) == (42_000, 0, [])


def test_a_debit_beyond_the_available_balance_is_refused(api: Api) -> None:
    account_id = api.open_account()
    api.top_up(account_id, 10_000, "bank-55")
    refused = api.client.post(
        f"/v1/accounts/{account_id}/debits",
        json={"transfer_id": "fare-too-much", "amount_vnd": 10_001},
        headers=api.admin,
    )
    assert_problem(refused, 422, "insufficient_funds")
    account = api.client.get(f"/v1/accounts/{account_id}", headers=api.admin).json()
    assert account["posted_vnd"] == 10_000


def test_a_request_repeated_with_its_idempotency_key_gets_the_first_response(api: Api) -> None:
    account_id = api.open_account()
    api.top_up(account_id, 30_000, "bank-77")
    headers = api.admin | {"Idempotency-Key": f"debit-{secrets.token_hex(8)}"}
    body = {"transfer_id": "bus-09-trip-1", "amount_vnd": 7_000, "description": "bus 09"}
    url = f"/v1/accounts/{account_id}/debits"

    first = api.client.post(url, json=body, headers=headers)
    assert first.status_code == httpx.codes.CREATED, first.text
    assert "idempotent-replayed" not in first.headers
    repeat = api.client.post(url, json=body, headers=headers)
    assert repeat.status_code == first.status_code
    assert repeat.content == first.content
    assert repeat.headers["idempotent-replayed"] == "true"
    # Without the key the ledger itself answers a repeat, differently: 200 and replayed.
    bare = api.client.post(url, json=body, headers=api.admin)
    assert (bare.status_code, bare.json()["replayed"]) == (200, True)

    account = api.client.get(f"/v1/accounts/{account_id}", headers=api.admin).json()
    assert account["posted_vnd"] == 23_000


def test_a_rider_token_reads_its_own_account_and_no_other(api: Api) -> None:
    own_id = api.open_account("Vu Duc Long")
    other_id = api.open_account("Someone Else")
    rider = bearer(api.rider_token(own_id))

    own = api.client.get(f"/v1/accounts/{own_id}", headers=rider)
    assert own.status_code == httpx.codes.OK
    assert own.json()["display_name"] == "Vu Duc Long"
    other = api.client.get(f"/v1/accounts/{other_id}", headers=rider)
    assert_problem(other, 404, "account_not_found")
    assert api.client.get(f"/v1/accounts/{other_id}", headers=api.admin).status_code == 200


def test_a_request_without_a_token_is_unauthenticated(api: Api) -> None:
    account_id = api.open_account()
    response = api.client.get(f"/v1/accounts/{account_id}")
    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = api.client.get(f"/v1/accounts/{account_id}", headers=bearer("tlk_" + "x" * 43))
    assert_problem(wrong, 401, "not_authenticated")


def test_a_rider_may_not_top_up(api: Api) -> None:
    account_id = api.open_account()
    rider = bearer(api.rider_token(account_id))
    response = api.client.post(
        f"/v1/accounts/{account_id}/top-ups",
        json={"amount_vnd": 100_000, "payment_reference": "self-service"},
        headers=rider,
    )
    assert_problem(response, 403, "forbidden")
    account = api.client.get(f"/v1/accounts/{account_id}", headers=rider).json()
    assert account["posted_vnd"] == 0


def _statement(api: Api, account_id: str, **params: int) -> dict[str, Any]:
    response = api.client.get(
        f"/v1/accounts/{account_id}/statement", params=params, headers=api.admin
    )
    assert response.status_code == httpx.codes.OK, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_statement_pages_newest_first_once_the_follower_caught_up(api: Api) -> None:
    account_id = api.open_account()
    api.top_up(account_id, 40_000, "zalopay-3")
    for index, amount_vnd in enumerate((5_000, 6_000, 7_000)):
        debited = api.client.post(
            f"/v1/accounts/{account_id}/debits",
            json={"transfer_id": f"fare-{index}", "amount_vnd": amount_vnd},
            headers=api.admin,
        )
        assert debited.status_code == httpx.codes.CREATED, debited.text
    lines_expected = 5  # opened, the top-up, three debits

    deadline = time.monotonic() + FOLLOWER_WAIT_S
    page = _statement(api, account_id, limit=PAGE_SIZE_MAX)
    while len(page["lines"]) < lines_expected and time.monotonic() < deadline:
        time.sleep(FOLLOWER_POLL_S)
        page = _statement(api, account_id, limit=PAGE_SIZE_MAX)
    lines = page["lines"]
    assert [line["seq"] for line in lines] == [5, 4, 3, 2, 1]
    assert [line["kind"] for line in lines] == ["debit", "debit", "debit", "top_up", "opened"]
    assert [line["posted_after_vnd"] for line in lines] == [22_000, 29_000, 35_000, 40_000, 0]
    assert page["next_before_seq"] is None

    first = _statement(api, account_id, limit=2)
    assert [line["seq"] for line in first["lines"]] == [5, 4]
    assert first["next_before_seq"] == 4
    second = _statement(api, account_id, limit=2, before_seq=first["next_before_seq"])
    assert [line["seq"] for line in second["lines"]] == [3, 2]
    last = _statement(api, account_id, limit=2, before_seq=second["next_before_seq"])
    assert [line["seq"] for line in last["lines"]] == [1]
    assert last["next_before_seq"] is None


def test_a_statement_page_above_the_maximum_is_refused(api: Api) -> None:
    account_id = api.open_account()
    response = api.client.get(
        f"/v1/accounts/{account_id}/statement",
        params={"limit": PAGE_SIZE_MAX + 1},
        headers=api.admin,
    )
    assert_problem(response, 422, "validation_error")


def test_openapi_lists_the_top_up_route(api: Api) -> None:
    response = api.client.get("/openapi.json")
    assert response.status_code == httpx.codes.OK
    paths = response.json()["paths"]
    assert "post" in paths["/v1/accounts/{account_id}/top-ups"]


def test_the_embedded_default_serves_with_the_local_admin_token(
    serve: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    server = serve(
        {"TAPLEDGER_ENVIRONMENT": "local", "TAPLEDGER_DATA_DIR": str(data_dir)}, tmp_path
    )
    with httpx.Client(base_url=server.base_url, timeout=REQUEST_TIMEOUT_S) as client:
        health = client.get("/healthz")
        assert health.status_code == httpx.codes.OK
        assert health.json()["status"] == "ok"
        api = Api(client, LOCAL_ADMIN_TOKEN)
        account_id = api.open_account("Demo Rider")
        topped_up = api.top_up(account_id, 25_000, "demo-1")
        assert topped_up.status_code == httpx.codes.CREATED, topped_up.text
        account = client.get(f"/v1/accounts/{account_id}", headers=api.admin).json()
        assert account["posted_vnd"] == 25_000
    # The events went to the SQLite file under the data dir, nowhere else.
    assert (data_dir / "tapledger.db").stat().st_size > 0
