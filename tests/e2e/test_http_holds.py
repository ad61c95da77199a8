"""Resolving holds over HTTP, in process: a gate that lost its answer retries the same request."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.riders import ADMIN

FUNDS_VND = 50_000
HELD_VND = 15_000


def account_with_hold(client: TestClient, hold_id: str) -> str:
    account_id: str = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    top_up = {"amount_vnd": FUNDS_VND, "payment_reference": f"momo-{hold_id}"}
    assert client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN).is_success
    hold = {"hold_id": hold_id, "amount_vnd": HELD_VND}
    placed = client.post(f"/v1/accounts/{account_id}/holds", json=hold, headers=ADMIN)
    assert placed.status_code == 201, placed.text
    return account_id


def post(client: TestClient, account_id: str, hold_id: str, body: dict[str, Any] | None) -> Any:
    return client.post(f"/v1/accounts/{account_id}/holds/{hold_id}/post", json=body, headers=ADMIN)


def posted_vnd(client: TestClient, account_id: str) -> int:
    posted: int = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()["posted_vnd"]
    return posted


def test_a_gate_retrying_its_exit_post_gets_the_same_receipt_marked_replayed(
    client: TestClient,
) -> None:
    account_id = account_with_hold(client, "m2a-exit-1")
    first = post(client, account_id, "m2a-exit-1", {"amount_vnd": 11_000})
    assert first.status_code == 200, first.text
    again = post(client, account_id, "m2a-exit-1", {"amount_vnd": 11_000})
    assert again.status_code == 200, again.text
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert {**again.json(), "replayed": False} == first.json()
    assert again.json()["outcome"] == "posted"
    assert posted_vnd(client, account_id) == FUNDS_VND - 11_000


def test_a_post_of_another_amount_or_of_a_voided_hold_is_still_a_conflict(
    client: TestClient,
) -> None:
    account_id = account_with_hold(client, "m2a-exit-2")
    assert post(client, account_id, "m2a-exit-2", {"amount_vnd": 11_000}).status_code == 200
    other = post(client, account_id, "m2a-exit-2", {"amount_vnd": 12_000})
    assert (other.status_code, other.json()["code"]) == (409, "hold_already_resolved")
    whole = post(client, account_id, "m2a-exit-2", None)
    assert (whole.status_code, whole.json()["code"]) == (409, "hold_already_resolved")

    voided_id = account_with_hold(client, "park-1")
    void = client.post(f"/v1/accounts/{voided_id}/holds/park-1/void", headers=ADMIN)
    assert (void.status_code, void.json()["replayed"]) == (200, False)
    void_again = client.post(f"/v1/accounts/{voided_id}/holds/park-1/void", headers=ADMIN)
    assert (void_again.status_code, void_again.json()["replayed"]) == (200, True)
    refused = post(client, voided_id, "park-1", {"amount_vnd": 11_000})
    assert (refused.status_code, refused.json()["code"]) == (409, "hold_already_resolved")
    assert posted_vnd(client, account_id) == FUNDS_VND - 11_000
    assert posted_vnd(client, voided_id) == FUNDS_VND


def test_a_caller_may_not_choose_an_id_the_system_writes_itself(client: TestClient) -> None:
    account_id: str = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    top_up = {"amount_vnd": FUNDS_VND, "payment_reference": "purse-refund:" + "0" * 32 + ":1"}
    debit = {"transfer_id": "journey:" + "0" * 32 + ":close", "amount_vnd": 1_000}
    hold = {"hold_id": "parking:" + "0" * 32 + ":start", "amount_vnd": 1_000}

    answers = [
        client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN),
        client.post(f"/v1/accounts/{account_id}/debits", json=debit, headers=ADMIN),
        client.post(f"/v1/accounts/{account_id}/holds", json=hold, headers=ADMIN),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(422, "reserved_id")] * 3
    assert posted_vnd(client, account_id) == 0
