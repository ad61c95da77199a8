"""What each rider of the generated day does, and when: pure and seeded, so a day is the same
day every time it is generated with the same sizes.

Rider `r` makes the journeys `j` with `j % riders == r` and the parking sessions likewise; there
is one rider per top-up, and each rider tops up first. A rider's day runs from the morning to
22:00 in Hanoi, its journeys and sessions in a shuffled order, each in a slot of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2026, 11, 23)  # the day generated and cleared: a Monday, long over
TOP_UP_VND = 500_000
DAY_STARTS = time(6, 0)
DAY_ENDS = time(22, 0)
FIRST_TOP_UP_SPREAD_S = 90 * 60
# Where each journey's legs run (the Hanoi feed's routes and stops).
BUS_ROUTES = ("09A", "18", "31", "01", "02", "32", "27", "34", "90", "107", "70A", "74")
BUS_STOPS = (
    "bus-long-bien", "bus-my-dinh", "bus-giap-bat", "bus-yen-nghia",
    "bus-cau-giay", "bus-nhon", "bus-ha-dong", "bus-kim-ma",
)  # fmt: skip
METRO_STOPS = {
    "2A": tuple(f"2A-{n:02d}" for n in range(1, 13)),
    "3": tuple(f"3-{n:02d}" for n in range(1, 9)),
}
CATEGORIES = (("regular", 85), ("priority", 10), ("elderly", 5))
MEDIA = (("mobile_app", 60), ("transit_card", 40))
# Per cent of journeys by shape.
BUS_SHARE, METRO_SHARE = 45, 35  # the rest: a bus ride then a metro ride, as one journey
PARKING_LOTS = ("hk-ly-thai-to", "hk-trang-thi", "dd-ton-duc-thang")
# Parking rate per started hour, and the hours paid up front when a session starts.
PARKING_HOUR_VND = {"car": 30_000, "motorbike": 5_000}


class Mode(StrEnum):
    BUS = "bus"
    METRO = "metro"


@dataclass(frozen=True, slots=True)
class Ride:
    """One leg: its route and stops, its taps' ids and times."""

    mode: Mode
    route_id: str
    from_stop_id: str
    to_stop_id: str
    entry_tap: UUID
    exit_tap: UUID
    departure: datetime
    arrival: datetime


@dataclass(frozen=True, slots=True)
class JourneyPlan:
    rides: tuple[Ride, ...]


@dataclass(frozen=True, slots=True)
class ParkingPlan:
    start_id: str
    lot_id: str
    vehicle_class: str
    plate: str
    started_at: datetime
    paid_hours: int
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class RiderPlan:
    index: int
    category: str
    medium: str
    top_up_at: datetime | None
    journeys: tuple[JourneyPlan, ...]
    sessions: tuple[ParkingPlan, ...]


@dataclass(frozen=True)
class DaySize:
    journeys: int
    sessions: int
    top_ups: int
    seed: int = 2026

    @property
    def riders(self) -> int:
        return max(1, self.top_ups)

    def count(self, total: int, rider: int) -> int:
        """How many of `total` things rider `rider` makes (`j % riders == rider`)."""
        return total // self.riders + (1 if rider < total % self.riders else 0)


def rider_plan(size: DaySize, day: date, rider: int) -> RiderPlan:
    rng = random.Random(size.seed * 1_000_003 + rider)
    start = datetime.combine(day, DAY_STARTS, HANOI) + timedelta(
        seconds=rng.uniform(0, FIRST_TOP_UP_SPREAD_S)
    )
    end = datetime.combine(day, DAY_ENDS, HANOI)
    journeys = size.count(size.journeys, rider)
    sessions = size.count(size.sessions, rider)
    kinds = ["journey"] * journeys + ["parking"] * sessions
    rng.shuffle(kinds)
    slot = (end - start - timedelta(minutes=1)) / max(1, len(kinds))
    at = start + timedelta(minutes=1)
    planned_journeys: list[JourneyPlan] = []
    planned_sessions: list[ParkingPlan] = []
    for number, kind in enumerate(kinds):
        begin = at + slot * rng.uniform(0.0, 0.1)
        if kind == "journey":
            planned_journeys.append(_journey(rng, begin, slot * 0.85))
        else:
            planned_sessions.append(_session(rng, rider, number, begin, slot * 0.85))
        at += slot
    return RiderPlan(
        index=rider,
        category=_weighted(rng, CATEGORIES),
        medium=_weighted(rng, MEDIA),
        top_up_at=start if rider < size.top_ups else None,
        journeys=tuple(planned_journeys),
        sessions=tuple(planned_sessions),
    )


def _journey(rng: random.Random, begin: datetime, span: timedelta) -> JourneyPlan:
    shape = rng.uniform(0, 100)
    if shape < BUS_SHARE:
        return JourneyPlan((_bus(rng, begin, min(span, timedelta(minutes=rng.uniform(10, 45)))),))
    if shape < BUS_SHARE + METRO_SHARE:
        return JourneyPlan((_metro(rng, begin, min(span, timedelta(minutes=rng.uniform(8, 35)))),))
    # A transfer: the metro entry within a few minutes of the bus alighting.
    third = min(span, timedelta(minutes=45)) / 3
    bus = _bus(rng, begin, third)
    return JourneyPlan((bus, _metro(rng, bus.arrival + third, third)))


def _bus(rng: random.Random, begin: datetime, length: timedelta) -> Ride:
    from_stop, to_stop = rng.sample(BUS_STOPS, 2)
    return _ride(rng, Mode.BUS, rng.choice(BUS_ROUTES), from_stop, to_stop, begin, length)


def _metro(rng: random.Random, begin: datetime, length: timedelta) -> Ride:
    line = rng.choice(tuple(METRO_STOPS))
    from_stop, to_stop = rng.sample(METRO_STOPS[line], 2)
    return _ride(rng, Mode.METRO, line, from_stop, to_stop, begin, length)


def _ride(
    rng: random.Random,
    mode: Mode,
    route_id: str,
    from_stop: str,
    to_stop: str,
    begin: datetime,
    length: timedelta,
) -> Ride:
    return Ride(mode, route_id, from_stop, to_stop, _uuid(rng), _uuid(rng), begin, begin + length)


def _session(
    rng: random.Random, rider: int, number: int, begin: datetime, span: timedelta
) -> ParkingPlan:
    vehicle_class = "motorbike" if rng.uniform(0, 100) < 70 else "car"
    stay = min(span, timedelta(hours=rng.uniform(0.3, 4.0)))
    return ParkingPlan(
        start_id=f"day-{rider}-{number}",
        lot_id=rng.choice(PARKING_LOTS),
        vehicle_class=vehicle_class,
        plate=f"29A-{rider % 1000:03d}.{number % 100:02d}",
        started_at=begin,
        paid_hours=rng.choice((1, 2, 3)),
        ended_at=begin + stay,
    )


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    names = [name for name, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(names, weights)[0]


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)
