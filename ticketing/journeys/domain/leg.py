"""A journey's leg: one ride between a boarding (or entry) tap and an alighting (or exit) tap.

A leg may begin from its exit when the exit tap reaches the backend first, so either end may be
missing, though never both. Its times are timezone-aware datetimes, compared as instants: two
validators may write the same moment with different UTC offsets.

The journey's events keep a leg in its stored form (`Leg.stored`: a dict of JSON-native values,
times as ISO strings), the shape every release has written; `Leg.from_stored` reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ticketing.shared.domain.invariants import require

LEG_MODES = ("metro", "bus")
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


@dataclass(frozen=True, order=True)
class LegEnd:
    """One end of a leg: when its tap was made, the tap's id, and the stop. Ends order by
    time, then by tap id."""

    at: datetime
    tap: str
    stop_id: str


@dataclass(frozen=True)
class Leg:
    """One leg of a journey. `departure` and `entry_tap` (and `from_stop_id`) are its first tap,
    `arrival` and `exit_tap` (and `to_stop_id`) its last; an end not seen yet is None."""

    mode: str  # metro | bus
    network_id: str
    route_id: str
    from_stop_id: str | None
    to_stop_id: str | None
    departure: datetime | None
    arrival: datetime | None
    entry_tap: str | None
    exit_tap: str | None

    def __post_init__(self) -> None:
        require(self.mode in LEG_MODES, "a leg is by metro or by bus")
        require(bool(self.entry_tap or self.exit_tap), "a leg has at least one tap")
        # Each end is a tap, its time and its stop, known together or not at all.
        starts = (self.entry_tap, self.departure, self.from_stop_id)
        ends = (self.exit_tap, self.arrival, self.to_stop_id)
        for end in (starts, ends):
            require(len({part is None for part in end}) == 1, "a leg's end is a tap, time and stop")
        for moment in (self.departure, self.arrival):
            require(moment is None or moment.tzinfo is not None, "leg times are timezone-aware")

    @property
    def start(self) -> LegEnd | None:
        """The leg's entry (or boarding), when it is known."""
        if self.entry_tap is None or self.departure is None or self.from_stop_id is None:
            return None
        return LegEnd(self.departure, self.entry_tap, self.from_stop_id)

    @property
    def end(self) -> LegEnd | None:
        """The leg's exit (or alighting), when it is known."""
        if self.exit_tap is None or self.arrival is None or self.to_stop_id is None:
            return None
        return LegEnd(self.arrival, self.exit_tap, self.to_stop_id)

    @property
    def complete(self) -> bool:
        """Whether both of the leg's taps are known."""
        return bool(self.entry_tap and self.exit_tap)

    def has_tap(self, tap: str) -> bool:
        return tap in (self.entry_tap, self.exit_tap)

    def ended(self, *, stop_id: str, at: datetime, tap: str) -> Leg:
        """This leg ended by an exit (or alighting) tap `tap` at `stop_id`."""
        return replace(self, to_stop_id=stop_id, arrival=at, exit_tap=tap)

    def entered(self, *, stop_id: str, at: datetime, tap: str) -> Leg:
        """This leg begun by an entry (or boarding) tap `tap` at `stop_id`."""
        return replace(self, from_stop_id=stop_id, departure=at, entry_tap=tap)

    def stored(self) -> dict[str, Any]:
        """The leg as the journey's events store it: JSON-native values, times in ISO 8601."""
        return {
            "mode": self.mode,
            "network_id": self.network_id,
            "route_id": self.route_id,
            "from_stop_id": self.from_stop_id,
            "to_stop_id": self.to_stop_id,
            "departure": _iso(self.departure),
            "arrival": _iso(self.arrival),
            "entry_tap": self.entry_tap,
            "exit_tap": self.exit_tap,
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> Leg:
        """The leg a journey's event stored (`stored`)."""
        require(set(stored) == LEG_KEYS, "a stored leg has exactly the leg keys")
        return cls(
            mode=stored["mode"],
            network_id=stored["network_id"],
            route_id=stored["route_id"],
            from_stop_id=stored["from_stop_id"],
            to_stop_id=stored["to_stop_id"],
            departure=_moment(stored["departure"]),
            arrival=_moment(stored["arrival"]),
            entry_tap=stored["entry_tap"],
            exit_tap=stored["exit_tap"],
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _moment(iso: str | None) -> datetime | None:
    return None if iso is None else datetime.fromisoformat(iso)
