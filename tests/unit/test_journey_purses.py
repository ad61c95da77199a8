"""The journey follower records the purses of a section's card taps together: per card the newest
session (the lowest transaction counter), in one save of the card store, after the section's
ledger batch committed; never twice, never an older over a newer, nothing from a section the
ledger refused; and a top-up saved on the same card meanwhile costs neither purse nor follower."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from hardware.emulator.card import EmulatedCard
from hardware.tlc1.terminal import SessionProof
from tests.builders.card_purses import (
    CARD_FARE_VND,
    PURSE_VND,
    card_tap,
    purse_events,
    unix,
)
from tests.builders.journeys import (
    BUS_01,
    World,
    build,
    count_calls,
    penniless_rider,
)
from tests.tap_media import CARD_SERIAL, bus_ride, personalised_card
from ticketing.cards.application.card_purses import SectionPurses
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.journeys.application.purses import PurseRecorder

CARDS = 3
RIDES_PER_CARD = 4
RELOAD_VND = 20_000


class Crash(Exception):
    """The process dies between the ledger's commit and the section's tracking save."""


@pytest.fixture
def world() -> World:
    return build()


def serial_of(index: int) -> bytes:
    return (int.from_bytes(CARD_SERIAL, "big") + index).to_bytes(len(CARD_SERIAL), "big")


def riders_with_cards(world: World, count: int) -> list[EmulatedCard]:
    cards = []
    for index in range(count):
        account_id, _ = world.rider()
        serial = serial_of(index)
        world.journeys.smart_cards.issue(account_id, serial=serial.hex())
        cards.append(personalised_card(account_id, purse_vnd=PURSE_VND, serial=serial))
    return cards


def recorded(world: World, card: EmulatedCard) -> tuple[int, int | None]:
    record = world.journeys.smart_cards.get(card.image.serial.hex())
    return record.purse_vnd, record.transaction_counter


def count_card_saves(world: World, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many cards each save of the card store carried."""
    save = world.cards.save
    saves: list[int] = []

    def counted(*aggregates: Any, **kwargs: Any) -> Any:
        saves.append(len(aggregates))
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(world.cards, "save", counted)
    return saves


def ride_every_card(world: World, cards: list[EmulatedCard], rides: int) -> list[SessionProof]:
    """Each card rides `rides` times; the last proofs come last in the log."""
    proofs = []
    for ride in range(rides):
        for card in cards:
            minutes = 10 * ride
            proof = bus_ride(card, at=unix(minutes), validator=BUS_01)
            card_tap(world, proof, minutes)
            proofs.append(proof)
    return proofs


