"""The online check judges a tap at the server's clock; a batch judges each tap at its own time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hardware.sam import SoftwareSam
from tests.builders.taps import (
    BUS_17,
    START,
    World,
    build,
    card_tap,
    issue_smart_card,
    recorded_taps,
    unix,
)
from tests.tap_media import MASTER_KEYS, bus_ride, personalised_card
from ticketing.taps.application.ingestion import DEVICE_CLOCK_SKEW_S_MAX, QrTap
from ticketing.taps.domain.tap import DEVICE_CLOCK_SKEWED, qr_code_use_id, tap_id

HOUR = timedelta(hours=1)


@pytest.fixture
def world() -> World:
    return build(sam=SoftwareSam(MASTER_KEYS))


def made_at(world: World, offset: timedelta, counter: int) -> QrTap:
    """A tap stamped `offset` from the server's clock, with a code the phone made then."""
    at = START + offset
    return QrTap(counter, at, "accepted", "accepted", world.phone.code(unix(at) - 1, counter))


def test_an_online_tap_an_hour_ahead_is_refused_as_skewed_and_recorded(world: World) -> None:
    result = world.taps.ingest_one(BUS_17, made_at(world, HOUR, 1))
    assert (result.status.value, result.reason) == ("refused", DEVICE_CLOCK_SKEWED)
    (event,) = recorded_taps(world.taps)
    assert (event.verification, event.refusal_reason) == ("refused", DEVICE_CLOCK_SKEWED)
    assert event.tapped_at == START + HOUR  # the device's clock, kept as it said
    # The code is genuine: this sighting used it up, so it cannot be sent again at its time.
    assert result.code_consumed
    use = qr_code_use_id(world.card_id, unix(START + HOUR) - 1, 1)
    assert world.taps.claimed_by(use) == tap_id(BUS_17, 1)


def test_an_online_tap_an_hour_behind_is_refused_as_skewed(world: World) -> None:
    result = world.taps.ingest_one(BUS_17, made_at(world, -HOUR, 2))
    assert (result.status.value, result.reason) == ("refused", DEVICE_CLOCK_SKEWED)


@pytest.mark.parametrize("offset_s", [DEVICE_CLOCK_SKEW_S_MAX, -DEVICE_CLOCK_SKEW_S_MAX])
def test_an_online_tap_within_the_skew_is_accepted(world: World, offset_s: int) -> None:
    # The gate's clock is off by the skew; the phone's is right (corrected at issue).
    code = world.phone.code(unix(START) - 1, 3)
    tap = QrTap(3, START + timedelta(seconds=offset_s), "accepted", "accepted", code)
    assert world.taps.ingest_one(BUS_17, tap).status.value == "accepted"


def test_an_online_tap_is_judged_at_the_servers_clock_not_the_devices(world: World) -> None:
    # Stamped within the skew, but its code is 35 s ahead of the server: from the future there.
    at = START + timedelta(seconds=DEVICE_CLOCK_SKEW_S_MAX)
    code = world.phone.code(unix(at) + 5, 4)
    result = world.taps.ingest_one(BUS_17, QrTap(4, at, "accepted", "accepted", code))
    assert (result.status.value, result.reason) == ("refused", "code_from_future")


def test_an_online_card_tap_beyond_the_skew_is_refused(world: World) -> None:
    issue_smart_card(world)
    at = START + HOUR
    proof = bus_ride(personalised_card(world.account_id), at=unix(at), validator=BUS_17)
    result = world.taps.ingest_one(BUS_17, card_tap(5, proof, at=at))
    assert (result.status.value, result.reason) == ("refused", DEVICE_CLOCK_SKEWED)
    assert result.code_consumed  # the session is genuine: it cannot be sent again


def test_a_batched_tap_uploaded_an_hour_late_is_judged_at_its_own_time(world: World) -> None:
    tap = made_at(world, timedelta(0), 6)
    world.clock.now = START + HOUR
    (result,) = world.taps.ingest_batch(BUS_17, [tap])
    assert (result.status.value, result.reason) == ("accepted", None)


def test_a_batched_tap_stamped_after_its_upload_is_refused_as_skewed(world: World) -> None:
    taps = [made_at(world, HOUR, 7), made_at(world, timedelta(0), 8)]
    results = world.taps.ingest_batch(BUS_17, taps)
    assert [(r.status.value, r.reason) for r in results] == [
        ("refused", DEVICE_CLOCK_SKEWED),
        ("accepted", None),
    ]
