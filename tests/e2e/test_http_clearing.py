"""Clearing over HTTP, in process (docs/clearing-api.md): staff run a closed day and see every
operator; an operator's token sees its own position, lines, files, revenue and reconciliation,
and nothing of the other operators, whatever it asks for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tapledger.http.app import create_app
from tests.builders.parking import OPERATOR as PARKING
from tests.builders.parking import ParkingWorld
from tests.e2e.clearing_site import BUS, DAY, METRO, closed_day_world, operator_token
from tests.e2e.riders import ADMIN

CYCLE = f"/v1/clearing/cycles/{DAY.isoformat()}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with closed_day_world(tmp_path) as built:
        yield built


@pytest.fixture
def client(world: ParkingWorld) -> Iterator[TestClient]:
    with TestClient(create_app(world.container, own_container=False)) as test_client:
        yield test_client


@pytest.fixture
def run(client: TestClient) -> dict[str, Any]:
    answer = client.post(f"{CYCLE}/run", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def lines_of(client: TestClient, headers: dict[str, str], **params: str | int) -> dict[str, Any]:
    answer = client.get(f"{CYCLE}/lines", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# ---------------------------------------------------------------- staff


def test_staff_run_a_closed_day_and_see_every_operators_position(
    client: TestClient, run: dict[str, Any]
) -> None:
    cycle = client.get(CYCLE, headers=ADMIN).json()

    assert cycle["state"] == "closed"
    assert {o["operator_id"] for o in cycle["operators"]} == {METRO, BUS, PARKING}
    assert {p["state"] for p in cycle["payouts"]} == {"pending"}
    scheme = cycle["scheme"]
    nets = sum(o["net_vnd"] for o in cycle["operators"])
    float_vnd = -(scheme["revenue_vnd"] + scheme["suspense_vnd"])
    assert nets + scheme["suspense_vnd"] + scheme["commission_vnd"] + float_vnd == 0
    listed_files = client.get(f"{CYCLE}/files", headers=ADMIN).json()["items"]
    assert sorted(run["files"]) == [f["name"] for f in listed_files]
    listed = client.get("/v1/clearing/cycles", headers=ADMIN).json()["items"]
    assert [(c["business_day"], c["state"]) for c in listed] == [(DAY.isoformat(), "closed")]


def test_running_a_cycle_again_answers_the_same_cycle_and_the_same_files(
    client: TestClient, run: dict[str, Any]
) -> None:
    metro_file = client.get(f"{CYCLE}/files/lines-{METRO}.csv", headers=ADMIN).content

    again = client.post(f"{CYCLE}/run", headers=ADMIN)

    assert again.status_code == 200
    assert again.json() == run
    assert client.get(f"{CYCLE}/files/lines-{METRO}.csv", headers=ADMIN).content == metro_file


def test_a_day_not_yet_over_is_not_run(client: TestClient) -> None:
    tomorrow = DAY.replace(day=DAY.day + 1).isoformat()

    answer = client.post(f"/v1/clearing/cycles/{tomorrow}/run", headers=ADMIN)

    assert answer.status_code == 409
    assert answer.json()["code"] == "day_not_over"


def test_a_day_with_no_cycle_is_not_found(client: TestClient) -> None:
    for path in ("", "/lines", "/files", "/files/positions.csv"):
        answer = client.get(CYCLE + path, headers=ADMIN)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "clearing_cycle_not_found"


def test_staff_search_every_line_or_one_operators_by_text_in_pages(
    client: TestClient, run: dict[str, Any]
) -> None:
    everything = lines_of(client, ADMIN, limit=500)
    metro = lines_of(client, ADMIN, operator=METRO)
    first = lines_of(client, ADMIN, operator=METRO, limit=1)
    second = lines_of(client, ADMIN, operator=METRO, limit=1, offset=1)
    wanted = metro["items"][0]["transaction_id"]
    found = lines_of(client, ADMIN, q=wanted)

    operators = {line["operator_id"] for line in everything["items"]}
    assert operators == {METRO, BUS, PARKING, ""}  # "" is the line in suspense
    assert {line["operator_id"] for line in metro["items"]} == {METRO}
    assert first["total"] == second["total"] == metro["total"]
    assert first["items"] != second["items"]
    assert found["total"] >= 1
    assert all(wanted in line["transaction_id"] for line in found["items"])


def test_the_settlement_file_downloads_as_xml(client: TestClient, run: dict[str, Any]) -> None:
    cycle = client.get(CYCLE, headers=ADMIN).json()
    name = f"{cycle['scheme']['message_id']}.xml"

    answer = client.get(f"{CYCLE}/files/{name}", headers=ADMIN)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert b"pain.001.001.09" in answer.content


def test_revenue_per_day_is_each_operators_revenue_of_the_closed_cycles(
    client: TestClient, run: dict[str, Any]
) -> None:
    params = {"from": DAY.isoformat(), "to": DAY.isoformat()}
    cycle = client.get(CYCLE, headers=ADMIN).json()

    rows = client.get("/v1/clearing/revenue", params=params, headers=ADMIN).json()["items"]

    expected = {o["operator_id"]: o["revenue_vnd"] for o in cycle["operators"]}
    assert {r["operator_id"]: r["revenue_vnd"] for r in rows} == expected
    assert {r["business_day"] for r in rows} == {DAY.isoformat()}


def test_a_revenue_range_backwards_or_too_long_is_refused(client: TestClient) -> None:
    for first, last in (("2026-11-23", "2026-11-22"), ("2024-01-01", "2026-01-01")):
        params = {"from": first, "to": last}
        answer = client.get("/v1/clearing/revenue", params=params, headers=ADMIN)
        assert answer.status_code == 422
        assert answer.json()["code"] == "clearing_day_range_invalid"


# ---------------------------------------------------------------- an operator's scope


def test_an_operator_sees_only_its_own_position_and_payout(
    client: TestClient, run: dict[str, Any]
) -> None:
    metro = operator_token(client, METRO)

    cycle = client.get(CYCLE, headers=metro).json()
    listed = client.get("/v1/clearing/cycles", headers=metro).json()["items"]

    assert [o["operator_id"] for o in cycle["operators"]] == [METRO]
    assert [p["operator_id"] for p in cycle["payouts"]] == [METRO]
    assert cycle["scheme"] is None
    assert [o["operator_id"] for o in listed[0]["operators"]] == [METRO]


def test_an_operator_searches_only_its_own_lines(client: TestClient, run: dict[str, Any]) -> None:
    metro = operator_token(client, METRO)

    own = lines_of(client, metro, limit=500)
    asked_for_own = lines_of(client, metro, operator=METRO, limit=500)

    assert own["total"] == lines_of(client, ADMIN, operator=METRO)["total"]
    assert {line["operator_id"] for line in own["items"]} == {METRO}
    assert asked_for_own == own


def test_an_operator_asking_for_another_operators_lines_is_forbidden(
    client: TestClient, run: dict[str, Any]
) -> None:
    metro = operator_token(client, METRO)

    for other in (BUS, PARKING):
        answer = client.get(f"{CYCLE}/lines", params={"operator": other}, headers=metro)
        assert answer.status_code == 403
        assert answer.json()["code"] == "clearing_operator_out_of_scope"


def test_an_operator_lists_and_downloads_only_its_lines_and_statement(
    client: TestClient, run: dict[str, Any]
) -> None:
    metro = operator_token(client, METRO)

    listed = client.get(f"{CYCLE}/files", headers=metro).json()["items"]
    own = client.get(f"{CYCLE}/files/lines-{METRO}.csv", headers=metro)

    assert [f["name"] for f in listed] == [f"lines-{METRO}.csv", f"statement-{METRO}.csv"]
    assert own.status_code == 200
    assert own.headers["content-type"].startswith("text/csv")
    assert own.content == client.get(f"{CYCLE}/files/lines-{METRO}.csv", headers=ADMIN).content


def test_another_operators_files_and_the_schemes_look_absent_to_an_operator(
    client: TestClient, run: dict[str, Any]
) -> None:
    metro = operator_token(client, METRO)
    names = [f["name"] for f in client.get(f"{CYCLE}/files", headers=ADMIN).json()["items"]]
    not_its_own = [n for n in names if n not in (f"lines-{METRO}.csv", f"statement-{METRO}.csv")]

    assert f"lines-{BUS}.csv" in not_its_own
    assert "positions.csv" in not_its_own
    for name in not_its_own:
        answer = client.get(f"{CYCLE}/files/{name}", headers=metro)
        assert answer.status_code == 404, name
        assert answer.json()["code"] == "clearing_file_not_found"


def test_an_operator_sees_only_its_own_revenue(client: TestClient, run: dict[str, Any]) -> None:
    bus = operator_token(client, BUS)
    params = {"from": DAY.isoformat(), "to": DAY.isoformat()}

    rows = client.get("/v1/clearing/revenue", params=params, headers=bus).json()["items"]

    assert [r["operator_id"] for r in rows] == [BUS]


def test_an_operator_runs_no_cycle(client: TestClient) -> None:
    metro = operator_token(client, METRO)

    answer = client.post(f"{CYCLE}/run", headers=metro)

    assert answer.status_code == 403
    assert client.get(CYCLE, headers=ADMIN).status_code == 404  # nothing was run


# ---------------------------------------------------------------- files outside the listing


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Fsecret.txt",
        "..%2Fsecret.txt",
        "%2E%2E%2Fsecret.txt",
        ".SHA256SUMS.tmp",
        "secret.txt",
        "%2E%2E",
    ],
)
def test_a_file_name_outside_the_cycles_directory_is_never_served(
    client: TestClient, run: dict[str, Any], world: ParkingWorld, name: str
) -> None:
    root = world.container.settings.data_dir / "clearing"
    (root / "secret.txt").write_text("not a cycle's file")
    (root / DAY.isoformat() / ".SHA256SUMS.tmp").write_text("half written")

    answer = client.get(f"{CYCLE}/files/{name}", headers=ADMIN)

    assert answer.status_code in (404, 422), answer.status_code
    assert b"not a cycle" not in answer.content
    assert b"half written" not in answer.content


# ---------------------------------------------------------------- tokens and scopes


def test_tokens_without_an_operator_scope_see_no_clearing(
    client: TestClient, run: dict[str, Any], world: ParkingWorld
) -> None:
    plain = client.post("/v1/tokens", json={"role": "operator"}, headers=ADMIN).json()["token"]
    rider = client.post(
        "/v1/tokens", json={"role": "rider", "account_id": str(world.account_id)}, headers=ADMIN
    ).json()["token"]

    for token, code in ((plain, "out_of_scope"), (rider, "forbidden")):
        answer = client.get(CYCLE, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403
        assert answer.json()["code"] == code
    still = client.get("/v1/parking/operators", headers={"Authorization": f"Bearer {plain}"})
    assert still.status_code == 200  # its parking back end keeps working


def test_a_scoped_operator_token_is_refused_by_every_other_context(
    client: TestClient, world: ParkingWorld
) -> None:
    metro = operator_token(client, METRO)

    for path in ("/v1/parking/operators", f"/v1/accounts/{world.account_id}"):
        answer = client.get(path, headers=metro)
        assert answer.status_code == 403, path
        assert answer.json()["code"] == "out_of_scope"


def test_an_operator_scope_is_only_for_operator_tokens_of_operators_clearing_settles(
    client: TestClient,
) -> None:
    for body in (
        {"role": "admin", "operator_id": METRO},
        {"role": "operator", "operator_id": "nobody-we-settle"},
    ):
        answer = client.post("/v1/tokens", json=body, headers=ADMIN)
        assert answer.status_code == 422, body
        assert answer.json()["code"] == "invalid_token_request"


def test_staff_see_a_tokens_operator_scope_in_the_listing(client: TestClient) -> None:
    operator_token(client, BUS)

    listed = client.get("/v1/tokens", headers=ADMIN).json()

    assert [t["operator_id"] for t in listed if t["role"] == "operator"] == [BUS]


# ---------------------------------------------------------------- disputes (staff)


def test_staff_dispute_an_operators_line_once_and_an_operator_may_not(
    client: TestClient, run: dict[str, Any]
) -> None:
    line = lines_of(client, ADMIN, operator=METRO)["items"][0]
    path = f"{CYCLE}/lines/{line['line_no']}/dispute"
    metro = operator_token(client, METRO)

    refused = client.post(path, json={"reason": "not ours"}, headers=metro)
    first = client.post(path, json={"reason": "gate fault"}, headers=ADMIN)
    again = client.post(path, json={"reason": "gate fault"}, headers=ADMIN)

    assert refused.status_code == 403
    assert first.status_code == 200
    assert first.json() == {
        "business_day": DAY.isoformat(),
        "line_no": line["line_no"],
        "changed": True,
    }
    assert again.json()["changed"] is False


def test_a_suspense_line_or_an_unknown_line_is_not_disputed(
    client: TestClient, run: dict[str, Any]
) -> None:
    everything = lines_of(client, ADMIN, limit=500)
    suspense = next(line for line in everything["items"] if line["operator_id"] == "")

    for line_no in (suspense["line_no"], everything["total"] + 1):
        answer = client.post(
            f"{CYCLE}/lines/{line_no}/dispute", json={"reason": "why"}, headers=ADMIN
        )
        assert answer.status_code == 409, line_no
        assert answer.json()["code"] == "line_not_disputable"


def test_a_line_not_yet_carved_out_is_not_released(client: TestClient, run: dict[str, Any]) -> None:
    line = lines_of(client, ADMIN, operator=BUS)["items"][0]
    client.post(f"{CYCLE}/lines/{line['line_no']}/dispute", json={"reason": "x"}, headers=ADMIN)

    answer = client.post(f"{CYCLE}/lines/{line['line_no']}/release", headers=ADMIN)

    assert answer.status_code == 409
    assert answer.json()["code"] == "dispute_not_carved"
