"""A journey's leg: one ride between a boarding (or entry) tap and an alighting (or exit) tap.

A leg may begin from its exit when the exit tap reaches the backend first, so either end may be
missing, though never both.
"""

from __future__ import annotations

from typing import Any

from ticketing.shared.domain.invariants import require

LEG_KEYS = frozenset(
    {
        "mode",
        "network_id",
        "route_id",
        "from_stop_id",
        "to_stop_id",
        "departure",
        "arrival",
        "entry_tap",
        "exit_tap",
    }
)


def check_leg(leg: dict[str, Any]) -> None:
    require(set(leg) == LEG_KEYS, "a leg has exactly the leg keys")
    require(leg["mode"] in ("metro", "bus"), "a leg is by metro or by bus")
    require(bool(leg["entry_tap"] or leg["exit_tap"]), "a leg has at least one tap")
