"""Metro entry and exit across two gate processes, anti-passback, and a torn card recovered at the
next gate (issue 16), on the real PC/SC path.

Gate A (the entry at 2A-01, Cát Linh) and gate B (the exit at 2A-02, La Thành) are each a
`tapledger validator run --reader` process on one of vpcd's two slots, uploading to a backend
served locally; the card is `tapledger card emulate`, moved from one slot to the other (its image
file keeps its memory). A card issued to a funded account, its purse reloaded from it, pays the
dearest ride from 2A-01 at the entry; the exit takes nothing, and once the backend has paired the
two it gives the account back what the purse paid beyond the real fare (spec/CARD.md,
docs/card-format.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.services import require_pyscard, vpcd_exclusive

require_pyscard()

# These reach pyscard through hardware.pcsc, so they come after the check just above.
from hardware.emulator.vpcd_slot import VpcdSlot  # noqa: E402
from tests.e2e.gate_processes import (  # noqa: E402
    GateProcess,
    GateSetup,
    gate_process,
    taps_decided,
)
from tests.e2e.metro_backend import (  # noqa: E402
    Backend,
    CardFiles,
    account,
    funded_account,
    issued_card,
    journeys,
    metro_backend,
    purse_on,
    register_gate,
    settled,
    write_key_file,
)
from tests.e2e.vpcd_cards import card_on, card_torn_from, vpcd_slots  # noqa: E402

GATE_A, GATE_A2, GATE_B = 5101, 5102, 5201  # entry at 2A-01, its neighbour, exit at 2A-02
TOP_UP_VND = 100_000
PURSE_VND = 50_000
MAX_FROM_CAT_LINH_VND = 15_000  # what the entry gate at 2A-01 takes: the dearest ride from there
CAT_LINH_TO_LA_THANH_VND = 8_000  # the real fare of 2A-01 to 2A-02
DEAREST_TO_LA_THANH_VND = 14_000  # what the exit at 2A-02 takes from a card that shows no entry
REFUND_VND = MAX_FROM_CAT_LINH_VND - CAT_LINH_TO_LA_THANH_VND
# An entry gate's session up to its CLOSE: SELECT, OPEN, READ the last event, READ contract 1
# (the fare feed has a pass for line 2A, so the gate looks for one), DECREASE, APPEND, CLOSE.
# Torn after these, the card has paid and logged the entry; the ratifying READ never arrives.
# (The demo's bus, whose route no pass covers, reads no contract: its tear comes after 6.)
TEAR_AFTER_CLOSE = 7

# Three gate processes and a few card presentations, each start costing seconds on a busy box.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def slots() -> Iterator[tuple[VpcdSlot, VpcdSlot]]:
    with vpcd_exclusive():
        yield vpcd_slots()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    with metro_backend(tmp_path, write_key_file(tmp_path / "sam.json")) as served:
        yield served


@pytest.fixture
def setup(backend: Backend, tmp_path: Path) -> GateSetup:
    return GateSetup(backend.url, tmp_path / "sam.json", tmp_path)


@pytest.fixture
def card(backend: Backend, tmp_path: Path) -> tuple[str, CardFiles]:
    account_id = funded_account(backend, TOP_UP_VND)
    return account_id, issued_card(backend, account_id, tmp_path, PURSE_VND)


def tap(card: CardFiles, gate: GateProcess, slot: VpcdSlot) -> dict[str, object]:
    """The card held to `gate`'s reader until it decides, then taken away."""
    with card_on(card, slot):
        return gate.decision()


@contextmanager
def entry_and_exit_gates(
    backend: Backend, setup: GateSetup, slots: tuple[VpcdSlot, VpcdSlot], tmp_path: Path
) -> Iterator[tuple[GateProcess, GateProcess]]:
    """Gate A, the entry at 2A-01, on the first slot and gate B, the exit at 2A-02, on the
    second: each registered and running as a process of its own."""
    a_token = register_gate(backend, tmp_path, GATE_A, "2A-01", "entry")
    b_token = register_gate(backend, tmp_path, GATE_B, "2A-02", "exit")
    slot_a, slot_b = slots
    with (
        gate_process(setup, GATE_A, a_token, reader=slot_a.reader_name()) as gate_a,
        gate_process(setup, GATE_B, b_token, reader=slot_b.reader_name()) as gate_b,
    ):
        yield gate_a, gate_b


def decided(decision: dict[str, object]) -> tuple[object, object, object]:
    """A gate's decision as (decision, reason, charged VND)."""
    return decision["decision"], decision["reason"], decision["charged_vnd"]


def one_ended_journey(backend: Backend, account_id: str) -> dict[str, object]:
    """The account's one journey, once the backend ended it and gave the purse's excess back."""

    def ended() -> dict[str, object] | None:
        rides = journeys(backend, account_id)
        done = account(backend, account_id)["posted_vnd"] == TOP_UP_VND - PURSE_VND + REFUND_VND
        return rides[0] if len(rides) == 1 and rides[0]["status"] == "ended" and done else None

    journey: dict[str, object] = settled(backend, ended, "one ended journey, its excess refunded")
    return journey


