"""Physical cards over HTTP, in process: issue, reload settlement, block, replace."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tapledger.bootstrap import Container
from tests.e2e.riders import ADMIN

SERIAL = "0011223344556677"


def account_with(client: TestClient, amount_vnd: int) -> str:
    account_id: str = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    top_up = {"amount_vnd": amount_vnd, "payment_reference": f"seed-{account_id[:8]}"}
    client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN)
    return account_id


def test_a_reload_is_held_then_posted_when_the_card_shows_the_money(client: TestClient) -> None:
    account_id = account_with(client, 100_000)
    issued = client.post(
        "/v1/cards", json={"serial": SERIAL, "account_id": account_id}, headers=ADMIN
    )
    assert issued.status_code == 201
    start = {"reload_id": "desk-7", "amount_vnd": 30_000, "purse_before_vnd": 0}
    assert client.post(f"/v1/cards/{SERIAL}/reloads", json=start, headers=ADMIN).status_code == 202
    held = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    assert (held["posted_vnd"], held["pending_vnd"]) == (100_000, 30_000)
    settle = {"purse_after_vnd": 30_000, "transaction_counter": 998}
    settled = client.post(f"/v1/cards/{SERIAL}/reloads/desk-7/settle", json=settle, headers=ADMIN)
    assert settled.json() == {"outcome": "loaded"}
    after = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    assert (after["posted_vnd"], after["pending_vnd"]) == (70_000, 0)
    again = client.post(f"/v1/cards/{SERIAL}/reloads/desk-7/settle", json=settle, headers=ADMIN)
    assert (again.status_code, again.json()["code"]) == (409, "reload_not_open")


def test_a_serial_is_issued_once_and_must_be_eight_bytes_of_hex(client: TestClient) -> None:
    account_id = account_with(client, 1_000)
    body = {"serial": SERIAL, "account_id": account_id}
    assert client.post("/v1/cards", json=body, headers=ADMIN).status_code == 201
    twice = client.post("/v1/cards", json=body, headers=ADMIN)
    assert (twice.status_code, twice.json()["code"]) == (409, "smart_card_already_issued")
    bad = client.post("/v1/cards", json={"serial": "xyz", "account_id": account_id}, headers=ADMIN)
    assert bad.status_code == 422


def test_a_rider_blocks_its_lost_card_and_the_serial_reaches_the_deny_list(
    client: TestClient, container: Container
) -> None:
    account_id = account_with(client, 1_000)
    client.post("/v1/cards", json={"serial": SERIAL, "account_id": account_id}, headers=ADMIN)
    token = client.post(
        "/v1/tokens", json={"role": "rider", "account_id": account_id}, headers=ADMIN
    )
    rider = {"Authorization": f"Bearer {token.json()['token']}"}
    blocked = client.post(f"/v1/cards/{SERIAL}/block", json={"reason": "lost"}, headers=rider)
    assert blocked.json()["status"] == "blocked"
    container.card_follower.catch_up()
    entries = client.get("/v1/deny-list", headers=ADMIN).json()["entries"]
    assert [(e["serial"], e["reason"]) for e in entries] == [(SERIAL, "blocked")]


def test_replacing_a_lost_card_carries_its_last_purse_back_to_the_account(
    client: TestClient,
) -> None:
    account_id = account_with(client, 10_000)
    client.post("/v1/cards", json={"serial": SERIAL, "account_id": account_id}, headers=ADMIN)
    start = {"reload_id": "r1", "amount_vnd": 10_000, "purse_before_vnd": 0}
    client.post(f"/v1/cards/{SERIAL}/reloads", json=start, headers=ADMIN)
    settle = {"purse_after_vnd": 10_000, "transaction_counter": 998}
    client.post(f"/v1/cards/{SERIAL}/reloads/r1/settle", json=settle, headers=ADMIN)
    assert client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()["posted_vnd"] == 0
    new = client.post(
        f"/v1/cards/{SERIAL}/replace",
        json={"replacement_serial": "8899aabbccddeeff"},
        headers=ADMIN,
    )
    assert (new.status_code, new.json()["account_id"]) == (201, account_id)
    assert client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()["posted_vnd"] == 10_000
    assert client.get(f"/v1/cards/{SERIAL}", headers=ADMIN).json()["status"] == "replaced"


def test_a_card_and_a_validator_given_no_network_id_share_the_card_formats_network(
    client: TestClient,
) -> None:
    account_id = account_with(client, 1_000)
    card = client.post(
        "/v1/cards", json={"serial": SERIAL, "account_id": account_id}, headers=ADMIN
    )
    assert card.status_code == 201, card.text
    gate = {"validator_id": 4101, "kind": "metro_gate", "location": 4101}
    gate |= {"stop_id": "2A-01", "route_id": "2A", "direction": "entry"}
    validator = client.post("/v1/validators", json=gate, headers=ADMIN)
    assert validator.status_code == 201, validator.text
    assert card.json()["network_id"] == validator.json()["network_id"] == 0x0101
    # The validator's config tells the card network and, apart from it, the fare network.
    token = {"Authorization": f"Bearer {validator.json()['token']}"}
    config = client.get("/v1/validators/4101/config", headers=token).json()
    assert (config["validator"]["network_id"], config["fare_network_id"]) == (0x0101, "metro_2a")
