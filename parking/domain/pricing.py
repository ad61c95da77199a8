"""Price a stay: a pure function of a rate table, a vehicle class and [start, end).

The stay is cut into segments wherever anything that sets the price changes: a day period begins
or ends (in the table's local time), a table version ends, a tier of a progressive rule begins,
a 24-hour cap window ends. The segments tile [start, end) exactly, in order, and each says which
version, period and rule priced it, how many blocks or turns it counted and what they cost.

Money follows one principle, APDS's: a block is paid in full the moment it starts, at the price
in force then. So a segment may carry 0 VND when the block that covers it started earlier, and a
longer stay never costs less than a shorter one from the same start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from parking.domain.errors import InvalidStay, NoTariffInForce, StayTooLong
from parking.domain.limits import CAP_WINDOW, STAY_LIMIT
from parking.domain.tariff import (
    BlockRule,
    ClassTariff,
    FlatRule,
    Period,
    RateTable,
    TariffVersion,
    VehicleClass,
)
from ticketing.shared.domain.invariants import require

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Segment:
    """A part [start, end) of the stay priced by one version, period and rule.

    `blocks` counts the blocks (or turns) paid in this segment; `before_cap_vnd` is their price
    and `amount_vnd` what is charged once the cap of the 24-hour window has been applied."""

    start: datetime
    end: datetime
    version: int
    period: str
    rule: str
    blocks: int
    before_cap_vnd: int
    amount_vnd: int


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of a stay. Instants are in UTC; `total_vnd` is the sum of the segments'
    amounts. `over_max_stay` is only ever true when the caller allowed an overstay."""

    table_id: str
    vehicle_class: VehicleClass
    start: datetime
    end: datetime
    total_vnd: int
    segments: tuple[Segment, ...]
    max_stay: timedelta
    over_max_stay: bool


def quote(
    table: RateTable,
    vehicle_class: VehicleClass,
    start: datetime,
    end: datetime,
    *,
    allow_overstay: bool = False,
) -> Quote:
    """Price [start, end) for a vehicle class under `table`.

    The maximum stay is the one of the version in force at the start. A longer stay raises
    `StayTooLong` unless `allow_overstay` is set (an actual stay that ran over still has to be
    paid); then it is priced like any other and the quote says `over_max_stay`.
    """
    _check_stay(start, end)
    start = start.astimezone(UTC)
    end = end.astimezone(UTC)
    index = table.index_at(start)
    max_stay = table.tariff(index, vehicle_class).max_stay
    over_max_stay = end - start > max_stay
    if over_max_stay and not allow_overstay:
        raise StayTooLong(end - start, max_stay)
    segments = _Walk(table, vehicle_class, start, end).run(index)
    total_vnd = sum(segment.amount_vnd for segment in segments)
    return Quote(
        table.table_id,
        vehicle_class,
        start,
        end,
        total_vnd,
        segments,
        max_stay,
        over_max_stay,
    )


def _check_stay(start: datetime, end: datetime) -> None:
    for instant in (start, end):
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise InvalidStay("start and end must be instants with a time zone")
    if end <= start:
        raise InvalidStay("a stay must end after it starts")
    if end - start > STAY_LIMIT:
        raise InvalidStay(f"a stay longer than {STAY_LIMIT} cannot be priced")


