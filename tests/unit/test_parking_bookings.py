"""A lot's bookings of a day, as pure values: never more windows at one instant than places, and
never a refusal while a place is free; the local days a window touches."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parking.domain.bookings import LotBookings, days_touched, peak_overlap
from parking.domain.errors import NoPlaceFree

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
DAY_START = datetime(2026, 11, 23, 0, 0, tzinfo=HANOI)
STEP = timedelta(minutes=15)
STEPS_PER_DAY = 96


def at(step: int) -> datetime:
    return DAY_START + step * STEP


def active_at(windows: list[tuple[datetime, datetime]], instant: datetime) -> int:
    return sum(1 for start, end in windows if start <= instant < end)


# A booking of [start, start + length) steps, or (with a negative start) the cancellation of
# the n-th booking still held.
Operation = tuple[int, int]
operations = st.lists(
    st.tuples(st.integers(-3, STEPS_PER_DAY - 1), st.integers(1, 16)), max_size=40
)


@settings(max_examples=150, deadline=None)
@given(places=st.integers(1, 3), steps=operations)
def test_no_instant_has_more_bookings_than_places(places: int, steps: list[Operation]) -> None:
    bookings = LotBookings("lot", "car", "2026-11-23")
    held: dict[UUID, tuple[datetime, datetime]] = {}
    for number, (start, length) in enumerate(steps):
        if start < 0:
            if held:
                victim = list(held)[-start % len(held)]
                bookings.release(victim)
                del held[victim]
            continue
        window = (at(start), at(min(start + length, STEPS_PER_DAY)))
        busiest = max(active_at([*held.values()], at(s)) for s in range(start, start + length))
        try:
            bookings.check_room(*window, places)
        except NoPlaceFree:
            assert busiest >= places  # refused only when a place was really taken
            continue
        reservation_id = UUID(int=number + 1)
        bookings.book(reservation_id, *window)
        held[reservation_id] = window
        for step in range(STEPS_PER_DAY):
            assert active_at([*held.values()], at(step)) <= places


def test_windows_that_only_touch_do_not_overlap() -> None:
    windows = [(at(0), at(4)), (at(8), at(12))]
    assert peak_overlap(windows, at(4), at(8)) == 0
    assert peak_overlap(windows, at(3), at(9)) == 1
    assert peak_overlap([*windows, (at(2), at(10))], at(0), at(12)) == 2


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (at(40), at(48), [date(2026, 11, 23)]),
        (at(92), at(96), [date(2026, 11, 23)]),  # ends at midnight: the next day is untouched
        (at(92), at(100), [date(2026, 11, 23), date(2026, 11, 24)]),
    ],
)
def test_a_window_touches_the_local_days_it_has_an_instant_in(
    start: datetime, end: datetime, days: list[date]
) -> None:
    assert days_touched(start, end) == days
