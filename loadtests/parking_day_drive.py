"""The planned day driven through parking's batch use case in process, on PostgreSQL, and its
money checked afterwards.

The product is built by its composition root, as a server process builds it, with a clock the
run moves forward: each upload is applied at the time of its last action, the starts and ends
carrying their own times as a handheld's queued actions do (`started_at`, `ended_at`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

from loadtests.parking_day_plan import PlannedSession, Step, StepKind
from parking.application.batch_actions import Action, EndAction, ExtendAction, StartAction
from parking.application.ending import Ended
from parking.application.sessions import Payer, Payment, Started, StartRequest
from parking.domain.catalogue import LotSpec
from parking.domain.pricing import quote
from parking.domain.session import EndedBy, ParkingSession, StartedBy, session_id_for
from parking.domain.tariff import VehicleClass
from tapledger.bootstrap import Container, bootstrap
from tapledger.settings import Settings
from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import TopUp
from ticketing.accounts.domain.transfer import HoldOutcome
from ticketing.shared.domain.invariants import require

OPERATOR = "bench-day"
# Two lots on Dong Da's hourly table (06:00 to 22:00) and two on iParking's turns (always open).
LOTS: dict[str, str] = {
    "day-dong-da-1": "hanoi-dong-da",
    "day-dong-da-2": "hanoi-dong-da",
    "day-iparking-1": "hanoi-iparking",
    "day-iparking-2": "hanoi-iparking",
}
LOT_CARS = 5_000
# Five stays of at most three hours at up to 45,000 VND an hour: far less than this.
RIDER_FUNDS_VND = 2_000_000
SETUP_BATCH = 500
HOLD_CHECK_SAMPLE = 300


DROP = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")


class SteppedClock:
    """The run's time: set to each upload's time before it is applied."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class EndedFigures:
    """What an end was answered: the record's money and the session's holds."""

    fee_vnd: int
    held_vnd: int
    posted_vnd: int
    debited_vnd: int
    unpaid_vnd: int
    hold_ids: tuple[str, ...]

    @classmethod
    def of(cls, ended: Ended) -> EndedFigures:
        record = ended.record
        return cls(
            fee_vnd=record.fee_vnd,
            held_vnd=record.held_vnd,
            posted_vnd=record.posted_vnd,
            debited_vnd=record.debited_vnd,
            unpaid_vnd=record.unpaid_vnd,
            hold_ids=tuple(str(hold["hold_id"]) for hold in ended.session.holds),
        )


@dataclass
class DayRun:
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    actions: int = 0
    extended: int = 0
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ended: dict[int, EndedFigures] = field(default_factory=dict)


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def build(
    database_url: str, data_dir: Path, clock: SteppedClock, *, create_schema: bool = True
) -> Container:
    """The product as a server process builds it, without followers; a worker started after
    the schema was created passes `create_schema=False` (concurrent DDL fails on PostgreSQL)."""
    settings = Settings(
        environment="local",
        database_url=database_url,
        data_dir=data_dir,
        follow_in_process=False,
    )
    return bootstrap(settings, clock=clock, create_schema=create_schema)


def register_lots(container: Container) -> None:
    catalogue = container.parking.catalogue
    catalogue.register_operator(OPERATOR, "A day of parking")
    for n, (lot_id, table_id) in enumerate(LOTS.items()):
        catalogue.register_lot(
            LotSpec(
                lot_id=lot_id,
                operator_id=OPERATOR,
                name=f"Day lot {n + 1}",
                address="Hanoi",
                lat=21.02 + n / 1000,
                lon=105.85,
                opening_hours=None,
                capacity={VehicleClass.CAR: LOT_CARS},
                table_id=table_id,
            )
        )


def open_riders(container: Container, riders: int, at: datetime) -> list[UUID]:
    """Accounts opened and funded in batches (not timed)."""
    ledger = container.ledger
    ids: list[UUID] = []
    for first in range(0, riders, SETUP_BATCH):
        accounts = [
            TransportAccount.open(rider_category=0, display_name="", overdraft_vnd=0, at=at)
            for _ in range(first, min(first + SETUP_BATCH, riders))
        ]
        ledger.save(*accounts)
        top_ups = [TopUp(a.id, RIDER_FUNDS_VND, f"day-funds-{a.id.hex}") for a in accounts]
        require(ledger.execute_all(top_ups).committed, "the riders' top-ups are committed")
        ids.extend(account.id for account in accounts)
    return ids


