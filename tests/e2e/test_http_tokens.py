"""Tokens over HTTP and the CLI: listed without secrets, revoked by admins only and refused at
once, and a validator's new token revoking its older one."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tapledger.bootstrap import bootstrap
from tapledger.cli import app
from tapledger.settings import LOCAL_ADMIN_TOKEN, Settings
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import ADMIN

GATE = 42


def settings(data_dir: Path) -> Settings:
    return ExplicitSettings(data_dir=data_dir, follow_in_process=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def operator(client: TestClient) -> tuple[str, str]:
    issued = client.post("/v1/tokens", json={"role": "operator"}, headers=ADMIN).json()
    return issued["token"], issued["token_id"]


def test_a_revoked_token_is_refused_at_the_next_request(client: TestClient) -> None:
    token, token_id = operator(client)
    assert client.get("/v1/deny-list", headers=bearer(token)).status_code == 200
    assert client.delete(f"/v1/tokens/{token_id}", headers=ADMIN).status_code == 204
    refused = client.get("/v1/deny-list", headers=bearer(token))
    assert (refused.status_code, refused.json()["code"]) == (401, "not_authenticated")
    assert client.delete(f"/v1/tokens/{token_id}", headers=ADMIN).status_code == 204  # again


def test_only_admins_list_or_revoke_tokens_and_never_see_a_secret(client: TestClient) -> None:
    token, token_id = operator(client)
    assert client.get("/v1/tokens", headers=bearer(token)).status_code == 403
    assert client.delete(f"/v1/tokens/{token_id}", headers=bearer(token)).status_code == 403
    listed = client.get("/v1/tokens", headers=ADMIN)
    assert listed.status_code == 200
    assert token_id in {t["token_id"] for t in listed.json()}
    assert token not in listed.text
    assert LOCAL_ADMIN_TOKEN not in listed.text


def test_revoking_answers_unknown_and_configured_tokens_with_a_code(client: TestClient) -> None:
    unknown = client.delete("/v1/tokens/0123456789abcdef", headers=ADMIN)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "token_not_found")
    malformed = client.delete("/v1/tokens/not-a-token-id!!", headers=ADMIN)
    assert malformed.status_code == 422
    admin_id = next(t["token_id"] for t in client.get("/v1/tokens", headers=ADMIN).json())
    configured = client.delete(f"/v1/tokens/{admin_id}", headers=ADMIN)
    assert (configured.status_code, configured.json()["code"]) == (409, "token_configured")


@pytest.mark.parametrize("route", ["enrolments", "tokens"])
def test_a_validators_new_token_revokes_its_previous_one(client: TestClient, route: str) -> None:
    body = {"validator_id": GATE, "kind": "bus", "network_id": 1, "location": 32}
    body |= {"stop_id": "bus-kim-ma", "route_id": "01"}
    old = client.post("/v1/validators", json=body, headers=ADMIN).json()["token"]
    config = f"/v1/validators/{GATE}/config"
    assert client.get(config, headers=bearer(old)).status_code == 200
    new = client.post(f"/v1/validators/{GATE}/{route}", headers=ADMIN)
    assert new.status_code == 201, new.text
    assert client.get(config, headers=bearer(old)).status_code == 401
    assert client.get(config, headers=bearer(new.json()["token"])).status_code == 200


def test_the_cli_lists_and_revokes_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPLEDGER_DATA_DIR", str(tmp_path))
    container = bootstrap(settings(tmp_path))
    try:
        issued = container.tokens.issue_device_token(GATE, label="gate 42")
        token_id = next(t.token_id for t in container.tokens.tokens() if t.label == "gate 42")
    finally:
        container.close()
    runner = CliRunner()
    listed = runner.invoke(app, ["tokens", "list"])
    assert listed.exit_code == 0, listed.output
    assert token_id in listed.output
    assert issued not in listed.output
    revoked = runner.invoke(app, ["tokens", "revoke", token_id])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.output
    unknown = runner.invoke(app, ["tokens", "revoke", "0123456789abcdef"])
    assert unknown.exit_code == 2
    after = bootstrap(settings(tmp_path))
    try:
        assert after.tokens.authenticate(issued) is None
    finally:
        after.close()
