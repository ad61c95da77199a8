"""Clearing cycles on the product over SQLite: a day of journeys and parking closed into
positions and files, re-runs, the cut-off in the store's order, the order of cycles, and the
bank's confirmation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from clearing.application.cycles import DayNotOver
from clearing.application.ledger_movements import ledger_movements
from clearing.domain.book import CycleOutOfOrder
from clearing.domain.business_day import day_end
from clearing.domain.cycle import CycleClosed, CycleState, PayoutState
from clearing.domain.statements import BankStatement, Direction, StatementEntry
from tests.builders.clearing_day import Rider, a_day
from tests.builders.journeys import BUS_01, BUS_02, GATE_IN_01, GATE_OUT_12, register_validators
from tests.builders.parking import MORNING, OPERATOR, ParkingWorld, parking_world
from ticketing.accounts.domain.commands import TOP_UP_ID_PREFIX, TopUp
from ticketing.taps.application.ingestion import QrTap

DAY = MORNING.date()
METRO, BUS = "hanoi-metro", "transerco"
XSD = Path(__file__).parents[1] / "data" / "iso20022" / "pain.001.001.09.xsd"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        register_validators(built.container.taps)
        yield built


def after_midnight(world: ParkingWorld, day: date = DAY, seconds: int = 60) -> None:
    world.clock.now = day_end(day) + timedelta(seconds=seconds)


def top_up(world: ParkingWorld, at: datetime, reference: str, amount_vnd: int = 10_000) -> None:
    world.clock.now = at
    world.container.ledger.execute(TopUp(world.account_id, amount_vnd, reference))


def digests(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
        if not path.name.startswith(".")
    }


def test_a_closed_day_pays_each_operator_its_revenue_less_commission(world: ParkingWorld) -> None:
    a_day(world)
    after_midnight(world)

    run = world.container.clearing.run(DAY)

    summary = run.cycle.summary
    assert summary is not None
    assert run.cycle.state is CycleState.CLOSED
    revenue = {o.operator_id: o.revenue_vnd for o in summary.operators}
    assert revenue[METRO] == 15_000 + 2_222 + 4_444
    assert revenue[BUS] == 10_000 + 2_778 + 5_556
    for operator in summary.operators:
        assert operator.commission_vnd == operator.revenue_vnd // 10
        assert operator.paid_vnd == operator.net_vnd > 0
    assert summary.suspense_lines == 1  # the debit under an id no writer uses
    positions = [o.net_vnd for o in summary.operators]
    float_vnd = -(summary.revenue_vnd + summary.suspense_vnd)
    assert sum(positions) + summary.suspense_vnd + summary.commission_vnd + float_vnd == 0
    assert {p.operator_id for p in summary.payouts} == {METRO, BUS, OPERATOR}


def test_the_settlement_file_is_valid_pain001_and_the_csvs_add_up(world: ParkingWorld) -> None:
    a_day(world)
    after_midnight(world)

    run = world.container.clearing.run(DAY)

    directory = run.files[0].parent
    assert directory.name == DAY.isoformat()
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    summary = run.cycle.summary
    assert summary is not None
    document = etree.parse(str(directory / f"{summary.message_id}.xml"))
    schema.assertValid(document)
    metro = (directory / f"lines-{METRO}.csv").read_text().splitlines()
    total = metro[-1].split(",")
    assert total[0] == "TOTAL"
    assert int(total[1]) == len(metro) - 2
    assert int(total[6]) == sum(int(row.split(",")[6]) for row in metro[1:-1])
    positions = (directory / "positions.csv").read_text().splitlines()
    assert positions[-1].split(",")[6] == "0"
    statement = (directory / f"statement-{METRO}.csv").read_text().splitlines()[1:]
    amounts = [int(row.split(",")[-1]) for row in statement]
    assert sum(amounts[:-1]) == amounts[-1]  # opening + lines - commission - payout = closing


def test_running_a_closed_cycle_again_writes_the_same_bytes(world: ParkingWorld) -> None:
    a_day(world)
    after_midnight(world)
    run = world.container.clearing.run(DAY)
    directory = run.files[0].parent
    first = digests(directory)
    for path in directory.iterdir():
        path.unlink()
    top_up(world, day_end(DAY) + timedelta(hours=2), "tu:later")

    again = world.container.clearing.run(DAY)

    assert digests(directory) == first
    assert again.cycle.version == run.cycle.version


def test_a_day_not_yet_over_has_no_cycle(world: ParkingWorld) -> None:
    a_day(world)
    world.clock.now = day_end(DAY) - timedelta(seconds=1)
    with pytest.raises(DayNotOver):
        world.container.clearing.run(DAY)
    assert world.container.clearing.cycle(DAY) is None


def test_the_cut_falls_in_the_store_order_not_by_the_clock(world: ParkingWorld) -> None:
    end = day_end(DAY)
    top_up(world, end - timedelta(seconds=1), "tu:before")
    top_up(world, end, "tu:first-of-next-day")
    # Committed after the next day's first movement, for a time before midnight: late.
    top_up(world, end - timedelta(seconds=5), "tu:late")
    after_midnight(world, DAY + timedelta(days=1))

    today = world.container.clearing.run(DAY).cycle.summary
    tomorrow = world.container.clearing.run(DAY + timedelta(days=1)).cycle.summary

    assert today is not None
    assert tomorrow is not None
    before = 10_000 + 500_000  # the world's opening top-up and the one a second before the end
    assert today.top_ups_vnd == before
    assert tomorrow.top_ups_vnd == 20_000
    ledger = world.container.ledger
    ids = {
        item.movement.reference.removeprefix(TOP_UP_ID_PREFIX): item.notification_id
        for item in ledger_movements(ledger, 0, ledger.recorder.max_notification_id() or 0)
    }
    assert today.cut_off == ids["tu:first-of-next-day"] - 1
    assert ids["tu:before"] <= today.cut_off < ids["tu:late"] <= tomorrow.cut_off


def test_cycles_follow_each_other_day_by_day(world: ParkingWorld) -> None:
    after_midnight(world, DAY + timedelta(days=2))
    world.container.clearing.run(DAY)
    with pytest.raises(CycleOutOfOrder, match="2026-11-24"):
        world.container.clearing.run(DAY + timedelta(days=2))
    with pytest.raises(CycleOutOfOrder):
        world.container.clearing.run(DAY - timedelta(days=1))
    second = world.container.clearing.run(DAY + timedelta(days=1)).cycle
    assert second.seq == 2
    assert [c.day for c in world.container.clearing.cycles()] == [
        DAY + timedelta(days=1),
        DAY,
    ]


def test_a_closed_cycle_never_changes(world: ParkingWorld) -> None:
    a_day(world)
    after_midnight(world)
    cycle = world.container.clearing.run(DAY).cycle
    assert cycle.summary is not None
    with pytest.raises(CycleClosed):
        cycle.close(cycle.summary)


def statement(entries: list[tuple[str, int]], on: date) -> BankStatement:
    return BankStatement(
        account_id="0011004455667",
        statement_date=on,
        opening_balance_vnd=None,
        closing_balance_vnd=None,
        entries=tuple(
            StatementEntry(
                amount_vnd=amount,
                direction=Direction.DEBIT,
                booking_date=on,
                end_to_end_id=e2e,
                bank_reference=f"BANK-{n}",
            )
            for n, (e2e, amount) in enumerate(entries)
        ),
    )


def test_a_statement_booking_every_payout_settles_the_cycle(world: ParkingWorld) -> None:
    a_day(world)
    after_midnight(world)
    summary = world.container.clearing.run(DAY).cycle.summary
    assert summary is not None
    booked = [(p.end_to_end_id, p.amount_vnd) for p in summary.payouts]

    [outcome] = world.container.clearing.confirm(statement(booked, DAY + timedelta(days=1)))

    assert outcome.report.all_confirmed
    cycle = world.container.clearing.cycle(DAY)
    assert cycle is not None
    assert cycle.state is CycleState.SETTLED


def test_a_payout_missing_from_the_statement_leaves_the_cycle_unsettled(
    world: ParkingWorld,
) -> None:
    a_day(world)
    after_midnight(world)
    summary = world.container.clearing.run(DAY).cycle.summary
    assert summary is not None
    first, *rest = summary.payouts
    booked = [(p.end_to_end_id, p.amount_vnd) for p in rest]

    world.container.clearing.confirm(statement(booked, DAY + timedelta(days=1)))

    cycle = world.container.clearing.cycle(DAY)
    assert cycle is not None
    assert cycle.state is CycleState.CLOSED
    assert cycle.payout_state(first.end_to_end_id) is PayoutState.FLAGGED
    assert "missing from the statement of 2026-11-24" in cycle.payout_states[first.end_to_end_id][1]
    world.container.clearing.confirm(
        statement([(first.end_to_end_id, first.amount_vnd)], DAY + timedelta(days=2))
    )
    cycle = world.container.clearing.cycle(DAY)
    assert cycle is not None
    assert cycle.state is CycleState.SETTLED


class LateValidator:
    """The world's phone tapping validators that upload when told, not as they are tapped."""

    def __init__(self, world: ParkingWorld) -> None:
        self.world = world
        self.counter = 0
        self.outbox: dict[int, list[QrTap]] = {}
        self.sent: dict[int, int] = {}  # the last sequence number uploaded, per validator

    def tap(self, validator_id: int, at: datetime, *, upload: bool = True) -> None:
        self.counter += 1
        code = self.world.phone.code(int(at.timestamp()) - 2, self.counter)
        batch = self.outbox.setdefault(validator_id, [])
        batch.append(QrTap(len(batch) + 1, at, "accepted", "accepted", code))
        if upload:
            self.upload(validator_id, at)

    def upload(self, validator_id: int, at: datetime) -> None:
        self.world.clock.now = at
        sent = self.sent.get(validator_id, 0)
        pending = [tap for tap in self.outbox[validator_id] if tap.seq > sent]
        results = self.world.container.taps.ingest_batch(validator_id, pending)
        assert all(result.status == "accepted" for result in results), results
        self.sent[validator_id] = pending[-1].seq
        self.world.container.catch_up()


