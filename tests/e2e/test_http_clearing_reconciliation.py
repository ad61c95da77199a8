"""An operator's own transaction file reconciled over HTTP against its lines of a closed cycle
(docs/clearing-api.md): a JSON report, or the CSV one, within the operator's scope."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tapledger.http.app import create_app
from tests.e2e.clearing_site import BUS, DAY, METRO, closed_day_world, operator_token
from tests.e2e.riders import ADMIN

CYCLE = f"/v1/clearing/cycles/{DAY.isoformat()}"
RECONCILE = "/v1/clearing/reconciliations"
UNKNOWN_ID = "f" * 32


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with (
        closed_day_world(tmp_path) as world,
        TestClient(create_app(world.container, own_container=False)) as test_client,
    ):
        ran = test_client.post(f"{CYCLE}/run", headers=ADMIN)
        assert ran.status_code == 200, ran.text
        yield test_client


def their_file(client: TestClient, operator_id: str) -> tuple[list[tuple[str, int]], bytes]:
    """Our lines of the operator, and its file of them: the first transaction 1,000 higher,
    the last one left out, and a transaction we never saw."""
    items = client.get(
        f"{CYCLE}/lines", params={"operator": operator_id, "limit": 500}, headers=ADMIN
    ).json()["items"]
    ours = [(line["transaction_id"], line["amount_vnd"]) for line in items]
    by_id: dict[str, int] = {}
    for transaction_id, amount_vnd in ours:
        by_id[transaction_id] = by_id.get(transaction_id, 0) + amount_vnd
    ids = sorted(by_id)
    assert len(ids) >= 2, "the day gives the operator at least two transactions"
    rows = [(ids[0], by_id[ids[0]] + 1_000), *[(i, by_id[i]) for i in ids[1:-1]], (UNKNOWN_ID, 500)]
    text = "transaction_id,amount_vnd\n" + "".join(f"{i},{a}\n" for i, a in rows)
    return ours, text.encode()


def test_an_operator_reconciles_its_file_and_sees_each_kind_of_difference(
    client: TestClient,
) -> None:
    metro = operator_token(client, METRO)
    _, data = their_file(client, METRO)

    answer = client.post(
        RECONCILE, params={"day": DAY.isoformat()}, content=data, headers=metro | CSV_BODY
    )

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["operator_id"] == METRO
    assert report["all_matched"] is False
    counts = {outcome: t["transactions"] for outcome, t in report["by_outcome"].items()}
    assert (
        counts["amount_mismatch"] == counts["missing_in_ours"] == counts["missing_in_theirs"] == 1
    )
    assert counts["matched"] == report["rows_total"] - 3
    outcomes = [row["outcome"] for row in report["rows"]]
    assert outcomes == sorted(outcomes, key=lambda outcome: outcome == "matched")
    assert report["totals"]["difference_vnd"] == -1_000 - 500 + sum(
        row["our_vnd"] for row in report["rows"] if row["outcome"] == "missing_in_theirs"
    )


def test_the_report_downloads_as_csv_when_csv_is_accepted(client: TestClient) -> None:
    metro = operator_token(client, METRO)
    _, data = their_file(client, METRO)

    answer = client.post(
        RECONCILE,
        params={"day": DAY.isoformat()},
        content=data,
        headers=metro | CSV_BODY | {"Accept": "text/csv"},
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:3] == ["kind", "transaction_id", "outcome"]
    assert UNKNOWN_ID in {row[1] for row in rows}


def test_an_operator_reconciles_no_other_operators_lines(client: TestClient) -> None:
    metro = operator_token(client, METRO)
    _, data = their_file(client, BUS)

    answer = client.post(
        RECONCILE,
        params={"day": DAY.isoformat(), "operator": BUS},
        content=data,
        headers=metro | CSV_BODY,
    )

    assert answer.status_code == 403
    assert answer.json()["code"] == "clearing_operator_out_of_scope"


def test_staff_name_the_operator_whose_file_it_is(client: TestClient) -> None:
    _, data = their_file(client, BUS)

    unnamed = client.post(
        RECONCILE, params={"day": DAY.isoformat()}, content=data, headers=ADMIN | CSV_BODY
    )
    named = client.post(
        RECONCILE,
        params={"day": DAY.isoformat(), "operator": BUS},
        content=data,
        headers=ADMIN | CSV_BODY,
    )

    assert unnamed.status_code == 422
    assert unnamed.json()["code"] == "clearing_operator_required"
    assert named.status_code == 200
    assert named.json()["operator_id"] == BUS


def test_a_file_with_bad_lines_is_refused_naming_them(client: TestClient) -> None:
    metro = operator_token(client, METRO)
    data = b"transaction_id,amount_vnd\nabc,12.5\nnot-hex,100\n"

    answer = client.post(
        RECONCILE, params={"day": DAY.isoformat()}, content=data, headers=metro | CSV_BODY
    )

    assert answer.status_code == 422
    assert answer.json()["code"] == "reconciliation_file_invalid"
    assert "line 2" in answer.json()["detail"]
    assert "line 3" in answer.json()["detail"]


def test_a_day_with_no_cycle_has_nothing_to_reconcile(client: TestClient) -> None:
    metro = operator_token(client, METRO)

    answer = client.post(
        RECONCILE,
        params={"day": "2026-11-01"},
        content=b"transaction_id,amount_vnd\n",
        headers=metro | CSV_BODY,
    )

    assert answer.status_code == 404
    assert answer.json()["code"] == "clearing_cycle_not_found"


CSV_BODY = {"Content-Type": "text/csv"}
