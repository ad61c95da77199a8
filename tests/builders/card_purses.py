"""Smart cards with a purse, tapped on the journeys world."""

from __future__ import annotations

from datetime import timedelta

from hardware.tlc1.terminal import SessionProof
from tests.builders.journeys import BUS_01, START, World
from tests.tap_media import CARD_SERIAL
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.taps.application.ingestion import CardTap

PURSE_VND = 50_000


CARD_FARE_VND = 8_000  # tests.tap_media's bus validator charges this on the card


def unix(minutes: int) -> int:
    return int(START.timestamp()) + 60 * minutes


def card_tap(world: World, proof: SessionProof, minutes: int) -> None:
    world.seq += 1
    world.clock.now = START + timedelta(minutes=minutes)
    upload = CardTap(world.seq, world.clock.now, "accepted", "charged", proof.serial.hex(), proof)
    [result] = world.taps.ingest_batch(BUS_01, [upload])
    assert result.status == "accepted", result


def purse_events(world: World, serial: str = CARD_SERIAL.hex()) -> int:
    stored = world.cards.recorder.select_events(SmartCard.create_id(serial))
    return sum(1 for e in stored if e.topic == SmartCard.PurseSeen.TOPIC)
