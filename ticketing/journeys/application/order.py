"""Pure helpers for taps that reach the journey follower out of order (`journey_taps`)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from ticketing.journeys.domain.journey import Journey

# A tap as the legs hold it: when (ISO), its id, and its stop.
LegTap = tuple[str, str, str]


def paired_in_time_order(run: list[dict[str, Any]], tap: LegTap) -> list[dict[str, Any]]:
    """The legs of `run` (one route's legs) and one more tap, paired again in time order: each
    boarding with the next tap, the last one open when the count is odd."""
    taps = [
        (when, tap_id, stop)
        for leg in run
        for when, tap_id, stop in (
            (leg["departure"], leg["entry_tap"], leg["from_stop_id"]),
            (leg["arrival"], leg["exit_tap"], leg["to_stop_id"]),
        )
        if tap_id is not None
    ]
    taps = sorted([*taps, tap], key=lambda t: (t[0], t[1]))
    route = {key: run[0][key] for key in ("mode", "network_id", "route_id")}
    legs = []
    for board, alight in itertools.zip_longest(taps[::2], taps[1::2]):
        legs.append(
            route
            | {
                "from_stop_id": board[2],
                "to_stop_id": alight[2] if alight else None,
                "departure": board[0],
                "arrival": alight[0] if alight else None,
                "entry_tap": board[1],
                "exit_tap": alight[1] if alight else None,
            }
        )
    return legs


def transfer_between(earlier: Journey, later: Journey, window_s: int) -> bool:
    """Whether `later` began within `window_s` after `earlier` ended."""
    ended = earlier.last_leg["arrival"]
    began = later.legs[0]["departure"] or later.legs[0]["arrival"]
    if ended is None or began is None or began < ended:
        return False
    gap = datetime.fromisoformat(began) - datetime.fromisoformat(ended)
    return gap <= timedelta(seconds=window_s)
