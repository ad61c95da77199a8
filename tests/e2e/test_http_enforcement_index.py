"""`GET /v1/parking/enforcement` answered from the enforcement index gives, byte for byte, the
answers the event store gives: paid, unpaid, and every refusal."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from tapledger.bootstrap import Container
from tests.e2e.test_http_parking import funded_rider, lot, start_body, token

__all__ = ["lot"]  # the fixture: a lot registered over HTTP

URL = "/v1/parking/enforcement"


def answers(client: TestClient, officer: dict[str, str], lot_id: str) -> list[tuple[object, ...]]:
    queries = (
        f"lot_id={lot_id}&plate=29A12345",  # paid
        f"lot_id={lot_id}&plate=29a-123.45",  # paid, written otherwise
        f"lot_id={lot_id}&plate=30E67890",  # never seen: unpaid
        f"lot_id={lot_id}&plate=30E-111.11",  # started and ended: unpaid
        f"lot_id={lot_id}&plate=29A-12",  # unreadable
        "lot_id=nowhere&plate=29A12345",  # no such lot
        "plate=29A12345",  # no lot given
    )
    answered = [client.get(f"{URL}?{query}", headers=officer) for query in queries]
    return [(a.status_code, a.headers["content-type"], a.content) for a in answered]


def test_the_route_answers_from_the_index_as_it_does_from_the_store(
    client: TestClient, container: Container, lot: str
) -> None:
    _, _, rider = funded_rider(client)
    officer = token(client, "operator")
    assert client.post("/v1/parking/sessions", json=start_body("a"), headers=rider).is_success
    ended = client.post(
        "/v1/parking/sessions", json=start_body("b", plate="30E-111.11"), headers=rider
    ).json()
    end = client.post(f"/v1/parking/sessions/{ended['session_id']}/end", json={"end_id": "e"},
                      headers=rider)  # fmt: skip
    assert end.is_success, end.text
    enforcement = container.parking.enforcement

    from_store = answers(client, officer, lot)
    container.parking.index_follower.catch_up()
    from_index = answers(client, officer, lot)

    assert asyncio.run(enforcement.check_indexed(lot, "29A12345")) is not None
    assert from_index == from_store
    assert [status for status, _, _ in from_store] == [200, 200, 200, 200, 422, 404, 422]
