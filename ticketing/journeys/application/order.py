"""Pure helpers for taps that reach the journey follower out of order (`tap_repairs`,
`tap_merges`)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.leg import Leg, LegEnd


def paired_in_time_order(run: list[Leg], tap: LegEnd) -> list[Leg]:
    """The legs of `run` (one route's legs) and one more tap, paired again in time order: each
    boarding with the next tap, the last one open when the count is odd."""
    ends = [end for leg in run for end in (leg.start, leg.end) if end is not None]
    taps = sorted([*ends, tap])  # by time, then tap id
    route = run[0]
    return [
        Leg(
            mode=route.mode,
            network_id=route.network_id,
            route_id=route.route_id,
            from_stop_id=board.stop_id,
            to_stop_id=alight.stop_id if alight else None,
            departure=board.at,
            arrival=alight.at if alight else None,
            entry_tap=board.tap,
            exit_tap=alight.tap if alight else None,
        )
        for board, alight in itertools.zip_longest(taps[::2], taps[1::2])
    ]


def transfer_between(earlier: Journey, later: Journey, window_s: int) -> bool:
    """Whether `later` began within `window_s` after `earlier` ended."""
    ended = earlier.last_leg.arrival
    began = later.legs[0].departure or later.legs[0].arrival
    if ended is None or began is None or began < ended:
        return False
    return began - ended <= timedelta(seconds=window_s)
