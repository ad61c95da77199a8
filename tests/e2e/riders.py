"""Riders over HTTP: an account, a phone with its virtual card, the codes it shows, and gates."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from hardware.tlc1.terminal import SessionProof
from tapledger.settings import LOCAL_ADMIN_TOKEN
from tests.tap_media import Phone

ADMIN = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}


@dataclass(frozen=True)
class AppRider:
    """A rider's account and the rider token a phone app holds for it."""

    account_id: str
    token: str


def funded_rider_with_token(
    client: httpx.Client, top_up_vnd: int, reference_prefix: str
) -> AppRider:
    """A regular rider's account topped up by `top_up_vnd`, and a rider token for it."""
    opened = client.post("/v1/accounts", json={"rider_category": 0}, headers=ADMIN)
    assert opened.status_code == httpx.codes.CREATED, opened.text
    account_id: str = opened.json()["id"]
    topped = client.post(
        f"/v1/accounts/{account_id}/top-ups",
        json={"amount_vnd": top_up_vnd, "payment_reference": f"{reference_prefix}-{account_id}"},
        headers=ADMIN,
    )
    assert topped.status_code == httpx.codes.CREATED, topped.text
    issued = client.post(
        "/v1/tokens", json={"role": "rider", "account_id": account_id}, headers=ADMIN
    )
    assert issued.status_code == httpx.codes.CREATED, issued.text
    return AppRider(account_id, issued.json()["token"])


def rider_with_phone(client: httpx.Client) -> tuple[str, Phone]:
    """An account with a phone's virtual card; `client` is a TestClient or a client of a
    running server."""
    account_id: str = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    phone = Phone.new()
    key = base64.b64encode(phone.public_key()).decode()
    card = client.post(
        f"/v1/accounts/{account_id}/virtual-cards", json={"device_key": key}, headers=ADMIN
    )
    assert card.status_code == 201, card.text
    phone.certify(card.json()["certificate"])
    return account_id, phone


def qr(phone: Phone, seq: int, *, now: int, counter: int | None = None) -> dict[str, Any]:
    return {
        "medium": "qr",
        "seq": seq,
        "tapped_at": now,
        "device_decision": "accepted",
        "device_reason": "accepted",
        "code": phone.code(now - 1, seq if counter is None else counter),
    }


def card(proof: SessionProof, seq: int, *, now: int) -> dict[str, Any]:
    return {
        "medium": "card",
        "seq": seq,
        "tapped_at": now,
        "device_decision": "accepted",
        "device_reason": "charged",
        "serial": proof.serial.hex(),
        "proof": proof.to_wire(),
    }


def gate(client: TestClient, validator_id: int, stop_id: str, direction: str) -> dict[str, str]:
    body = {
        "validator_id": validator_id,
        "kind": "metro_gate",
        "network_id": 2,
        "location": validator_id,
        "stop_id": stop_id,
        "route_id": "2A",
        "direction": direction,
    }
    response = client.post("/v1/validators", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert response.json()["direction"] == direction
    return {"Authorization": f"Bearer {response.json()['token']}"}
