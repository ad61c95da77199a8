"""The purse a verified card tap left: read from the session transcript, recorded once."""

from __future__ import annotations

import pytest

from hardware.emulator.card import EmulatedCard
from hardware.tlc1.transcript import TranscriptError, parse_transcript
from tests.builders.card_purses import (
    CARD_FARE_VND,
    PURSE_VND,
    card_tap,
    purse_events,
    unix,
)
from tests.builders.journeys import BUS_01, World, build
from tests.tap_media import CARD_SERIAL, bus_ride, personalised_card
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.cards.domain.smart_card import SmartCard

OPEN_DATA = bytes(8) + (997).to_bytes(3, "big") + b"\x01"
READ_PURSE = bytes.fromhex("00b201cc00")  # READ RECORD 1 of SFI 0x19 (the purse)
OK = bytes.fromhex("9000")


# The transcript


def test_the_purse_after_a_validation_is_the_value_its_decrease_answered() -> None:
    card = personalised_card(SmartCard.create_id(CARD_SERIAL.hex()), purse_vnd=PURSE_VND)
    proof = bus_ride(card, at=unix(0), validator=BUS_01)
    transcript = parse_transcript(proof.transcript)
    assert transcript.transaction_counter == proof.counter
    assert transcript.purse_after_vnd == PURSE_VND - CARD_FARE_VND
    assert [hex(e.ins) for e in transcript.exchanges] == ["0xb2", "0x30", "0xe2"]


def test_a_session_that_read_the_purse_shows_it_and_one_with_an_open_record_parses() -> None:
    record = (42_000).to_bytes(3, "big") + bytes(26)
    environment = b"\x01" + bytes(28)  # OPEN read a record into its answer
    raw = OPEN_DATA + environment + READ_PURSE + record + OK
    transcript = parse_transcript(raw)
    assert (transcript.ratified, transcript.purse_after_vnd) == (False, 42_000)


def test_a_session_that_never_showed_the_purse_tells_no_purse() -> None:
    read_event_log = bytes.fromhex("00b2014400") + bytes(29) + OK
    assert parse_transcript(OPEN_DATA + read_event_log).purse_after_vnd is None


def test_a_refused_decrease_shows_no_purse() -> None:
    refused = bytes.fromhex("003001c803001f4000") + bytes.fromhex("6985")
    transcript = parse_transcript(OPEN_DATA + refused)
    assert transcript.exchanges[0].sw == 0x6985
    assert transcript.purse_after_vnd is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        OPEN_DATA[:-1],
        OPEN_DATA + bytes.fromhex("00b2"),
        OPEN_DATA + bytes.fromhex("80b201cc00") + bytes(29) + OK,  # not CLA 00
        OPEN_DATA + bytes.fromhex("00a4040005") + OK,  # SELECT is never in a session
        OPEN_DATA + READ_PURSE + bytes(10),
    ],
)
def test_bytes_that_are_no_transcript_are_refused(raw: bytes) -> None:
    with pytest.raises(TranscriptError):
        parse_transcript(raw)


# Recorded by the journey follower


@pytest.fixture
def world() -> World:
    return build()


def rider_with_card(world: World) -> tuple[SmartCards, EmulatedCard]:
    account_id, _ = world.rider()
    smart_cards = world.journeys.smart_cards
    smart_cards.issue(account_id, serial=CARD_SERIAL.hex())
    return smart_cards, personalised_card(account_id, purse_vnd=PURSE_VND)


def test_a_verified_card_tap_records_the_purse_its_session_left(world: World) -> None:
    smart_cards, card = rider_with_card(world)
    card_tap(world, bus_ride(card, at=unix(0), validator=BUS_01), 0)
    world.follow()
    recorded = smart_cards.get(CARD_SERIAL.hex())
    assert (recorded.purse_vnd, recorded.transaction_counter) == (PURSE_VND - CARD_FARE_VND, 997)


def test_a_card_tap_applied_again_records_nothing_more_and_does_not_fail(world: World) -> None:
    _, card = rider_with_card(world)
    card_tap(world, bus_ride(card, at=unix(0), validator=BUS_01), 0)
    world.follow()
    assert world.follow_again() == 1
    assert purse_events(world) == 1


def test_an_older_session_uploaded_late_does_not_overwrite_a_newer_purse(world: World) -> None:
    smart_cards, card = rider_with_card(world)
    first = bus_ride(card, at=unix(0), validator=BUS_01)
    second = bus_ride(card, at=unix(30), validator=BUS_01)
    card_tap(world, second, 30)
    world.follow()
    card_tap(world, first, 31)  # the first validator's outbox drains later
    world.follow()
    recorded = smart_cards.get(CARD_SERIAL.hex())
    assert (recorded.purse_vnd, recorded.transaction_counter) == (
        PURSE_VND - 2 * CARD_FARE_VND,
        second.counter,
    )
    assert purse_events(world) == 1
