"""Seeding parking over HTTP, as staff would: an operator, an always-open lot on Dong Da's table,
funded accounts, and sessions started for them by an attendant, from a few threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from loadtests.harness.seeding import ok

LOT = "bench-lot"
OPERATOR = "bench-operator"
# The ledger keeps at most 16 holds pending on one account; each open session holds one.
SESSIONS_PER_ACCOUNT = 15
ACCOUNT_FUNDS_VND = 5_000_000
SEED_THREADS = 8
SEED_REQUEST_TIMEOUT_S = 60
# Plates are `29A-100.00` and on (with sessions) and `29B-...` (none): numbers of five digits.
PLATE_NUMBER_FIRST = 10_000
PLATES_MAX = 89_999
# The most places of one class a lot may have (the API refuses more).
LOT_PLACES = 10_000


@dataclass(frozen=True)
class Seeded:
    lot_id: str
    with_session: list[str]  # compact plates
    without_session: list[str]
    officer_token: str


def plate(series: str, index: int) -> str:
    if not 0 <= index < PLATES_MAX:
        raise ValueError(f"at most {PLATES_MAX} plates per series")
    number = PLATE_NUMBER_FIRST + index
    return f"29{series}{number}"


def register_lot(client: httpx.Client, admin: dict[str, str]) -> None:
    operator = {"operator_id": OPERATOR, "name": "Benchmark parking"}
    ok(client.post("/v1/parking/operators", json=operator, headers=admin))
    lot = {
        "lot_id": LOT,
        "operator_id": OPERATOR,
        "name": "Ton Duc Thang",
        "address": "Ton Duc Thang, Dong Da, Hanoi",
        "lat": 21.0187,
        "lon": 105.8290,
        "opening_hours": None,
        "capacity": {"car": LOT_PLACES, "motorbike": 0},
        "table_id": "hanoi-dong-da",
    }
    ok(client.post("/v1/parking/lots", json=lot, headers=admin))


def open_account(client: httpx.Client, admin: dict[str, str], tag: str, *, top_ups: int = 1) -> str:
    """A new account topped up `top_ups` times with `ACCOUNT_FUNDS_VND`."""
    account_id: str = ok(client.post("/v1/accounts", json={}, headers=admin))["id"]
    for number in range(top_ups):
        top_up = {"amount_vnd": ACCOUNT_FUNDS_VND, "payment_reference": f"bench-{tag}-{number}"}
        ok(client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=admin))
    return account_id


def start_body(start_id: str, plate_text: str, account_id: str) -> dict[str, Any]:
    paid_until = datetime.now(UTC) + timedelta(hours=2)
    return {
        "start_id": start_id,
        "lot_id": LOT,
        "plate": plate_text,
        "vehicle_class": "car",
        "paid_until": paid_until.isoformat(),
        "account_id": account_id,
    }


def seed_parking(base_url: str, admin: dict[str, str], sessions: int, unpaid: int) -> Seeded:
    """The lot, `sessions` open sessions (each plate its own), `unpaid` plates with none, and an
    officer's token."""
    accounts = -(-sessions // SESSIONS_PER_ACCOUNT)
    with httpx.Client(base_url=base_url, timeout=SEED_REQUEST_TIMEOUT_S) as client:
        register_lot(client, admin)
        officer = ok(client.post("/v1/tokens", json={"role": "operator"}, headers=admin))

    def open_accounts(indexes: range) -> list[str]:
        with httpx.Client(base_url=base_url, timeout=SEED_REQUEST_TIMEOUT_S) as client:
            return [open_account(client, admin, str(i)) for i in indexes]

    def start(indexes: range, account_ids: list[str]) -> None:
        with httpx.Client(base_url=base_url, timeout=SEED_REQUEST_TIMEOUT_S) as client:
            for i in indexes:
                account_id = account_ids[i // SESSIONS_PER_ACCOUNT]
                body = start_body(f"bench-{i}", plate("A", i), account_id)
                ok(client.post("/v1/parking/sessions", json=body, headers=admin))

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        account_ids = [a for part in pool.map(open_accounts, _split(accounts)) for a in part]
        list(pool.map(lambda part: start(part, account_ids), _split(sessions)))
    return Seeded(
        lot_id=LOT,
        with_session=[plate("A", i) for i in range(sessions)],
        without_session=[plate("B", i) for i in range(unpaid)],
        officer_token=officer["token"],
    )


def _split(count: int) -> list[range]:
    """`range(count)` in one interleaved part per seeding thread."""
    return [range(start, count, SEED_THREADS) for start in range(SEED_THREADS)]
