"""Virtual cards over HTTP, in process: who may issue, block and rotate, and the deny list."""

from __future__ import annotations

import base64
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container
from tests.e2e.riders import ADMIN
from tests.tap_media import Phone
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Decision, Verifier
from validators.trust import Trust


def rider(client: TestClient) -> tuple[str, dict[str, str]]:
    account_id: str = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    issued = client.post(
        "/v1/tokens", json={"role": "rider", "account_id": account_id}, headers=ADMIN
    )
    return account_id, {"Authorization": f"Bearer {issued.json()['token']}"}


def device_key_b64() -> str:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return base64.b64encode(
        public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    ).decode()


def issue(client: TestClient, account_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        f"/v1/accounts/{account_id}/virtual-cards",
        json={"device_key": device_key_b64()},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    card: dict[str, Any] = response.json()
    return card


def test_a_rider_registers_its_phone_and_gets_a_certificate_and_the_server_time(
    client: TestClient,
) -> None:
    account_id, headers = rider(client)
    card = issue(client, account_id, headers)
    assert len(base64.b64decode(card["certificate"])) == 126
    assert abs(card["server_time"] - time.time()) < 60
    assert card["not_after"] - card["not_before"] <= 72 * 3600
    assert client.get(f"/v1/virtual-cards/{card['card_id']}", headers=headers).status_code == 200


def test_the_certificate_and_the_issuer_keys_are_given_both_in_base64_and_in_hex(
    client: TestClient,
) -> None:
    account_id, headers = rider(client)
    card = issue(client, account_id, headers)
    assert bytes.fromhex(card["certificate_hex"]) == base64.b64decode(card["certificate"])
    keys = client.get("/v1/issuer-keys", headers=headers).json()["keys"]
    assert keys
    for key in keys:
        raw = bytes.fromhex(key["public_key"])
        assert (len(raw), base64.b64decode(key["public_key_b64"])) == (32, raw)


def test_a_rider_cannot_touch_another_riders_cards(client: TestClient) -> None:
    account_id, headers = rider(client)
    _, other = rider(client)
    card = issue(client, account_id, headers)
    response = client.post(
        f"/v1/accounts/{account_id}/virtual-cards",
        json={"device_key": device_key_b64()},
        headers=other,
    )
    assert response.status_code == 404
    for path in (
        f"/v1/virtual-cards/{card['card_id']}/renew",
        f"/v1/virtual-cards/{card['card_id']}",
    ):
        assert (
            client.request("POST" if "renew" in path else "GET", path, headers=other).status_code
            == 404
        )


def test_only_admins_rotate_or_revoke_issuer_keys(client: TestClient) -> None:
    _, headers = rider(client)
    assert client.post("/v1/issuer-keys/rotate", headers=headers).status_code == 403
    rotated = client.post("/v1/issuer-keys/rotate", headers=ADMIN)
    assert rotated.status_code == 201
    assert [k["key_id"] for k in rotated.json()["keys"]] == [1, 2]
    revoked = client.post("/v1/issuer-keys/1/revoke", json={"reason": "drill"}, headers=ADMIN)
    assert revoked.json()["revoked"] == [1]
    assert "sealed" not in revoked.text
    assert "private" not in revoked.text.lower()
    again = client.post("/v1/issuer-keys/1/revoke", json={"reason": "drill"}, headers=ADMIN)
    assert (again.status_code, again.json()["code"]) == (409, "issuer_key_already_revoked")


def test_a_revoked_issuer_key_is_left_out_of_the_keys_validators_trust(
    client: TestClient,
) -> None:
    account_id = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    phone = Phone.new()
    key = base64.b64encode(phone.public_key()).decode()
    card = client.post(
        f"/v1/accounts/{account_id}/virtual-cards", json={"device_key": key}, headers=ADMIN
    ).json()
    phone.certify(card["certificate"])
    client.post("/v1/issuer-keys/rotate", headers=ADMIN)
    client.post("/v1/issuer-keys/1/revoke", json={"reason": "leaked"}, headers=ADMIN)
    published = client.get("/v1/issuer-keys", headers=ADMIN).json()
    assert [k["key_id"] for k in published["keys"]] == [2]
    assert published["revoked"] == [1]
    # A validator's sync keeps the answer whole; its key set refuses the revoked key's codes,
    # and names the reason, while a verifier reading only `keys` finds nothing to trust.
    keys = Trust(keys=published).key_set()
    now = int(time.time())
    gate = Verifier(keys, set(), replay_window=ReplayWindow(), certificate_cache=None)
    assert gate.verify(phone.code(now, 1), now).decision is Decision.REVOKED_ISSUER_KEY
    keys_only = IssuerKeySet(keys.keys)
    gate = Verifier(keys_only, set(), replay_window=ReplayWindow(), certificate_cache=None)
    assert gate.verify(phone.code(now, 2), now).decision is Decision.UNKNOWN_ISSUER_KEY


def test_an_invalid_device_key_is_a_422_problem(client: TestClient) -> None:
    account_id, headers = rider(client)
    for key in ("not base64!", base64.b64encode(b"\x04" + bytes(64)).decode()):
        response = client.post(
            f"/v1/accounts/{account_id}/virtual-cards", json={"device_key": key}, headers=headers
        )
        assert (response.status_code, response.json()["code"]) == (422, "invalid_device_key")


def test_deny_list_grows_by_versioned_deltas_for_blocked_and_retired_cards(
    client: TestClient, container: Container
) -> None:
    account_id, headers = rider(client)
    first = issue(client, account_id, headers)
    second = issue(client, account_id, headers)  # retires the first
    container.card_follower.catch_up()
    delta = client.get("/v1/deny-list?since=0", headers=ADMIN).json()
    assert [(e["card_id"], e["reason"]) for e in delta["entries"]] == [
        (first["card_id"], "retired")
    ]
    client.post(
        f"/v1/virtual-cards/{second['card_id']}/block", json={"reason": "lost"}, headers=headers
    )
    container.card_follower.catch_up()
    later = client.get(f"/v1/deny-list?since={delta['version']}", headers=ADMIN).json()
    assert [(e["card_id"], e["reason"]) for e in later["entries"]] == [
        (second["card_id"], "blocked")
    ]
    assert later["version"] > delta["version"]
    assert (
        client.get(f"/v1/deny-list?since={later['version']}", headers=ADMIN).json()["entries"] == []
    )
    assert client.get("/v1/deny-list", headers=headers).status_code == 403


def test_card_views_rebuild_to_identical_rows(client: TestClient, container: Container) -> None:
    account_id, headers = rider(client)
    issue(client, account_id, headers)
    card = issue(client, account_id, headers)
    client.post(
        f"/v1/virtual-cards/{card['card_id']}/block", json={"reason": "lost"}, headers=headers
    )
    container.card_follower.catch_up()
    before = client.get("/v1/deny-list", headers=ADMIN).json()
    listed = client.get(f"/v1/accounts/{account_id}/virtual-cards", headers=headers).json()
    assert container.card_follower.rebuild() > 0
    assert client.get("/v1/deny-list", headers=ADMIN).json() == before
    assert client.get(f"/v1/accounts/{account_id}/virtual-cards", headers=headers).json() == listed