def test_a_section_of_many_card_taps_records_each_card_s_newest_purse_once_in_one_save(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cards = riders_with_cards(world, CARDS)
    proofs = ride_every_card(world, cards, RIDES_PER_CARD)
    saves = count_card_saves(world, monkeypatch)
    assert world.journeys.catch_up() == CARDS * RIDES_PER_CARD
    assert saves == [CARDS]
    newest = proofs[-CARDS:]
    for card, proof in zip(cards, newest, strict=True):
        assert recorded(world, card) == (PURSE_VND - RIDES_PER_CARD * CARD_FARE_VND, proof.counter)
        assert purse_events(world, card.image.serial.hex()) == 1


def test_an_older_session_after_a_newer_one_in_the_same_section_records_nothing(
    world: World,
) -> None:
    [card] = riders_with_cards(world, 1)
    first = bus_ride(card, at=unix(0), validator=BUS_01)
    second = bus_ride(card, at=unix(10), validator=BUS_01)
    card_tap(world, second, 10)
    card_tap(world, first, 11)  # uploaded late by a validator that was offline
    world.follow()
    assert recorded(world, card) == (PURSE_VND - 2 * CARD_FARE_VND, second.counter)
    assert purse_events(world) == 1


def test_a_section_applied_again_after_a_crash_records_no_purse_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cards = riders_with_cards(world, CARDS)
    ride_every_card(world, cards, 2)
    record = world.journeys._record
    crashes = [1]

    def crash_once(processing: Any) -> Any:
        if crashes:
            crashes.pop()
            raise Crash
        return record(processing)

    monkeypatch.setattr(world.journeys, "_record", crash_once)
    with pytest.raises(Crash):
        world.journeys.catch_up()
    assert world.journeys.position() == 0
    # The purses were recorded before the tracking save that crashed.
    recorded_before = [recorded(world, card) for card in cards]
    saves = count_card_saves(world, monkeypatch)
    assert world.journeys.catch_up() == 2 * CARDS
    assert saves == []
    assert [recorded(world, card) for card in cards] == recorded_before
    for card in cards:
        assert purse_events(world, card.image.serial.hex()) == 1


def test_the_purses_of_a_section_the_ledger_refused_are_not_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    [card] = riders_with_cards(world, 1)
    _, poor_phone = penniless_rider(world)
    world.tap(poor_phone, BUS_01, 0)
    world.tap(poor_phone, BUS_01, 20)  # the debit the ledger refuses: no money, no overdraft
    card_tap(world, bus_ride(card, at=unix(21), validator=BUS_01), 21)
    card_tap(world, bus_ride(card, at=unix(31), validator=BUS_01), 31)

    def crash_alone(*_: Any) -> int:
        raise Crash

    # The section from the refused tap on is thrown away; the follower then stops.
    monkeypatch.setattr(world.journeys, "_apply_alone", crash_alone)
    with pytest.raises(Crash):
        world.journeys.catch_up()
    assert purse_events(world) == 0
    monkeypatch.undo()
    world.follow()
    assert recorded(world, card) == (PURSE_VND - 2 * CARD_FARE_VND, card.image.transaction_counter)
    assert purse_events(world) == 1


def test_a_tap_the_ledger_refused_applied_alone_still_records_its_purse(world: World) -> None:
    [card] = riders_with_cards(world, 1)
    _, poor_phone = penniless_rider(world)
    world.tap(poor_phone, BUS_01, 0)
    card_tap(world, bus_ride(card, at=unix(1), validator=BUS_01), 1)
    world.tap(poor_phone, BUS_01, 20)  # refused, so applied alone
    proof = bus_ride(card, at=unix(21), validator=BUS_01)
    card_tap(world, proof, 21)
    world.follow()
    assert recorded(world, card) == (PURSE_VND - 2 * CARD_FARE_VND, proof.counter)
    assert purse_events(world) == 2  # the section before the refusal, and the one after


def test_a_top_up_saved_on_the_card_while_the_purses_are_recorded_loses_neither(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    [card] = riders_with_cards(world, 1)
    serial = card.image.serial.hex()
    card_tap(world, bus_ride(card, at=unix(0), validator=BUS_01), 0)
    world.follow()  # the follower now remembers the card
    proof = bus_ride(card, at=unix(30), validator=BUS_01)
    card_tap(world, proof, 30)
    recorder = world.journeys.purses
    see_all = recorder._see_all
    smart_cards = world.journeys.smart_cards

    def see_then_top_up(observations: Any) -> list[SmartCard]:
        changed = see_all(observations)
        # A desk starts a reload on the same card before the follower saves it.
        smart_cards.start_reload(
            serial,
            reload_id="desk-1",
            amount_vnd=RELOAD_VND,
            purse_before_vnd=PURSE_VND - 2 * CARD_FARE_VND,
        )
        return changed

    monkeypatch.setattr(recorder, "_see_all", see_then_top_up)
    alone = count_calls(recorder, "_record_each", monkeypatch)
    world.follow()
    assert world.journeys.lag() == 0
    assert recorded(world, card) == (PURSE_VND - 2 * CARD_FARE_VND, proof.counter)
    assert alone == [1]  # the one save failed; the card was recorded on its own
    assert "desk-1" in smart_cards.get(serial).open_reloads
    assert purse_events(world) == 2


def test_a_purse_of_a_card_the_backend_does_not_know_is_only_a_warning(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    [card] = riders_with_cards(world, 1)
    proof = bus_ride(card, at=unix(0), validator=BUS_01)
    purses = SectionPurses()
    purses.see(recorded_tap(serial_of(7).hex(), proof.transcript.hex(), proof.counter))
    with caplog.at_level(logging.WARNING):
        assert PurseRecorder(world.journeys.smart_cards).record(purses) == 0
    assert "no such card" in caplog.text


@pytest.mark.parametrize("transcript_hex", ["0f", "not hex", ""])
def test_an_unreadable_transcript_is_only_a_warning(
    transcript_hex: str, caplog: pytest.LogCaptureFixture
) -> None:
    purses = SectionPurses()
    with caplog.at_level(logging.WARNING):
        purses.see(recorded_tap(CARD_SERIAL.hex(), transcript_hex, 1))
    assert len(purses) == 0
    assert "unreadable transcript" in caplog.text


def recorded_tap(serial: str, transcript_hex: str, counter: int) -> SimpleNamespace:
    """The fields of a `Tap.Recorded` event the purse is read from."""
    return SimpleNamespace(
        medium="card",
        verification="accepted",
        validator_id=BUS_01,
        seq=1,
        serial=serial,
        transcript=transcript_hex,
        transaction_counter=counter,
    )


def test_a_card_s_account_is_read_once_however_many_times_the_card_taps(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A card is issued to one account for good (a replacement is a new serial, registered to
    the same account), so the follower reads which account a serial pays from only once."""
    [card] = riders_with_cards(world, 1)
    reads = count_calls(world.journeys.smart_cards, "get", monkeypatch)
    ride_every_card(world, [card], RIDES_PER_CARD)
    world.follow()
    assert reads == [1]
    assert purse_events(world) == 1
