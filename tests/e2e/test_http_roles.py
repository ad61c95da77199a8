"""Roles over HTTP, in process: staff act, admins govern, riders read only their own account."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tapledger.settings import LOCAL_ADMIN_TOKEN

PROBLEM = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(LOCAL_ADMIN_TOKEN)


def issue(client: TestClient, role: str, account_id: str | None = None) -> dict[str, str]:
    response = client.post(
        "/v1/tokens", json={"role": role, "account_id": account_id}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return bearer(response.json()["token"])


def open_account(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post("/v1/accounts", json={"rider_category": 1}, headers=headers)
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    return account_id


def test_operator_opens_and_tops_up_but_may_not_block_or_close(client: TestClient) -> None:
    operator = issue(client, "operator")
    account_id = open_account(client, operator)
    top_up = {"amount_vnd": 50_000, "payment_reference": "zalopay-1"}
    assert (
        client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=operator).status_code
        == 201
    )
    for action, body in (("block", {"reason": "fraud"}), ("close", None)):
        response = client.post(f"/v1/accounts/{account_id}/{action}", json=body, headers=operator)
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "forbidden"


def test_admin_blocks_and_a_blocked_account_refuses_debits_with_409(client: TestClient) -> None:
    account_id = open_account(client, ADMIN)
    blocked = client.post(
        f"/v1/accounts/{account_id}/block", json={"reason": "card lost"}, headers=ADMIN
    )
    assert blocked.json()["status"] == "blocked"
    debit = {"transfer_id": "bus-1", "amount_vnd": 8_000}
    response = client.post(f"/v1/accounts/{account_id}/debits", json=debit, headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (409, "account_blocked")


def test_only_admins_issue_tokens_and_a_rider_token_names_its_account(client: TestClient) -> None:
    operator = issue(client, "operator")
    assert client.post("/v1/tokens", json={"role": "admin"}, headers=operator).status_code == 403
    response = client.post("/v1/tokens", json={"role": "rider"}, headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_token_request")


def test_rider_reads_its_own_account_and_nothing_else(client: TestClient) -> None:
    mine, other = open_account(client, ADMIN), open_account(client, ADMIN)
    rider = issue(client, "rider", mine)
    assert client.get(f"/v1/accounts/{mine}", headers=rider).status_code == 200
    assert client.get(f"/v1/accounts/{other}", headers=rider).status_code == 404
    assert client.get("/v1/accounts", headers=rider).status_code == 403


def test_an_idempotency_key_makes_a_retried_account_opening_one_account(client: TestClient) -> None:
    headers = ADMIN | {"Idempotency-Key": "open-lan-1"}
    first = client.post("/v1/accounts", json={"display_name": "Lan"}, headers=headers)
    second = client.post("/v1/accounts", json={"display_name": "Lan"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
