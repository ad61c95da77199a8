"""A phone's QR codes at two metro gate processes: what gates and backend promise (issue 16).

Gate A (the entry at 2A-01) and gate B (the exit at 2A-02) each run `tapledger validator run
--qr-stdin` against a backend served locally. A code is single-use (spec/QR.md, step 12): a gate
refuses a code it accepted itself, offline; a code first used at the other gate cannot be known
offline, so the backend refuses it when it arrives (`code_replayed`), lists it for staff, and
charges nothing for it. Unlike a card, which carries its last event and is refused a second
entry at the same gate within `PASSBACK_WINDOW_S`, a QR code carries no journey state and the
gate keeps none: a second entry on a fresh code is let through, and the backend holds the
dearest ride for that open entry on the rider's account, so the passback is paid for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.gate_processes import GateSetup, gate_process, taps_decided
from tests.e2e.metro_backend import (
    Backend,
    account,
    funded_phone,
    journeys,
    metro_backend,
    register_gate,
    settled,
    write_key_file,
)
from tests.e2e.riders import ADMIN

GATE_A, GATE_B = 5101, 5201  # entry at 2A-01, exit at 2A-02
TOP_UP_VND = 100_000
CAT_LINH_TO_LA_THANH_VND = 8_000
MAX_FROM_CAT_LINH_VND = 15_000  # what an entry at 2A-01 holds until its exit is known

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    with metro_backend(tmp_path, write_key_file(tmp_path / "sam.json")) as served:
        yield served


@pytest.fixture
def setup(backend: Backend, tmp_path: Path) -> GateSetup:
    return GateSetup(backend.url, tmp_path / "sam.json", tmp_path)


def legs_of(rides: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Every leg of the rides as (from, to), an open leg's end as "open", in order."""
    return sorted(
        (leg["from_stop_id"], leg["to_stop_id"] or "open") for ride in rides for leg in ride["legs"]
    )


def test_a_code_used_at_one_gate_is_refused_at_both_and_the_ride_on_fresh_codes_costs_its_fare(
    backend: Backend, setup: GateSetup, tmp_path: Path
) -> None:
    account_id, phone = funded_phone(backend, TOP_UP_VND)
    a_token = register_gate(backend, tmp_path, GATE_A, "2A-01", "entry")
    b_token = register_gate(backend, tmp_path, GATE_B, "2A-02", "exit")
    now = int(time.time()) - 1
    entry_code = phone.code(now, 1)
    with (
        gate_process(setup, GATE_A, a_token, qr=True) as gate_a,
        gate_process(setup, GATE_B, b_token, qr=True) as gate_b,
    ):
        assert gate_a.show(entry_code)["decision"] == "accepted"
        # A screenshot of the same code handed back: gate A remembers it, offline.
        again = gate_a.show(entry_code)
        assert (again["decision"], again["reason"], again["seq"]) == (
            "refused",
            "code_replayed",
            2,
        )
        assert gate_a.verdict(1)["status"] == "accepted"
        assert (gate_a.verdict(2)["status"], gate_a.verdict(2)["reason"]) == (
            "refused",
            "code_replayed",
        )
        # Gate B never saw it: offline it cannot know. The backend knows the first use (the
        # first to reach it: hence the wait above for gate A's upload).
        elsewhere = gate_b.show(entry_code)
        assert (elsewhere["decision"], elsewhere["seq"]) == ("accepted", 1)
        assert gate_b.show(phone.code(int(time.time()) - 1, 2))["decision"] == "accepted"
        assert (gate_b.verdict(1)["status"], gate_b.verdict(1)["reason"]) == (
            "refused",
            "code_replayed",
        )
        assert gate_b.verdict(2)["status"] == "accepted"
    assert (taps_decided(setup, GATE_A), taps_decided(setup, GATE_B)) == (2, 2)
    # Staff see the one tap the device let through and the backend refused.
    disagreements = backend.client.get("/v1/taps/disagreements", headers=ADMIN).json()
    assert [(d["validator_id"], d["seq"], d["kind"]) for d in disagreements] == [
        (GATE_B, 1, "let_through_unverified")
    ]

    def ended() -> list[dict[str, Any]] | None:
        rides = journeys(backend, account_id)
        return rides if rides and all(r["status"] == "ended" for r in rides) else None

    rides = settled(backend, ended, "the ride on fresh codes ended")
    assert legs_of(rides) == [("2A-01", "2A-02")]
    assert [(r["paid_from"], r["fare_vnd"], r["charged_vnd"]) for r in rides] == [
        ("account", CAT_LINH_TO_LA_THANH_VND, CAT_LINH_TO_LA_THANH_VND)
    ]
    balance = account(backend, account_id)
    assert (balance["posted_vnd"], balance["pending_vnd"]) == (
        TOP_UP_VND - CAT_LINH_TO_LA_THANH_VND,
        0,
    )


def test_a_second_entry_on_a_fresh_code_is_let_through_and_its_open_ride_holds_the_dearest_fare(
    backend: Backend, setup: GateSetup, tmp_path: Path
) -> None:
    account_id, phone = funded_phone(backend, TOP_UP_VND)
    a_token = register_gate(backend, tmp_path, GATE_A, "2A-01", "entry")
    b_token = register_gate(backend, tmp_path, GATE_B, "2A-02", "exit")
    with (
        gate_process(setup, GATE_A, a_token, qr=True) as gate_a,
        gate_process(setup, GATE_B, b_token, qr=True) as gate_b,
    ):
        first = gate_a.show(phone.code(int(time.time()) - 1, 1))
        # The phone passed back over the barrier shows a new code: no gate state refuses it.
        second = gate_a.show(phone.code(int(time.time()) - 1, 2))
        assert [(d["decision"], d["reason"]) for d in (first, second)] == [
            ("accepted", "accepted")
        ] * 2
        assert gate_b.show(phone.code(int(time.time()) - 1, 3))["decision"] == "accepted"
        assert {gate_a.verdict(1)["status"], gate_a.verdict(2)["status"]} == {"accepted"}
        assert gate_b.verdict(1)["status"] == "accepted"

    def exit_paired() -> dict[str, Any] | None:
        rides = journeys(backend, account_id)
        balance = account(backend, account_id)
        paired = legs_of(rides) == [("2A-01", "2A-02"), ("2A-01", "open")]
        return balance if paired and balance["posted_vnd"] < TOP_UP_VND else None

    # One exit ends one ride at its real fare; the other entry stays open, holding the most a
    # ride from 2A-01 costs, until its exit comes or the service day's close charges it.
    balance = settled(backend, exit_paired, "the exit paired with one of the two entries")
    assert (balance["posted_vnd"], balance["pending_vnd"]) == (
        TOP_UP_VND - CAT_LINH_TO_LA_THANH_VND,
        MAX_FROM_CAT_LINH_VND,
    )
