"""The gate's decision counts: a tap the device refused is recorded but never charged nor paired.

The device decides at the gate, offline; the backend re-verifies the medium later. A rider goes
through only when the device accepted, and pays only when the backend verified the medium too.
Either disagreeing with the other is listed for staff (`TapViews.disagreements`).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    DAY,
    GATE_IN_01,
    GATE_IN_09,
    GATE_OUT_12,
    START,
    World,
    build,
)
from tests.tap_media import CARD_SERIAL, Phone, bus_ride, personalised_card
from ticketing.taps.adapters.tap_views import TapFollower, TapViews
from ticketing.taps.application.ingestion import CardTap, QrTap, TapResult

CAT_LINH_TO_YEN_NGHIA_VND = 15_000
HA_DONG_TO_YEN_NGHIA_VND = 8_000


@pytest.fixture
def world() -> World:
    return build()


def gate_tap(
    world: World,
    phone: Phone,
    validator_id: int,
    after_min: float,
    *,
    decision: str,
    reason: str,
    code: str | None = None,
) -> tuple[TapResult, str]:
    """A tap with the device's own decision; returns the backend's answer and the code shown."""
    at = START + timedelta(minutes=after_min)
    world.clock.now = at
    world.seq += 1
    world.counter += 1
    code = code or phone.code(int(at.timestamp()) - 2, world.counter)
    [result] = world.taps.ingest_batch(validator_id, [QrTap(world.seq, at, decision, reason, code)])
    return result, code


def test_a_metro_entry_the_gate_refused_holds_nothing_and_opens_no_journey(world: World) -> None:
    account_id, phone = world.rider()
    result, _ = gate_tap(
        world, phone, GATE_IN_01, 0, decision="refused", reason="insufficient_balance"
    )
    assert result.status == "accepted"  # the backend verified the code: only the gate refused
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    assert world.views.for_account(account_id) == []


def test_a_rider_refused_at_one_gate_and_accepted_at_the_next_is_held_once(world: World) -> None:
    # The refused sighting used its code up; the phone shows the next gate a fresh one.
    account_id, phone = world.rider()
    gate_tap(world, phone, GATE_IN_01, 0, decision="refused", reason="gate_fault")
    second, _ = gate_tap(world, phone, GATE_IN_01, 0.2, decision="accepted", reason="accepted")
    assert second.status == "accepted"
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, CAT_LINH_TO_YEN_NGHIA_VND)
    world.tap(phone, GATE_OUT_12, 30)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - CAT_LINH_TO_YEN_NGHIA_VND, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd) == ("ended", CAT_LINH_TO_YEN_NGHIA_VND)
    # Nothing is left open for the day-end close to charge the maximum fare.
    assert world.journeys.close_service_day(DAY) == 0


def test_a_refused_exit_does_not_end_the_ride_the_accepted_exit_does(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_09, 0)
    # Yên Nghĩa's first gate refused the rider (a jammed reader); the next one let them out.
    gate_tap(world, phone, GATE_OUT_12, 20, decision="refused", reason="gate_fault")
    world.tap(phone, GATE_OUT_12, 21)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - HA_DONG_TO_YEN_NGHIA_VND, 0)
    [row] = world.views.for_account(account_id)
    assert row.status == "ended"
    [leg] = row.legs
    assert leg["arrival"] == (START + timedelta(minutes=21)).isoformat()


def test_a_bus_boarding_the_validator_refused_is_no_boarding(world: World) -> None:
    account_id, phone = world.rider()
    gate_tap(world, phone, BUS_01, 0, decision="refused", reason="insufficient_balance")
    world.follow()
    assert world.views.for_account(account_id) == []
    assert world.balance(account_id) == (BALANCE_VND, 0)


def test_a_tap_the_gate_accepted_but_the_backend_refused_stays_uncharged(world: World) -> None:
    account_id, phone = world.rider()
    _, code = gate_tap(world, phone, GATE_IN_01, 0, decision="accepted", reason="accepted")
    # A second gate, offline, let the same code through again: the backend refuses the replay.
    replay, _ = gate_tap(
        world, phone, GATE_IN_09, 0.2, decision="accepted", reason="accepted", code=code
    )
    assert (replay.status, replay.reason) == ("refused", "code_replayed")
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, CAT_LINH_TO_YEN_NGHIA_VND)
    [row] = world.views.for_account(account_id)
    assert [leg["from_stop_id"] for leg in row.legs] == ["2A-01"]


def tap_views(world: World) -> TapViews:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    follower = TapFollower(world.taps, engine)
    follower.create_tables()
    follower.catch_up()
    return TapViews(engine)


def test_staff_see_each_tap_the_device_and_the_backend_decided_differently(world: World) -> None:
    _, phone = world.rider()
    gate_tap(world, phone, GATE_IN_01, 0, decision="refused", reason="gate_fault")
    _, code = gate_tap(world, phone, GATE_IN_01, 0.1, decision="accepted", reason="accepted")
    gate_tap(world, phone, GATE_IN_09, 0.2, decision="accepted", reason="accepted", code=code)
    gate_tap(world, phone, BUS_01, 1, decision="refused", reason="code_malformed", code="TL1:x")
    views = tap_views(world)
    let_through, turned_away = views.disagreements()
    assert (let_through.validator_id, let_through.seq, let_through.kind) == (
        GATE_IN_09,
        3,
        "let_through_unverified",
    )
    assert let_through.refusal_reason == "code_replayed"
    assert (turned_away.validator_id, turned_away.seq, turned_away.kind) == (
        GATE_IN_01,
        1,
        "turned_away_verified",
    )
    assert (turned_away.device_reason, turned_away.refusal_reason) == ("gate_fault", None)
    assert views.disagreements(validator_id=GATE_IN_09) == [let_through]


def test_taps_both_sides_accepted_or_both_refused_are_not_listed_for_review(world: World) -> None:
    _, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    gate_tap(world, phone, BUS_01, 1, decision="refused", reason="code_malformed", code="TL1:x")
    views = tap_views(world)
    assert views.disagreements() == []
    assert views.disagreements(validator_id=GATE_IN_01) == []


def test_a_card_whose_mac_fails_is_listed_as_a_suspected_clone(world: World) -> None:
    # A card with a genuine serial and other keys: the validator's SAM rejects its MAC, refuses
    # the tap and uploads the card's answer; the backend rejects it too. Both sides agree, and
    # staff must still see it.
    account_id, _ = world.rider()
    world.journeys.smart_cards.issue(account_id, serial=CARD_SERIAL.hex())
    card = personalised_card(account_id)
    proof = bus_ride(card, at=int(START.timestamp()), validator=BUS_01)
    cloned = dataclasses.replace(proof, card_mac=bytes(len(proof.card_mac)))
    world.clock.now = START
    world.seq += 1
    upload = CardTap(world.seq, START, "refused", "card_not_genuine", CARD_SERIAL.hex(), cloned)
    [result] = world.taps.ingest_batch(BUS_01, [upload])
    assert (result.status, result.reason) == ("refused", "bad_card_mac")
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    [flagged] = tap_views(world).disagreements()
    assert (flagged.kind, flagged.device_reason, flagged.refusal_reason) == (
        "suspected_clone",
        "card_not_genuine",
        "bad_card_mac",
    )
