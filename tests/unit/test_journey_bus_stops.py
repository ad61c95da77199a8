"""A bus validator names the stop it is at with each tap (issue 16): the leg starts there, not
at the stop the validator was registered at. A stop the fare feed does not know, or a stop named
by a metro gate, leaves the registration's stop; the tap keeps what the device said either way."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from tests.builders.journeys import BUS_01, GATE_IN_01, START, World, build
from tests.tap_media import Phone
from ticketing.taps.application.ingestion import QrTap
from ticketing.taps.domain.tap import STOP_ID_MAX_CHARS, InvalidTap

REGISTERED_STOP = "bus-kim-ma"  # BUS_01's registration (tests.builders.journeys)
GATE_IN_01_STOP = "2A-01"


@pytest.fixture
def world() -> World:
    return build()


def tap_saying(
    world: World, phone: Phone, validator_id: int, after_min: float, stop: str | None
) -> None:
    at = START + timedelta(minutes=after_min)
    world.clock.now = at
    world.seq += 1
    world.counter += 1
    code = phone.code(int(at.timestamp()) - 2, world.counter)
    upload = QrTap(world.seq, at, "accepted", "accepted", code, stop_id=stop)
    [result] = world.taps.ingest_batch(validator_id, [upload])
    assert result.status == "accepted", result


def legs(world: World, account_id: UUID) -> list[tuple[str | None, str | None]]:
    world.follow()
    return [
        (leg.from_stop_id, leg.to_stop_id) for j in world.journeys_of(account_id) for leg in j.legs
    ]


def test_a_bus_ride_goes_from_the_stop_the_validator_said_at_boarding_to_the_one_at_alighting(
    world: World,
) -> None:
    account_id, phone = world.rider()
    tap_saying(world, phone, BUS_01, 0, "bus-cau-giay")
    tap_saying(world, phone, BUS_01, 30, "bus-nhon")  # the same bus, tapped again on leaving
    assert legs(world, account_id) == [("bus-cau-giay", "bus-nhon")]


def test_a_bus_tap_naming_no_stop_starts_at_the_registered_stop(world: World) -> None:
    account_id, phone = world.rider()
    tap_saying(world, phone, BUS_01, 0, None)
    assert legs(world, account_id) == [(REGISTERED_STOP, None)]


def test_a_stop_the_fare_feed_does_not_know_leaves_the_registered_stop_and_is_kept_on_the_tap(
    world: World,
) -> None:
    account_id, phone = world.rider()
    tap_saying(world, phone, BUS_01, 0, "no-such-stop")
    assert legs(world, account_id) == [(REGISTERED_STOP, None)]
    recorded = world.taps.get_tap(BUS_01, world.seq)
    assert recorded is not None
    [event] = world.taps.repository.event_store.get(recorded.id)
    assert event.stop_id == "no-such-stop"  # type: ignore[attr-defined]


def test_a_metro_gate_stands_at_its_registered_station_whatever_it_says(world: World) -> None:
    account_id, phone = world.rider()
    tap_saying(world, phone, GATE_IN_01, 0, "2A-05")
    assert legs(world, account_id) == [(GATE_IN_01_STOP, None)]


@pytest.mark.parametrize("stop", ["", "bus kim ma", "x" * (STOP_ID_MAX_CHARS + 1), "bến-xe"])
def test_a_stop_id_that_is_no_fare_feed_id_is_refused_before_anything_is_recorded(
    world: World, stop: str
) -> None:
    _, phone = world.rider()
    with pytest.raises(InvalidTap, match="stop_id"):
        tap_saying(world, phone, BUS_01, 0, stop)
    assert world.taps.get_tap(BUS_01, world.seq) is None
