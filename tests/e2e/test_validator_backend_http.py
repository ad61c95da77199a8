"""The validator backend contract on the HTTP adapter, talking to the real app in process.

`HttpBackend` is given a transport that hands its requests to a `TestClient`: the adapter's
httpx client, the app's routing, authentication, schemas and use cases are all real; only the
socket is left out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings
from tests.builders.taps import recorded_taps
from tests.e2e.riders import ADMIN, qr, rider_with_phone
from tests.tap_media import Phone
from tests.validator_backend_contract import BackendContract, BackendSite
from validators.http_backend import HttpBackend

BUS = 3001
# What the app's response headers say of a body httpx has already decoded.
HEADERS_OF_THE_ENCODED_BODY = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class AppTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to a `TestClient` of the app."""

    def __init__(self, client: TestClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._client.request(
            request.method,
            request.url.raw_path.decode("ascii"),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            content=request.read(),
        )
        headers = [
            (k, v)
            for k, v in answer.headers.items()
            if k.lower() not in HEADERS_OF_THE_ENCODED_BODY
        ]
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)


@dataclass
class HttpSite:
    container: Container
    client: TestClient
    backend: HttpBackend
    phone: Phone
    account_id: str
    validator_id: int = BUS

    def good_tap(self, seq: int) -> dict[str, Any]:
        return qr(self.phone, seq, now=int(time.time()))

    def refused_tap(self, seq: int) -> dict[str, Any]:
        return {**self.good_tap(seq), "code": "TL1:not-a-code"}

    def recorded_seqs(self) -> list[int]:
        taps = recorded_taps(self.container.taps)
        return sorted(tap.seq for tap in taps if tap.validator_id == self.validator_id)

    def deny_a_card(self) -> str:
        # The card list and the deny list are views of the card events, caught up by hand.
        self.container.card_follower.catch_up()
        cards = self.client.get(f"/v1/accounts/{self.account_id}/virtual-cards", headers=ADMIN)
        card_id: str = cards.json()[0]["card_id"]
        blocked = self.client.post(
            f"/v1/virtual-cards/{card_id}/block", json={"reason": "lost"}, headers=ADMIN
        )
        assert blocked.status_code == 200, blocked.text
        self.container.card_follower.catch_up()
        return card_id


def device_token(client: TestClient, validator_id: int) -> str:
    body = {
        "validator_id": validator_id,
        "kind": "bus",
        "network_id": 2,
        "location": 7,
        "stop_id": "bus-kim-ma",  # a place the feed prices
        "route_id": "01",
    }
    response = client.post("/v1/validators", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


class TestHttpBackend(BackendContract):
    @pytest.fixture
    def site(self, tmp_path: Path) -> Iterator[BackendSite]:
        settings = ExplicitSettings(data_dir=tmp_path, follow_in_process=False)
        container = bootstrap(settings)
        with TestClient(create_app(container, own_container=False)) as client:
            account_id, phone = rider_with_phone(client)
            token = device_token(client, BUS)
            backend = HttpBackend(str(client.base_url), token, transport=AppTransport(client))
            yield HttpSite(container, client, backend, phone, account_id)
            backend.close()
        container.close()
