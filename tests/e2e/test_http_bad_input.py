"""Bad input over HTTP, in process: refused with 422 problem+json, never a 500 or plain text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import ADMIN
from ticketing.accounts.schemas import STATEMENT_SEQ_MAX
from ticketing.shared.schemas import DENY_LIST_VERSION_MAX

PROBLEM = "application/problem+json"
VALIDATOR = {
    "validator_id": 7,
    "kind": "bus",
    "network_id": 1,
    "location": 3,
    "stop_id": "bus-kim-ma",
    "route_id": "01",
}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = ExplicitSettings(data_dir=tmp_path, follow_in_process=False)
    container = bootstrap(settings)
    yield container
    container.close()


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container, own_container=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_refused_as_invalid(response: Any) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "validation_error"


def open_account(client: TestClient) -> str:
    response = client.post("/v1/accounts", json={}, headers=ADMIN)
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    return account_id


def test_statement_refuses_a_before_seq_past_its_column(client: TestClient) -> None:
    account_id = open_account(client)
    url = f"/v1/accounts/{account_id}/statement"
    assert client.get(url, params={"before_seq": STATEMENT_SEQ_MAX}, headers=ADMIN).is_success
    response = client.get(url, params={"before_seq": STATEMENT_SEQ_MAX + 1}, headers=ADMIN)
    assert_refused_as_invalid(response)


def test_deny_list_refuses_a_since_past_a_64_bit_integer(client: TestClient) -> None:
    assert client.get("/v1/deny-list", params={"since": DENY_LIST_VERSION_MAX}, headers=ADMIN)
    response = client.get(
        "/v1/deny-list", params={"since": DENY_LIST_VERSION_MAX + 1}, headers=ADMIN
    )
    assert_refused_as_invalid(response)


def test_issuer_key_revoke_refuses_a_key_id_past_its_column(client: TestClient) -> None:
    response = client.post(
        f"/v1/issuer-keys/{2**63}/revoke", json={"reason": "lost"}, headers=ADMIN
    )
    assert_refused_as_invalid(response)


def test_an_unexpected_error_answers_500_problem_json(app: FastAPI, client: TestClient) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    app.get("/v1/broken")(broken)
    response = client.get("/v1/broken", headers=ADMIN)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "internal_error"
    assert "a bug" not in response.text  # a bug's details are logged, not shown


@pytest.mark.parametrize("character", ["\x00", "\n", "\x1b", "\x7f", "\x85"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/tokens", {"role": "operator", "label": "ops{}"}),
        ("/v1/validators", {**VALIDATOR, "label": "gate{}"}),
        ("/v1/validators", {**VALIDATOR, "stop_id": "S{}"}),
        ("/v1/accounts", {"display_name": "Nguyễn{}"}),
    ],
)
def test_free_text_refuses_control_characters(
    client: TestClient, path: str, body: dict[str, Any], character: str
) -> None:
    text_body = {k: v.format(character) if isinstance(v, str) else v for k, v in body.items()}
    assert_refused_as_invalid(client.post(path, json=text_body, headers=ADMIN))


def test_free_text_accepts_vietnamese(client: TestClient) -> None:
    response = client.post("/v1/accounts", json={"display_name": "Nguyễn Thị Hà"}, headers=ADMIN)
    assert response.status_code == 201, response.text


def test_a_refused_validator_label_registers_nothing(client: TestClient) -> None:
    refused = client.post("/v1/validators", json={**VALIDATOR, "label": "x\x00"}, headers=ADMIN)
    assert_refused_as_invalid(refused)
    response = client.post("/v1/validators", json={**VALIDATOR, "label": "gate"}, headers=ADMIN)
    assert response.status_code == 201, response.text


def test_a_registration_whose_token_failed_is_completed_by_its_retry(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def token_store_down(device_id: int, *, label: str) -> str:
        raise RuntimeError("the token store is down")

    with monkeypatch.context() as patched:
        patched.setattr(app.state.authenticator, "issue_device_token", token_store_down)
        failed = client.post("/v1/validators", json=VALIDATOR, headers=ADMIN)
    assert (failed.status_code, failed.headers["content-type"]) == (500, PROBLEM)

    retried = client.post("/v1/validators", json=VALIDATOR, headers=ADMIN)
    assert retried.status_code == 200, retried.text
    device = {"Authorization": f"Bearer {retried.json()['token']}"}
    assert client.get("/v1/validators/7/config", headers=device).status_code == 200


def test_another_registration_under_a_taken_id_is_a_conflict(client: TestClient) -> None:
    assert client.post("/v1/validators", json=VALIDATOR, headers=ADMIN).status_code == 201
    moved = {**VALIDATOR, "location": 4}
    response = client.post("/v1/validators", json=moved, headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (409, "validator_already_registered")