def assert_one_ride_from_cat_linh_to_la_thanh(journey: dict[str, object]) -> None:
    legs = journey["legs"]
    assert isinstance(legs, list)
    assert [(leg["from_stop_id"], leg["to_stop_id"]) for leg in legs] == [("2A-01", "2A-02")]
    assert (journey["paid_from"], journey["fare_vnd"]) == ("card_purse", CAT_LINH_TO_LA_THANH_VND)
    assert (journey["purse_paid_vnd"], journey["purse_refunded_vnd"]) == (
        MAX_FROM_CAT_LINH_VND,
        REFUND_VND,
    )
    assert journey["charged_vnd"] == 0  # the purse paid; the account only got the excess back


def test_a_card_entering_at_one_gate_process_and_leaving_at_another_pays_its_real_fare_once(
    slots: tuple[VpcdSlot, VpcdSlot],
    backend: Backend,
    setup: GateSetup,
    card: tuple[str, CardFiles],
    tmp_path: Path,
) -> None:
    account_id, card_files = card
    slot_a, slot_b = slots
    with entry_and_exit_gates(backend, setup, slots, tmp_path) as (gate_a, gate_b):
        entry = tap(card_files, gate_a, slot_a)
        exit_ = tap(card_files, gate_b, slot_b)
        assert decided(entry) == ("accepted", "charged", MAX_FROM_CAT_LINH_VND)
        assert decided(exit_) == ("accepted", "paid_at_entry", 0)
        # Each gate uploads its tap, and the backend proves each card session with its SAM.
        assert gate_a.verdict(1)["status"] == gate_b.verdict(1)["status"] == "accepted"
    assert (taps_decided(setup, GATE_A), taps_decided(setup, GATE_B)) == (1, 1)
    assert_one_ride_from_cat_linh_to_la_thanh(one_ended_journey(backend, account_id))
    assert purse_on(card_files) == (PURSE_VND - MAX_FROM_CAT_LINH_VND, True)


def test_a_second_entry_with_no_exit_between_is_refused_as_passback_and_recorded_so(
    slots: tuple[VpcdSlot, VpcdSlot],
    backend: Backend,
    setup: GateSetup,
    card: tuple[str, CardFiles],
    tmp_path: Path,
) -> None:
    account_id, card_files = card
    slot_a, slot_b = slots
    with entry_and_exit_gates(backend, setup, slots, tmp_path) as (gate_a, gate_b):
        assert tap(card_files, gate_a, slot_a)["reason"] == "charged"
        # Handed back over the barrier to someone behind: the card shows this very entry.
        again = tap(card_files, gate_a, slot_a)
        assert (again["decision"], again["reason"], again["seq"]) == ("refused", "passback", 2)
        assert (again["charged_vnd"], purse_on(card_files)[0]) == (
            0,
            PURSE_VND - MAX_FROM_CAT_LINH_VND,
        )
        # The refusal reaches the backend and is kept with the gate's reason. The gate opened
        # no session for it (nothing was written), so there is no card proof to accept.
        assert (gate_a.verdict(2)["status"], gate_a.verdict(2)["reason"]) == (
            "refused",
            "no_card_proof",
        )
        assert backend.device_reason(GATE_A, 2) == ("passback", "refused", "no_card_proof")
        # The rider's own exit still ends the one ride the card paid for.
        assert tap(card_files, gate_b, slot_b)["reason"] == "paid_at_entry"
    assert (taps_decided(setup, GATE_A), taps_decided(setup, GATE_B)) == (2, 1)
    assert_one_ride_from_cat_linh_to_la_thanh(one_ended_journey(backend, account_id))


def test_an_exit_with_no_entry_on_the_card_is_not_refused_but_charged_the_dearest_ride_there(
    slots: tuple[VpcdSlot, VpcdSlot],
    backend: Backend,
    setup: GateSetup,
    card: tuple[str, CardFiles],
    tmp_path: Path,
) -> None:
    """docs/card-format.md: an exit gate takes the dearest ride ending there from a card that
    shows no entry, as nothing else paid for the ride; the rider is let out, not trapped."""
    account_id, card_files = card
    b_token = register_gate(backend, tmp_path, GATE_B, "2A-02", "exit")
    _, slot_b = slots
    with gate_process(setup, GATE_B, b_token, reader=slot_b.reader_name()) as gate_b:
        exit_ = tap(card_files, gate_b, slot_b)
        assert decided(exit_) == ("accepted", "charged", DEAREST_TO_LA_THANH_VND)
        assert gate_b.verdict(1)["status"] == "accepted"
    assert taps_decided(setup, GATE_B) == 1
    assert purse_on(card_files) == (PURSE_VND - DEAREST_TO_LA_THANH_VND, True)

    def exit_waiting() -> list[dict[str, Any]] | None:
        rides = journeys(backend, account_id)
        return rides if rides and rides[0]["status"] == "exit_pending" else None

    # The backend keeps the exit waiting for an entry that may still be uploaded; the purse paid
    # for the ride, and the account is not touched.
    [ride] = settled(backend, exit_waiting, "the exit waiting for its entry")
    assert [(leg["from_stop_id"], leg["to_stop_id"]) for leg in ride["legs"]] == [(None, "2A-02")]
    assert (ride["purse_paid_vnd"], ride["charged_vnd"]) == (DEAREST_TO_LA_THANH_VND, 0)
    balance = account(backend, account_id)
    assert (balance["posted_vnd"], balance["pending_vnd"]) == (TOP_UP_VND - PURSE_VND, 0)