def action_of(step: Step, accounts: Sequence[UUID]) -> Action:
    session = step.session
    session_id = session_id_for(session.start_id)
    match step.kind:
        case StepKind.START:
            return StartAction(
                StartRequest(
                    start_id=session.start_id,
                    lot_id=session.lot_id,
                    plate=session.plate,
                    vehicle_class=VehicleClass.CAR,
                    payment=Payment(paid_until=session.paid_until),
                    payer=Payer(account_id=accounts[session.rider]),
                    started_by=StartedBy.ATTENDANT,
                    started_at=session.start_at,
                )
            )
        case StepKind.EXTEND:
            payment = Payment(paid_until=session.extended_until)
            return ExtendAction(session_id, "ext", payment)
        case StepKind.END:
            return EndAction(session_id, "end", EndedBy.ATTENDANT, session.end_at)


def run_day(
    container: Container,
    clock: SteppedClock,
    uploads: list[list[Step]],
    accounts: Sequence[UUID],
    progress: Callable[[int], None],
) -> DayRun:
    run = DayRun()
    batches = container.parking.batches
    cpu_began, began = time.process_time(), time.perf_counter()
    for upload in uploads:
        clock.at = upload[-1].at
        actions = [action_of(step, accounts) for step in upload]
        sent = time.perf_counter()
        answers = batches.apply(actions)
        run.latencies_ms.append((time.perf_counter() - sent) * 1000)
        for step, answer in zip(upload, answers, strict=True):
            expected = {StepKind.START: Started, StepKind.EXTEND: ParkingSession}.get(
                step.kind, Ended
            )
            if not isinstance(answer, expected):
                run.refused[type(answer).__name__] += 1
            elif isinstance(answer, Ended):
                run.ended[step.session.number] = EndedFigures.of(answer)
        run.actions += len(upload)
        progress(len(upload))
    run.elapsed_s = time.perf_counter() - began
    run.cpu_s = time.process_time() - cpu_began
    return run


def check_money(
    container: Container,
    planned: list[PlannedSession],
    run: DayRun,
    accounts: Sequence[UUID],
) -> list[str]:
    """What does not add up; empty when every session, hold, record and balance does."""
    problems = [f"{count} actions refused: {name}" for name, count in run.refused.items()]
    paid_by_rider: dict[int, int] = defaultdict(int)
    for session in planned:
        ended = run.ended.get(session.number)
        if ended is None:
            problems.append(f"session {session.number} has no record")
            continue
        record = ended
        table = container.parking.catalogue.table(LOTS[session.lot_id])
        fee = quote(table, VehicleClass.CAR, session.start_at, session.end_at, allow_overstay=True)
        if record.fee_vnd != fee.total_vnd:
            problems.append(f"session {session.number}: fee {record.fee_vnd} != {fee.total_vnd}")
        if record.posted_vnd + record.debited_vnd != record.fee_vnd or record.unpaid_vnd:
            problems.append(f"session {session.number}: fee not paid in full")
        if not 0 <= record.posted_vnd <= record.held_vnd:
            problems.append(f"session {session.number}: posted beyond what was held")
        paid_by_rider[session.rider] += record.posted_vnd + record.debited_vnd
    problems += _check_holds(container, planned[:: max(1, len(planned) // HOLD_CHECK_SAMPLE)], run)
    problems += _check_records_stored(container, len(planned))
    for rider, account_id in enumerate(accounts):
        account = container.ledger.get_account(account_id)
        expected = RIDER_FUNDS_VND - paid_by_rider[rider]
        if (account.posted_vnd, account.pending_vnd) != (expected, 0):
            problems.append(
                f"rider {rider}: {account.posted_vnd}/{account.pending_vnd} != {expected}/0"
            )
    return problems


def _check_holds(container: Container, sample: list[PlannedSession], run: DayRun) -> list[str]:
    """Each sampled session's holds, read from the ledger: held = posted + released."""
    problems: list[str] = []
    for session in sample:
        ended = run.ended.get(session.number)
        if ended is None:
            continue
        posted_vnd = 0
        for hold_id in ended.hold_ids:
            transfer = container.ledger.get_transfer(hold_id)
            if transfer is None or transfer.outcome_code == HoldOutcome.PENDING.value:
                problems.append(f"session {session.number}: hold {hold_id} not resolved")
                continue
            posted_vnd += transfer.posted_vnd
        if posted_vnd != ended.posted_vnd:
            problems.append(f"session {session.number}: holds posted {posted_vnd}")
    return problems


def _check_records_stored(container: Container, sessions: int) -> list[str]:
    """One detail record per session in the store, counted by SQL."""
    url = container.settings.postgres_url
    assert url is not None, "the day runs on PostgreSQL"
    query = (
        "SELECT count(DISTINCT originator_id) FROM parking_events "
        "WHERE topic LIKE %s AND originator_version = 1"
    )
    with psycopg.connect(url) as conn:
        row = conn.execute(query, ("%ParkingDetailRecord%",)).fetchone()
    stored = 0 if row is None else int(row[0])
    return [] if stored == sessions else [f"{stored} records stored for {sessions} sessions"]


def day_start(planned: list[PlannedSession]) -> datetime:
    return min(session.start_at for session in planned).astimezone(UTC)
