"""What a validator syncs over HTTP, in process: keys, deny list and its config, with ETags."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tapledger.bootstrap import Container
from tests.e2e.riders import ADMIN, rider_with_phone

GATE_IN = 3101  # Cát Linh, line 2A, entry: the dearest ride starts at an end of the line
GATE_OUT = 3103  # Thái Hà, line 2A, exit
BUS = 3001  # route 01, a 10,000 VND route
MAX_FARE_FROM_CAT_LINH_VND = 15_000
MAX_FARE_TO_THAI_HA_VND = 13_000
BUS_01_FARE_VND = 10_000


def register(client: TestClient, validator_id: int, **fields: str) -> dict[str, str]:
    kind = "metro_gate" if "direction" in fields else "bus"
    fields = {"stop_id": "bus-kim-ma", "route_id": "01", **fields}  # a place the feed prices
    body = {"validator_id": validator_id, "kind": kind, "network_id": 2, "location": 7, **fields}
    response = client.post("/v1/validators", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def token(client: TestClient, role: str, account_id: str | None = None) -> dict[str, str]:
    response = client.post(
        "/v1/tokens", json={"role": role, "account_id": account_id}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def rider_token(client: TestClient) -> dict[str, str]:
    account_id, _ = rider_with_phone(client)
    return token(client, "rider", account_id)


def gate_in(client: TestClient) -> dict[str, str]:
    return register(client, GATE_IN, stop_id="2A-01", route_id="2A", direction="entry")


def test_a_validator_reads_its_own_config_with_the_maximum_fare_from_its_station(
    client: TestClient,
) -> None:
    device = gate_in(client)
    response = client.get(f"/v1/validators/{GATE_IN}/config", headers=device)
    assert response.status_code == 200, response.text
    config = response.json()
    assert config["validator"]["validator_id"] == GATE_IN
    assert (config["validator"]["stop_id"], config["validator"]["direction"]) == ("2A-01", "entry")
    assert config["fare_network_id"] == "metro_2a"
    assert {(m["medium"], m["fare_media_id"], m["max_fare_vnd"]) for m in config["media"]} == {
        ("qr", "mobile_app", MAX_FARE_FROM_CAT_LINH_VND),
        ("card", "transit_card", MAX_FARE_FROM_CAT_LINH_VND),
    }


def test_an_exit_gate_knows_the_dearest_ride_ending_there_and_a_bus_its_route_fare(
    client: TestClient,
) -> None:
    out = register(client, GATE_OUT, stop_id="2A-03", route_id="2A", direction="exit")
    bus = register(client, BUS, stop_id="bus-kim-ma", route_id="01")
    exit_config = client.get(f"/v1/validators/{GATE_OUT}/config", headers=out).json()
    bus_config = client.get(f"/v1/validators/{BUS}/config", headers=bus).json()
    assert {m["max_fare_vnd"] for m in exit_config["media"]} == {MAX_FARE_TO_THAI_HA_VND}
    assert {m["max_fare_vnd"] for m in bus_config["media"]} == {BUS_01_FARE_VND}


def test_a_validator_without_fare_terms_gets_the_feeds_refusal_instead_of_a_guess(
    client: TestClient, container: Container
) -> None:
    # Registered before registration checked the place against the feed: stored, still served.
    container.taps.register_validator(validator_id=BUS, kind="bus", network_id=2, location=7)
    issued = client.post(f"/v1/validators/{BUS}/tokens", headers=ADMIN)
    device = {"Authorization": f"Bearer {issued.json()['token']}"}
    config = client.get(f"/v1/validators/{BUS}/config", headers=device).json()
    assert config["fare_network_id"] == ""
    assert {(m["max_fare_vnd"], m["refusal_code"]) for m in config["media"]} == {
        (None, "unknown_network")
    }


def test_a_device_may_not_read_another_validators_config(client: TestClient) -> None:
    device = gate_in(client)
    register(client, BUS, stop_id="bus-kim-ma", route_id="01")
    response = client.get(f"/v1/validators/{BUS}/config", headers=device)
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    unregistered = client.get("/v1/validators/999/config", headers=device)
    assert unregistered.status_code == 403  # no probing which ids exist


def test_staff_read_any_config_and_riders_or_strangers_none(client: TestClient) -> None:
    gate_in(client)
    path = f"/v1/validators/{GATE_IN}/config"
    assert client.get(path, headers=ADMIN).status_code == 200
    assert client.get(path, headers=token(client, "operator")).status_code == 200
    refused = client.get(path, headers=rider_token(client))
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert client.get(path).status_code == 401
    unknown = client.get("/v1/validators/999/config", headers=ADMIN)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "validator_not_found")


def test_the_config_answers_304_to_its_own_etag_and_200_to_another(client: TestClient) -> None:
    device = gate_in(client)
    path = f"/v1/validators/{GATE_IN}/config"
    first = client.get(path, headers=device)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.get(path, headers=device | {"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    weak = client.get(path, headers=device | {"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    other = client.get(path, headers=device | {"If-None-Match": '"0123"'})
    assert (other.status_code, other.json()) == (200, first.json())


def test_a_validator_reads_the_issuer_keys_and_gets_304_until_they_rotate(
    client: TestClient,
) -> None:
    device = gate_in(client)
    first = client.get("/v1/issuer-keys", headers=device)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    unchanged = client.get("/v1/issuer-keys", headers=device | {"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert client.post("/v1/issuer-keys/rotate", headers=ADMIN).status_code == 201
    rotated = client.get("/v1/issuer-keys", headers=device | {"If-None-Match": etag})
    assert rotated.status_code == 200
    assert rotated.headers["etag"] != etag
    assert len(rotated.json()["keys"]) == len(first.json()["keys"]) + 1


def test_issuer_keys_are_public_to_every_token_but_not_to_strangers(client: TestClient) -> None:
    for headers in (ADMIN, token(client, "operator"), rider_token(client)):
        assert client.get("/v1/issuer-keys", headers=headers).status_code == 200
    assert client.get("/v1/issuer-keys").status_code == 401


def test_a_validator_reads_deny_list_deltas_and_a_rider_may_not(
    client: TestClient, container: Container
) -> None:
    device = gate_in(client)
    account_id, _ = rider_with_phone(client)
    container.card_follower.catch_up()
    empty = client.get("/v1/deny-list?since=0", headers=device)
    assert empty.status_code == 200, empty.text
    etag = empty.headers["etag"]
    assert empty.json()["entries"] == []
    same = client.get("/v1/deny-list?since=0", headers=device | {"If-None-Match": etag})
    assert same.status_code == 304
    card_id = client.get(f"/v1/accounts/{account_id}/virtual-cards", headers=ADMIN).json()[0][
        "card_id"
    ]
    blocked = client.post(
        f"/v1/virtual-cards/{card_id}/block", json={"reason": "lost"}, headers=ADMIN
    )
    assert blocked.status_code == 200, blocked.text
    container.card_follower.catch_up()
    grown = client.get("/v1/deny-list?since=0", headers=device | {"If-None-Match": etag})
    assert grown.status_code == 200
    assert [e["card_id"] for e in grown.json()["entries"]] == [card_id]
    refused = client.get("/v1/deny-list", headers=rider_token(client))
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert client.get("/v1/deny-list", headers=token(client, "operator")).status_code == 200
    assert client.get("/v1/deny-list").status_code == 401
