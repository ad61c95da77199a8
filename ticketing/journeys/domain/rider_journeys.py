"""Where one rider's journeys stand: the open one, exits waiting for their entry, the last ended
one (a transfer may join it) and those closed at day end (a late exit corrects them).

One per account, id from the account id. Only the journey follower writes it, one tap at a time,
so it never contends; each change is one event carrying the new pointers, since the pointers
are derived from the journeys and this aggregate only saves the follower from searching them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "ticketing.RiderJourneys"
# The most metro rides one rider can make in a service day (04:00 to 04:00): the worst case of
# exits waiting for their entries, when a station's entry gates stay offline all day and upload
# after the exit gates. A service day is 1,440 min; the shortest ride is one stop (the closest
# stations of line 2A are 1.0 km apart, about 2 min on the train), and leaving through an exit
# gate and back through an entry gate onto the next train takes at least 1 min more: one ride
# per 3 min at most, 1,440 / 3 = 480 rides.
METRO_RIDES_PER_SERVICE_DAY_MAX = 480
# Exits waiting for an entry, per rider: those of the day running and of the day before, whose
# close runs the next morning. Exits of closed days (charged the maximum) wait on for a late
# entry while there is room, and are the first to make room; an exit of a day still open is
# never pushed out, and one past the bound with none to make room is set aside for staff.
PENDING_EXITS_MAX = 2 * METRO_RIDES_PER_SERVICE_DAY_MAX
# Journeys a late tap may still correct (closed at day end, left open by a newer entry, or
# recently ended), per rider.
CORRECTABLE_MAX = 16
# Cap periods whose spend is kept, per kind: a late tap of last week or last month still counts.
SPEND_PERIODS_KEPT = {"day": 8, "week": 3, "month": 2}


class RiderJourneys(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Opened(Created):
        TOPIC = f"{TOPIC_PREFIX}.Opened"
        account_id: UUID

    class Pointed(Event):
        TOPIC = f"{TOPIC_PREFIX}.Pointed"
        open_journey: str | None
        pending_exits: list[str]
        last_ended: str | None
        correctable: list[str]
        at: datetime

    class Snapshot(BaseSnapshot):
        TOPIC = f"{TOPIC_PREFIX}.Snapshot"

    class Spent(Event):
        TOPIC = f"{TOPIC_PREFIX}.Spent"
        spent_vnd: dict[str, int]  # period key -> VND paid in it, after this change
        at: datetime

    @staticmethod
    def create_id(account_id: UUID) -> UUID:
        return url_uuid5(f"/tapledger/rider-journeys/{account_id}")

    @event(Opened)
    def __init__(self, account_id: UUID) -> None:
        self.account_id = account_id
        # Journey ids as strings, newest last.
        self.open_journey: str | None = None
        self.pending_exits: list[str] = []
        self.last_ended: str | None = None
        self.correctable: list[str] = []
        # Cap period key (`cap_period_keys`) -> fares counted in it, in VND.
        self.spent_vnd: dict[str, int] = {}

    def spent_in(self, day: date) -> dict[str, int]:
        """What the rider has paid in each cap period of a service day, by period kind."""
        return {kind: self.spent_vnd.get(key, 0) for kind, key in cap_period_keys(day).items()}

    def count_fare(self, *, day: date, change_vnd: int, at: datetime) -> None:
        """Adds a change of one journey's fare to every cap period of its service day."""
        if change_vnd == 0:
            return
        totals = dict(self.spent_vnd)
        for key in cap_period_keys(day).values():
            totals[key] = max(0, totals.get(key, 0) + change_vnd)
        kept: dict[str, int] = {}
        for kind, count in SPEND_PERIODS_KEPT.items():
            # Keys of one kind sort as their periods do (ISO dates, weeks, months).
            keys = sorted(k for k in totals if k.startswith(f"{kind}:"))
            kept |= {k: totals[k] for k in keys[-count:]}
        self._spent(spent_vnd=kept, at=at)

    @event(Spent)
    def _spent(self, spent_vnd: dict[str, int], at: datetime) -> None:
        self.spent_vnd = dict(spent_vnd)

    def point(
        self,
        *,
        open_journey: str | None,
        pending_exits: list[str],
        last_ended: str | None,
        correctable: list[str],
        at: datetime,
    ) -> None:
        """Records the new pointers, keeping only the most recent correctable journeys. Waiting
        exits are never dropped here: an entry still to come pairs with each of them, so the
        caller keeps their count within `PENDING_EXITS_MAX`."""
        require(len(pending_exits) <= PENDING_EXITS_MAX, "the follower bounds waiting exits")
        new: dict[str, Any] = {
            "open_journey": open_journey,
            "pending_exits": list(pending_exits),
            "last_ended": last_ended,
            "correctable": correctable[-CORRECTABLE_MAX:],
        }
        old = {
            "open_journey": self.open_journey,
            "pending_exits": self.pending_exits,
            "last_ended": self.last_ended,
            "correctable": self.correctable,
        }
        if new != old:
            self._pointed(**new, at=at)

    @event(Pointed)
    def _pointed(
        self,
        open_journey: str | None,
        pending_exits: list[str],
        last_ended: str | None,
        correctable: list[str],
        at: datetime,
    ) -> None:
        self.open_journey = open_journey
        self.pending_exits = list(pending_exits)
        self.last_ended = last_ended
        self.correctable = list(correctable)


def cap_period_keys(day: date) -> dict[str, str]:
    """The keys of the day, ISO week and month a service day falls in."""
    iso = day.isocalendar()
    return {
        "day": f"day:{day.isoformat()}",
        "week": f"week:{iso.year}-W{iso.week:02d}",
        "month": f"month:{day.year}-{day.month:02d}",
    }


# Snapshot classes' explicit topics are not registered by the library (see account.py).
register_topic(RiderJourneys.Snapshot.TOPIC, RiderJourneys.Snapshot)