def test_a_card_torn_at_the_entry_after_paying_is_unratified_at_the_exit_and_pays_once(
    slots: tuple[VpcdSlot, VpcdSlot],
    backend: Backend,
    setup: GateSetup,
    card: tuple[str, CardFiles],
    tmp_path: Path,
) -> None:
    """Torn from gate A's field between CLOSE and the ratifying READ: gate A heard the CLOSE
    answer, so to it the entry is paid and it lets the rider through. The next gate is the exit:
    the card comes to B unratified, its last event the entry; the exit after a torn entry is not
    a re-tap but the exit it is (spec/CARD.md, docs/card-format.md), free since the entry paid,
    and the card is ratified there. The backend books one ride at its real fare."""
    account_id, card_files = card
    slot_a, slot_b = slots
    with entry_and_exit_gates(backend, setup, slots, tmp_path) as (gate_a, gate_b):
        with card_torn_from(card_files, slot_a, tear_after=TEAR_AFTER_CLOSE):
            torn = gate_a.decision()
        assert decided(torn) == ("accepted", "charged", MAX_FROM_CAT_LINH_VND)
        assert purse_on(card_files) == (PURSE_VND - MAX_FROM_CAT_LINH_VND, False)
        exit_ = tap(card_files, gate_b, slot_b)
        assert decided(exit_) == ("accepted", "paid_at_entry", 0)
        assert gate_a.verdict(1)["status"] == gate_b.verdict(1)["status"] == "accepted"
    assert (taps_decided(setup, GATE_A), taps_decided(setup, GATE_B)) == (1, 1)
    assert_one_ride_from_cat_linh_to_la_thanh(one_ended_journey(backend, account_id))
    assert purse_on(card_files) == (PURSE_VND - MAX_FROM_CAT_LINH_VND, True)


def test_a_card_torn_after_paying_at_one_gate_is_let_through_free_at_the_next_and_pays_once(
    slots: tuple[VpcdSlot, VpcdSlot],
    backend: Backend,
    setup: GateSetup,
    card: tuple[str, CardFiles],
    tmp_path: Path,
) -> None:
    """Torn from gate A's field between CLOSE and the ratifying READ: the card paid and logged
    the entry, but the rider, who never saw the green light, taps again at the neighbouring
    entry gate A2 (its own process, on the other reader). There the card comes back
    unratified with that very recent entry: let through free, its session closed with no change
    so the card proves the entry again. Then the exit at B; the backend books one ride."""
    account_id, card_files = card
    a_token = register_gate(backend, tmp_path, GATE_A, "2A-01", "entry")
    a2_token = register_gate(backend, tmp_path, GATE_A2, "2A-01", "entry")
    b_token = register_gate(backend, tmp_path, GATE_B, "2A-02", "exit")
    slot_a, slot_b = slots
    with ExitStack() as gates:
        gate_a = gates.enter_context(
            gate_process(setup, GATE_A, a_token, reader=slot_a.reader_name())
        )
        with card_torn_from(card_files, slot_a, tear_after=TEAR_AFTER_CLOSE):
            torn = gate_a.decision()
        # Gate A heard the CLOSE answer: to it the ride is paid, the card simply left early.
        assert decided(torn) == ("accepted", "charged", MAX_FROM_CAT_LINH_VND)
        assert purse_on(card_files) == (PURSE_VND - MAX_FROM_CAT_LINH_VND, False)
        with gate_process(setup, GATE_A2, a2_token, reader=slot_b.reader_name()) as gate_a2:
            retap = tap(card_files, gate_a2, slot_b)
            assert decided(retap) == ("accepted", "retap_after_tear", 0)
            assert gate_a2.verdict(1)["status"] == "accepted"
        assert purse_on(card_files) == (PURSE_VND - MAX_FROM_CAT_LINH_VND, True)
        assert gate_a.verdict(1)["status"] == "accepted"
        with gate_process(setup, GATE_B, b_token, reader=slot_b.reader_name()) as gate_b:
            exit_ = tap(card_files, gate_b, slot_b)
            assert (exit_["reason"], exit_["charged_vnd"]) == ("paid_at_entry", 0)
            assert gate_b.verdict(1)["status"] == "accepted"
    assert [taps_decided(setup, gate) for gate in (GATE_A, GATE_A2, GATE_B)] == [1, 1, 1]
    assert_one_ride_from_cat_linh_to_la_thanh(one_ended_journey(backend, account_id))
    assert purse_on(card_files) == (PURSE_VND - MAX_FROM_CAT_LINH_VND, True)