def test_rides_land_in_the_cycle_of_the_position_their_charge_was_committed_at(
    world: ParkingWorld,
) -> None:
    end = day_end(DAY)
    rider = LateValidator(world)
    # Rides more than an hour apart, so each is a journey of its own. Bus 02 at 20:00, its
    # validator offline until after midnight: a ride of the day, charged after the first
    # movement of the next.
    rider.tap(BUS_02, end - timedelta(hours=4), upload=False)
    rider.tap(BUS_02, end - timedelta(minutes=220), upload=False)
    # Bus 01 at 21:30, charged at 21:50: the day's.
    rider.tap(BUS_01, end - timedelta(minutes=150))
    rider.tap(BUS_01, end - timedelta(minutes=130))
    # The metro in at 23:00 (a hold: nobody's revenue), out at 00:05: the next day's first
    # movement, the fare posted for an entry before midnight.
    rider.tap(GATE_IN_01, end - timedelta(hours=1))
    rider.tap(GATE_OUT_12, end + timedelta(minutes=5))
    rider.upload(BUS_02, end + timedelta(minutes=30))
    after_midnight(world, DAY + timedelta(days=1))

    today = world.container.clearing.run(DAY).cycle.summary
    tomorrow = world.container.clearing.run(DAY + timedelta(days=1)).cycle.summary

    assert today is not None
    assert tomorrow is not None
    revenue = {o.operator_id: o.revenue_vnd for o in today.operators}
    assert revenue.get(METRO, 0) == 0
    assert revenue[BUS] == 10_000  # bus 01 only
    assert {o.operator_id: o.revenue_vnd for o in tomorrow.operators} == {
        METRO: 15_000,  # the exit after midnight
        BUS: 10_000,  # bus 02, uploaded late
    }
    ledger = world.container.ledger
    movements = list(ledger_movements(ledger, 0, ledger.recorder.max_notification_id() or 0))
    posted = [m.notification_id for m in movements if m.movement.kind == "hold_posted"]
    placed = [m.notification_id for m in movements if m.movement.kind == "hold_placed"]
    assert today.cut_off == posted[0] - 1  # one position before the exit's post
    assert placed[-1] <= today.cut_off  # the entry's hold, the last movement of the day
    bus_01, bus_02 = [m.notification_id for m in movements if m.movement.kind == "debited"]
    assert bus_01 <= today.cut_off < posted[0] < bus_02 <= tomorrow.cut_off


def test_an_open_leg_weighs_its_dearest_fare_not_an_equal_share(world: ParkingWorld) -> None:
    rider = Rider(world)
    rider.tap(GATE_IN_01, 0)
    rider.tap(GATE_OUT_12, 30)
    rider.tap(BUS_01, 40)  # boarded within the transfer window, not alighted yet
    after_midnight(world)

    summary = world.container.clearing.run(DAY).cycle.summary

    assert summary is not None
    revenue = {o.operator_id: o.revenue_vnd for o in summary.operators}
    assert revenue[METRO] > revenue[BUS] > 0
