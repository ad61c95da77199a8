"""A validator's place checked against the fare feed: what the feed can price, and what not."""

from __future__ import annotations

import pytest

from ticketing.fares.loader import HANOI_FEED_DIR, load_feed
from ticketing.taps.application.validator_places import UnpricedPlace, check_place, place_problems

FEED = load_feed(HANOI_FEED_DIR)


@pytest.mark.parametrize(
    ("kind", "stop_id", "route_id", "direction"),
    [
        ("bus", "bus-kim-ma", "01", ""),
        ("metro_gate", "2A-01", "2A", "entry"),
        ("metro_gate", "3-01", "3", "exit"),
        ("parking_handheld", "", "", ""),
    ],
)
def test_a_place_the_feed_prices_passes(
    kind: str, stop_id: str, route_id: str, direction: str
) -> None:
    check_place(FEED, kind=kind, stop_id=stop_id, route_id=route_id, direction=direction)


def test_a_metro_gate_on_another_lines_station_is_refused_naming_the_stop() -> None:
    problems = place_problems(
        FEED, kind="metro_gate", stop_id="3-01", route_id="2A", direction="entry"
    )
    assert [p.field for p in problems] == ["stop_id"]


def test_every_problem_of_an_empty_place_is_named_at_once() -> None:
    with pytest.raises(UnpricedPlace) as refused:
        check_place(FEED, kind="metro_gate", stop_id="", route_id="", direction="")
    assert [p.field for p in refused.value.problems] == ["direction", "stop_id", "route_id"]
    assert refused.value.code == "validator_place_unpriced"
