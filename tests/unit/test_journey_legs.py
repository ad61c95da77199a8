"""A journey's legs are `Leg` objects with timezone-aware times, compared as instants, while the
journey's events keep the stored form every release has written (times as ISO strings)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from ticketing.journeys.application.order import paired_in_time_order, transfer_between
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import PaidFrom
from ticketing.journeys.domain.leg import Leg, LegEnd
from ticketing.shared.domain.invariants import InvariantViolated

HANOI = timezone(timedelta(hours=7))
BOARDED = datetime(2026, 11, 23, 8, 0, tzinfo=HANOI)  # 01:00 UTC
TRANSFER_WINDOW_S = 3600


def bus_leg(*, at: datetime = BOARDED, alighted: datetime | None = None) -> Leg:
    return Leg(
        mode="bus",
        network_id="hanoi-bus",
        route_id="01",
        from_stop_id="bus-kim-ma",
        to_stop_id=None if alighted is None else "bus-my-dinh",
        departure=at,
        arrival=alighted,
        entry_tap=str(uuid4()),
        exit_tap=None if alighted is None else str(uuid4()),
    )


def started(leg: Leg) -> Journey:
    return Journey.start(
        first_tap_id=uuid4(),
        account_id=uuid4(),
        paid_from=PaidFrom.ACCOUNT,
        rider_category="regular",
        fare_media="mobile_app",
        service_day="2026-11-23",
        leg=leg,
        at=BOARDED,
    )


def test_a_leg_round_trips_through_its_stored_form() -> None:
    leg = bus_leg(alighted=BOARDED + timedelta(minutes=25))
    stored = leg.stored()
    assert stored["departure"] == "2026-11-23T08:00:00+07:00"
    assert stored["arrival"] == "2026-11-23T08:25:00+07:00"
    assert stored["to_stop_id"] == "bus-my-dinh"
    assert Leg.from_stored(stored) == leg


def test_a_journeys_events_keep_legs_in_the_stored_form_of_earlier_releases() -> None:
    leg = bus_leg()
    journey = started(leg)
    (event,) = journey.collect_events()
    assert isinstance(event, Journey.Started)
    assert event.leg == leg.stored()
    assert journey.legs == [leg]


def test_a_journeys_snapshot_keeps_its_legs_stored_and_restores_them_as_legs() -> None:
    leg = bus_leg(alighted=BOARDED + timedelta(minutes=25))
    journey = started(leg)
    snapshot = Journey.Snapshot.take(journey)
    assert snapshot.state["legs"] == [leg.stored()]
    restored = snapshot.mutate(None)
    assert isinstance(restored, Journey)
    assert restored.legs == [leg]
    assert journey.legs == [leg]  # taking the snapshot left the journey as it was


def test_the_same_instant_written_with_different_utc_offsets_is_the_same_time() -> None:
    in_utc = BOARDED.astimezone(UTC)
    leg = bus_leg()
    assert replace(leg, departure=in_utc) == leg
    assert in_utc.isoformat() != BOARDED.isoformat()  # as strings they were two times
    # ISO strings compare characters, and put 08:00+07:00 after 01:30+00:00, which is later.
    later_in_utc = in_utc + timedelta(minutes=30)
    assert BOARDED.isoformat() > later_in_utc.isoformat()
    assert LegEnd(BOARDED, "a", "s") < LegEnd(later_in_utc, "b", "t")


def test_taps_paired_again_take_the_order_they_happened_whatever_their_utc_offsets() -> None:
    # The boarding was written in Hanoi time, the late alighting in UTC, 20 minutes after it.
    boarding = bus_leg()
    alighting = LegEnd(BOARDED.astimezone(UTC) + timedelta(minutes=20), "late", "bus-my-dinh")
    [leg] = paired_in_time_order([boarding], alighting)
    assert (leg.entry_tap, leg.exit_tap) == (boarding.entry_tap, "late")
    assert leg.arrival is not None
    assert leg.departure is not None
    assert leg.arrival - leg.departure == timedelta(minutes=20)


def test_a_transfer_written_in_another_utc_offset_is_still_found_after_its_ride() -> None:
    ride = started(bus_leg(alighted=BOARDED + timedelta(minutes=25)))
    # Ten minutes after the ride ended, written in UTC: its ISO string sorts before the end.
    transfer_at = (BOARDED + timedelta(minutes=35)).astimezone(UTC)
    transfer = started(bus_leg(at=transfer_at))
    assert transfer_between(ride, transfer, TRANSFER_WINDOW_S)
    assert not transfer_between(transfer, ride, TRANSFER_WINDOW_S)


def test_a_leg_refuses_naive_times_and_a_leg_without_taps() -> None:
    with pytest.raises(InvariantViolated):
        bus_leg(at=BOARDED.replace(tzinfo=None))
    with pytest.raises(InvariantViolated):
        Leg("bus", "hanoi-bus", "01", None, None, None, None, None, None)
    with pytest.raises(InvariantViolated):
        Leg("tram", "hanoi-bus", "01", "a", None, BOARDED, None, "tap", None)


def test_a_leg_refuses_an_end_with_its_tap_but_not_its_time() -> None:
    with pytest.raises(InvariantViolated):
        Leg("bus", "hanoi-bus", "01", "bus-kim-ma", None, None, None, "tap", None)


def test_a_stored_leg_with_a_missing_or_unknown_key_is_refused() -> None:
    stored = bus_leg().stored()
    with pytest.raises(InvariantViolated):
        Leg.from_stored({k: v for k, v in stored.items() if k != "exit_tap"})
    with pytest.raises(InvariantViolated):
        Leg.from_stored(stored | {"fare_vnd": 7000})
