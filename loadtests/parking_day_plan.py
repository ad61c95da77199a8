"""A day of parking sessions, planned before the run: who parks where, when each stay starts,
which are extended, when each ends; and the handhelds' uploads that carry them, in time order.

Every rider drives one car and parks several times a day, never twice at once, so a rider's
plate has at most one session open and its account at most two holds pending. Most stays end
within the time paid ahead; a share are extended once, a while after they start, to cover
the whole stay; a few overstay what they paid (the rest is debited at the end).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from ticketing.shared.domain.invariants import require

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
DAY_OPENS = time(6, 0)
# Stays fit between 06:00 and 21:00, inside the Dong Da lots' opening hours (06:00 to 22:00).
DAY_HOURS = 15
SESSIONS_PER_RIDER = 5
# A stay lasts at least this long, and fills at most this share of its rider's slot of the day.
STAY_MIN = timedelta(minutes=15)
STAY_SHARE_OF_SLOT = 0.7
# An extended stay is paid an hour ahead, extended after 40 minutes, and lasts past the hour.
EXTENSION_AFTER = timedelta(minutes=40)
EXTENDED_STAY_MIN = timedelta(minutes=70)
OVERSTAY_SHARE = 0.05
PLATES_MAX = 100_000  # `29A-ddd.dd`: one plate a rider


class StepKind(StrEnum):
    START = "start"
    EXTEND = "extend"
    END = "end"


@dataclass(frozen=True)
class PlannedSession:
    number: int
    rider: int
    lot_id: str
    plate: str
    start_at: datetime
    paid_until: datetime
    # The extension's time and the paid end it asks for; None when the stay is not extended.
    extend_at: datetime | None
    extended_until: datetime | None
    end_at: datetime

    @property
    def start_id(self) -> str:
        return f"day-{self.number}"


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: StepKind
    session: PlannedSession


@dataclass(frozen=True)
class DayShape:
    sessions: int
    lots: tuple[str, ...]
    extended_share: float
    seed: int

    @property
    def riders(self) -> int:
        return math.ceil(self.sessions / SESSIONS_PER_RIDER)


def plate_of(rider: int) -> str:
    require(0 <= rider < PLATES_MAX, "one plate a rider, within the plate numbers")
    return f"29A-{rider // 100:03d}.{rider % 100:02d}"


def plan_day(shape: DayShape, day: date) -> list[PlannedSession]:
    """The day's sessions, each rider's in their own slots of the day."""
    rng = random.Random(shape.seed)
    opens = datetime.combine(day, DAY_OPENS, HANOI)
    slot = timedelta(hours=DAY_HOURS) / SESSIONS_PER_RIDER
    longest = slot * STAY_SHARE_OF_SLOT
    planned: list[PlannedSession] = []
    for number in range(shape.sessions):
        rider, turn = divmod(number, SESSIONS_PER_RIDER)
        slack_s = (slot - longest).total_seconds()
        start_at = opens + slot * turn + timedelta(seconds=int(rng.uniform(0, slack_s)))
        extended = rng.random() < shape.extended_share
        shortest = EXTENDED_STAY_MIN if extended else STAY_MIN
        stay_s = int(rng.uniform(shortest.total_seconds(), longest.total_seconds()))
        end_at = start_at + timedelta(seconds=stay_s)
        hours_needed = math.ceil(stay_s / 3600)
        extend_at = extended_until = None
        if extended:
            paid_until = start_at + timedelta(hours=1)
            extend_at = start_at + EXTENSION_AFTER
            extended_until = start_at + timedelta(hours=hours_needed)
        elif rng.random() < OVERSTAY_SHARE and hours_needed > 1:
            paid_until = start_at + timedelta(hours=hours_needed - 1)
        else:
            paid_until = start_at + timedelta(hours=hours_needed)
        planned.append(
            PlannedSession(
                number=number,
                rider=rider,
                lot_id=rng.choice(shape.lots),
                plate=plate_of(rider),
                start_at=start_at,
                paid_until=paid_until,
                extend_at=extend_at,
                extended_until=extended_until,
                end_at=end_at,
            )
        )
    return planned


def steps_of(planned: list[PlannedSession]) -> list[Step]:
    """Every start, extension and end of the day, in the order they happen."""
    steps: list[Step] = []
    for session in planned:
        steps.append(Step(session.start_at, StepKind.START, session))
        if session.extend_at is not None:
            steps.append(Step(session.extend_at, StepKind.EXTEND, session))
        steps.append(Step(session.end_at, StepKind.END, session))
    order = {StepKind.START: 0, StepKind.EXTEND: 1, StepKind.END: 2}
    steps.sort(key=lambda step: (step.at, order[step.kind], step.session.number))
    return steps


def uploads(steps: list[Step], batch_max: int) -> list[list[Step]]:
    """The day's steps as the lots' handhelds send them: each upload one lot's next
    `batch_max` steps, the uploads of all lots in the order their last steps happen."""
    by_lot: dict[str, list[Step]] = {}
    for step in steps:
        by_lot.setdefault(step.session.lot_id, []).append(step)
    sent = [
        lot_steps[i : i + batch_max]
        for lot_steps in by_lot.values()
        for i in range(0, len(lot_steps), batch_max)
    ]
    sent.sort(key=lambda upload: (upload[-1].at, upload[-1].session.lot_id))
    return sent


def shares(
    day_uploads: list[list[Step]], lots: tuple[str, ...], workers: int
) -> list[list[list[Step]]]:
    """The uploads each of `workers` processes receives: every lot's go to one of them (a
    lot's handhelds to one worker, so its sessions are changed by one process), in order."""
    require(1 <= workers <= len(lots), "no more workers than lots")
    worker_of = {lot_id: n % workers for n, lot_id in enumerate(lots)}
    share: list[list[list[Step]]] = [[] for _ in range(workers)]
    for upload in day_uploads:
        share[worker_of[upload[0].session.lot_id]].append(upload)
    return share
