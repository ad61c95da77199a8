"""The parking sweeper: ends sessions left open past the table's maximum stay, at that stay's
end (charged by the table, like the metro's day-end close), and settles sessions whose end was
saved by a process that did not live to move the money, and closes reservations nobody arrived
for within the grace after their start (the no-show fee posted from the hold, the place
released). Safe to run in several processes: every step it takes is a repeatable step of
`Ending` or `Reservations`."""

from __future__ import annotations

from dataclasses import dataclass

from parking.adapters.parking_views import ParkingViews
from parking.adapters.reservation_views import ReservationViews
from parking.application.ending import Ending
from parking.application.orphan_holds import OrphanHolds
from parking.application.reservations import Reservations
from parking.domain.errors import SessionEnded
from parking.domain.ports import Clock
from parking.domain.session import EndedBy, SessionState

# Sessions handled in one sweep; the next sweep takes the rest.
SWEEP_BATCH_MAX = 500
# The end id of an end made by the sweeper: one per session, so two sweepers end it once.
SWEEPER_END_ID = "sweeper"


@dataclass(frozen=True)
class SweepReport:
    ended: int
    # Sessions and reservations whose money an interrupted process left unmoved.
    settled: int
    no_shows: int = 0
    # Holds of starts and extensions that no session took up.
    released: int = 0


class Sweeper:
    def __init__(
        self,
        ending: Ending,
        views: ParkingViews,
        clock: Clock,
        *,
        reservations: Reservations,
        reservation_views: ReservationViews,
        orphan_holds: OrphanHolds,
    ) -> None:
        self.ending = ending
        self.views = views
        self.clock = clock
        self.reservations = reservations
        self.reservation_views = reservation_views
        self.orphan_holds = orphan_holds

    def sweep(self) -> SweepReport:
        now = self.clock()
        overstayed, unsettled = self.views.to_sweep(now, limit=SWEEP_BATCH_MAX)
        ended = 0
        for session_id in overstayed:
            session = self.ending.sessions.get(session_id)
            if session.state is not SessionState.OPEN:
                continue
            try:
                self.ending.end(session_id, SWEEPER_END_ID, EndedBy.SWEEPER, at=session.ends_by)
            except SessionEnded:
                continue  # ended by its driver or attendant since the view was read
            ended += 1
        settled = 0
        for session_id in unsettled:
            session = self.ending.sessions.get(session_id)
            if session.state is SessionState.ENDED:
                self.ending.settle(session)
                settled += 1
        no_shows = self._no_shows()
        settled += self._settle_reservations()
        return SweepReport(ended, settled, no_shows, self.orphan_holds.release())

    def _no_shows(self) -> int:
        due = self.reservation_views.due_no_shows(self.clock(), limit=SWEEP_BATCH_MAX)
        return sum(1 for aggregate_id in due if self.reservations.mark_no_show(aggregate_id))

    def _settle_reservations(self) -> int:
        unsettled = self.reservation_views.unsettled(limit=SWEEP_BATCH_MAX)
        return sum(1 for aggregate_id in unsettled if self.reservations.settle(aggregate_id))
