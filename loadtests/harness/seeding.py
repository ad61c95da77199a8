"""Seeding over HTTP, as an operator would: validators, accounts, virtual cards (a P-256 key per
simulated phone) and smart cards."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from loadtests.harness.plan import CARDS, LOCUST_GATES, LOCUST_VALIDATORS, PHONES, WRK_VALIDATORS

# Phones' private keys are consecutive scalars from a random base: distinct, and cheap to send
# to the signing processes.
PHONE_SCALAR_BITS = 200
PHONE_SCALAR_FLOOR = 1 << 100
SERIAL_BYTES = 8
NETWORK_ID = 1
LOCATION = 32


@dataclass
class Device:
    validator_id: int
    kind: str
    token: str


@dataclass
class World:
    phones: list[tuple[int, bytes]] = field(default_factory=list)  # (scalar, certificate)
    cards: list[dict[str, str]] = field(default_factory=list)  # serial, account_id
    devices: dict[str, list[Device]] = field(default_factory=dict)


def device_groups() -> dict[str, list[str]]:
    """The validators of each part of the run, by kind: none of them is shared between parts."""
    return {
        "locust_validators": [
            "bus" if i % 2 == 0 else "metro_gate" for i in range(LOCUST_VALIDATORS)
        ],
        "locust_gates": ["metro_gate"] * LOCUST_GATES,
        "qr": ["bus"] * WRK_VALIDATORS,
        "card": ["bus"] * WRK_VALIDATORS,
        "single": ["metro_gate"] * WRK_VALIDATORS,
        "paced": ["metro_gate"] * WRK_VALIDATORS,
        "profile": ["bus"] * WRK_VALIDATORS,
        "warmup": ["bus"] * WRK_VALIDATORS,
        "check": ["bus", "bus"],
    }


# Places of the built-in Hanoi fare feed, by validator kind.
PLACES: dict[str, dict[str, Any]] = {
    "bus": {"stop_id": "bus-kim-ma", "route_id": "01"},
    "metro_gate": {"stop_id": "2A-01", "route_id": "2A", "direction": "entry"},
}


def ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= httpx.codes.MULTIPLE_CHOICES:
        raise SystemExit(f"seeding failed: {response.request.url} {response.text}")
    body: dict[str, Any] = response.json()
    return body


def _register_validators(
    client: httpx.Client, admin: dict[str, str], groups: dict[str, list[str]], world: World
) -> None:
    next_id = 1
    for group, kinds in groups.items():
        devices = []
        for kind in kinds:
            body = {
                "validator_id": next_id,
                "kind": kind,
                "network_id": NETWORK_ID,
                "location": LOCATION,
            }
            body |= PLACES.get(kind, {})  # registration refuses a place the feed cannot price
            registered = ok(client.post("/v1/validators", json=body, headers=admin))
            devices.append(Device(next_id, kind, registered["token"]))
            next_id += 1
        world.devices[group] = devices


def _issue_riders(client: httpx.Client, admin: dict[str, str], world: World) -> None:
    """An account per phone with its virtual card; the first `CARDS` accounts a smart card too."""
    base_scalar = secrets.randbelow(1 << PHONE_SCALAR_BITS) + PHONE_SCALAR_FLOOR
    for index in range(PHONES):
        account_id = ok(client.post("/v1/accounts", json={}, headers=admin))["id"]
        scalar = base_scalar + index
        key = ec.derive_private_key(scalar, ec.SECP256R1())
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        card = ok(
            client.post(
                f"/v1/accounts/{account_id}/virtual-cards",
                json={"device_key": base64.b64encode(public).decode()},
                headers=admin,
            )
        )
        world.phones.append((scalar, base64.b64decode(card["certificate"])))
        if index < CARDS:
            serial = secrets.token_hex(SERIAL_BYTES)
            ok(
                client.post(
                    "/v1/cards", json={"serial": serial, "account_id": account_id}, headers=admin
                )
            )
            world.cards.append({"serial": serial, "account_id": account_id})


def seed(client: httpx.Client, admin: dict[str, str], groups: dict[str, list[str]]) -> World:
    world = World()
    _register_validators(client, admin, groups, world)
    _issue_riders(client, admin, world)
    return world