class _Walk:
    """One pass over the stay from start to end, carrying what the money rules remember: where
    the next block of the current visit starts, how many blocks that visit has paid, and how much
    the current 24-hour cap window has charged."""

    __slots__ = (
        "end",
        "next_block",
        "segments",
        "start",
        "table",
        "vehicle_class",
        "visit_blocks",
        "window_end",
        "window_spent_vnd",
    )

    def __init__(
        self, table: RateTable, vehicle_class: VehicleClass, start: datetime, end: datetime
    ) -> None:
        self.table = table
        self.vehicle_class = vehicle_class
        self.start = start
        self.end = end
        self.segments: list[Segment] = []
        self.next_block = start
        self.visit_blocks = 0
        self.window_end = start + CAP_WINDOW
        self.window_spent_vnd = 0

    def run(self, index: int) -> tuple[Segment, ...]:
        versions = self.table.versions
        at = self.start
        period_name = ""
        period_end = self.start
        while at < self.end:
            version = versions[index]
            if version.valid_to is not None and at >= version.valid_to:
                index += 1
                if index == len(versions):
                    raise NoTariffInForce(self.table.table_id, at)
                continue
            tariff = self.table.tariff(index, self.vehicle_class)
            if at >= self.window_end:
                self.window_end += CAP_WINDOW
                self.window_spent_vnd = 0
            period, boundary = self._period_at(tariff, at)
            if period.name != period_name or at >= period_end:
                # A new visit of a period: its blocks start afresh from here.
                self.next_block = at
                self.visit_blocks = 0
            period_name, period_end = period.name, boundary
            stop = min(self.end, boundary, self.window_end, version.valid_to or self.end)
            if isinstance(period.rule, FlatRule):
                self._price_flat(version, tariff, period, period.rule, at, stop)
            else:
                self._price_blocks(version, tariff, period, period.rule, at, stop)
            at = stop
        return tuple(self.segments)

    def _period_at(self, tariff: ClassTariff, at: datetime) -> tuple[Period, datetime]:
        """The period in force at `at` and the instant its visit ends."""
        if tariff.all_day:
            return tariff.periods[0], self.end
        zone = self.table.time_zone
        local = at.astimezone(zone)
        minute = local.hour * 60 + local.minute
        period = tariff.by_minute[minute]
        day = local.date() if period.to_minute > minute else local.date() + ONE_DAY
        to = time(period.to_minute // 60, period.to_minute % 60)
        boundary = datetime.combine(day, to, tzinfo=zone).astimezone(UTC)
        require(boundary > at, "a period ends after the instant it contains")
        return period, boundary

    def _price_flat(
        self,
        version: TariffVersion,
        tariff: ClassTariff,
        period: Period,
        rule: FlatRule,
        at: datetime,
        stop: datetime,
    ) -> None:
        first = self.visit_blocks == 0
        turns, amount_vnd = (rule.turns, rule.amount_vnd) if first else (0, 0)
        self.visit_blocks += turns
        # Nothing more is owed in this visit, whatever rule a later version brings.
        self.next_block = max(self.next_block, stop)
        self._add(version, tariff, period, rule.label, at, stop, turns, amount_vnd)

    def _price_blocks(
        self,
        version: TariffVersion,
        tariff: ClassTariff,
        period: Period,
        rule: BlockRule,
        at: datetime,
        stop: datetime,
    ) -> None:
        tiers = rule.tiers
        elapsed = at - self.start
        index = len(tiers) - 1
        while tiers[index].start > elapsed:
            index -= 1
        while at < stop:
            tier = tiers[index]
            tier_end = self.start + tiers[index + 1].start if index + 1 < len(tiers) else stop
            piece_end = min(stop, tier_end)
            require(self.next_block >= at, "no block is left unpaid behind the walk")
            started = 0
            if self.next_block < piece_end:
                started = -((self.next_block - piece_end) // tier.block)
                self.next_block += started * tier.block
            paid = started
            if rule.visit_blocks_max is not None:
                paid = min(started, rule.visit_blocks_max - self.visit_blocks)
            self.visit_blocks += paid
            amount = paid * tier.amount_vnd
            self._add(version, tariff, period, tier.label, at, piece_end, paid, amount)
            at = piece_end
            index += 1

    def _add(
        self,
        version: TariffVersion,
        tariff: ClassTariff,
        period: Period,
        label: str,
        at: datetime,
        stop: datetime,
        blocks: int,
        before_cap_vnd: int,
    ) -> None:
        amount_vnd = before_cap_vnd
        cap_vnd = tariff.day_cap_vnd
        if cap_vnd is not None:
            amount_vnd = min(before_cap_vnd, max(0, cap_vnd - self.window_spent_vnd))
        self.window_spent_vnd += amount_vnd
        self.segments.append(
            Segment(
                at, stop, version.version, period.name, label, blocks, before_cap_vnd, amount_vnd
            )
        )
