"""The test doubles every tier shares: clocks that move only when a test moves them, and a deny
list in memory that satisfies the tap verifier's `DenyListReader` port.

One of each, so a test reads the same everywhere: `Clock` for the wall clock the applications
take (`datetime`), `SecondsClock` for the float clocks of devices and monotonic timers, and
`MillisClock` for the hot state's millisecond clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ticketing.cards.adapters.card_views import DenyListDelta

# A Saturday morning in November 2026, in UTC; tests that care about the day pass their own.
WALL_START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
# A Unix time in 2027, far from any edge of the 32-bit fields a device writes.
UNIX_START_S = 1_800_000_000.0
MILLIS_START = 1_000_000
DENIED_FOR_S = 3 * 24 * 3600


class Clock:
    """The wall clock an application reads (`clock=`): set `now`, or `advance` it."""

    def __init__(self, now: datetime = WALL_START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SecondsClock:
    """A clock in float seconds: a device's Unix time, or a monotonic timer."""

    def __init__(self, now_s: float = UNIX_START_S) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class MillisClock:
    """The hot state's clock, in integer milliseconds."""

    def __init__(self, now_ms: int = MILLIS_START) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


class DenyList:
    """The card views' deny list as entries in memory; counts its reads, so a test can tell a
    reload from news pushed on the invalidation channel. Empty, it denies nothing."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.reads = 0

    def deny_list_since(self, since: int, *, now: datetime) -> DenyListDelta:
        self.reads += 1
        fresh = [e for e in self.entries if e["version"] > since and e["until"] > now]
        version = max([since, *(e["version"] for e in self.entries)])
        return DenyListDelta(version=version, entries=fresh, more=False)

    def add(self, card_id: UUID, *, listed_at: datetime, serial: str | None = None) -> None:
        self.entries.append(
            {
                "card_id": card_id,
                "serial": serial,
                "reason": "blocked",
                "listed_at": listed_at,
                "until": listed_at + timedelta(seconds=DENIED_FOR_S),
                "version": len(self.entries) + 1,
            }
        )
