"""Parking on PostgreSQL from two containers on one database, as two API workers: one plate
started at once from both is one session, however many start ids race for it, and the holds of
the starts refused are released; an officer's check in one sees what the other changed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest

from parking.application.batch_actions import EndAction, StartAction
from parking.application.ending import Ended
from parking.application.sessions import Payer, Payment, Started, StartRequest
from parking.domain.catalogue import LotSpec
from parking.domain.enforcement import EnforcementStatus
from parking.domain.errors import SessionAlreadyOpen
from parking.domain.session import EndedBy, StartedBy
from parking.domain.tariff import VehicleClass
from tapledger.bootstrap import Container, bootstrap
from tests.integration.conftest import settings_for
from tests.services import redis_url
from ticketing.accounts.domain.commands import TopUp

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LOT = "pg-lot"
OPERATOR = "pg-operator"
FUNDS_VND = 2_000_000
# Dong Da's table: a car paid two hours ahead holds 50,000 VND at any time of day.
START_HOLD_VND = 50_000
STARTS_PER_WORKER = 4
ROUNDS = 5
JOIN_TIMEOUT_S = 120.0

Workers = tuple[Container, Container]
T = TypeVar("T")


@pytest.fixture
def workers(postgres_database_url: str, tmp_path: Path) -> Iterator[Workers]:
    """Two containers on one database: the first creates the schema and the lot."""
    settings = settings_for(tmp_path, postgres_database_url).model_copy(
        update={"redis_url": redis_url(), "follow_in_process": False}
    )
    first = bootstrap(settings)
    second = bootstrap(settings, create_schema=False)
    first.parking.catalogue.register_operator(OPERATOR, "Two workers parking")
    first.parking.catalogue.register_lot(
        LotSpec(
            lot_id=LOT,
            operator_id=OPERATOR,
            name="Ton Duc Thang",
            address="Ton Duc Thang, Dong Da, Hanoi",
            lat=21.0187,
            lon=105.8290,
            opening_hours=None,
            capacity={VehicleClass.CAR: 100, VehicleClass.MOTORBIKE: 0, VehicleClass.LARGE: 0},
            table_id="hanoi-dong-da",
        )
    )
    yield first, second
    second.close()
    first.close()


def funded_account(container: Container) -> UUID:
    account_id = container.ledger.open_account(rider_category=0).id
    container.ledger.execute(TopUp(account_id, FUNDS_VND, f"pay-{account_id.hex}"))
    return account_id


def start_request(start_id: str, plate: str, account_id: UUID) -> StartRequest:
    return StartRequest(
        start_id=start_id,
        lot_id=LOT,
        plate=plate,
        vehicle_class=VehicleClass.CAR,
        payment=Payment(paid_until=datetime.now(UTC) + timedelta(hours=2)),
        payer=Payer(account_id=account_id),
        started_by=StartedBy.APP,
    )


def at_once(calls: Sequence[Callable[[], T]]) -> list[T | BaseException]:
    """Runs every call in its own thread, all released together; each one's result or error."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[T | BaseException] = [RuntimeError("did not run")] * len(calls)

    def run(index: int) -> None:
        barrier.wait(JOIN_TIMEOUT_S)
        try:
            outcomes[index] = calls[index]()
        except BaseException as error:  # reported to the test thread
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    return outcomes


def pending_vnd(container: Container, account_id: UUID) -> int:
    return container.ledger.get_account(account_id).pending_vnd


def test_one_plate_started_from_two_workers_at_once_is_one_session(workers: Workers) -> None:
    account_id = funded_account(workers[0])
    for round_ in range(ROUNDS):
        plate = f"29A-{round_ + 100:03d}.45"
        calls: list[Callable[[], Started]] = []
        for index in range(2 * STARTS_PER_WORKER):
            request = start_request(f"race-{round_}-{index}", plate, account_id)
            worker = workers[index % 2]
            calls.append(lambda w=worker, r=request: w.parking.sessions.start(r))  # type: ignore[misc]

        outcomes = at_once(calls)

        started = [o for o in outcomes if isinstance(o, Started)]
        refused = [o for o in outcomes if isinstance(o, SessionAlreadyOpen)]
        assert (len(started), len(refused)) == (1, len(calls) - 1), outcomes
        assert {error.session_id for error in refused} == {started[0].session.id}
        # Every refused start released what it held: one hold per round is left.
        assert pending_vnd(workers[1], account_id) == (round_ + 1) * START_HOLD_VND


def test_one_start_id_sent_to_two_workers_at_once_is_one_session_and_one_hold(
    workers: Workers,
) -> None:
    account_id = funded_account(workers[0])
    request = start_request("app-resent", "30E-678.90", account_id)
    calls: list[Callable[[], Any]] = [
        lambda w=worker: w.parking.sessions.start(request)  # type: ignore[misc]
        for worker in workers * STARTS_PER_WORKER
    ]

    outcomes = at_once(calls)

    assert all(isinstance(o, Started) for o in outcomes), outcomes
    started = [o for o in outcomes if isinstance(o, Started)]
    assert len({o.session.id for o in started}) == 1
    assert sorted(o.replayed for o in started) == [False] + [True] * (len(calls) - 1)
    assert pending_vnd(workers[0], account_id) == START_HOLD_VND


def test_an_officers_check_in_one_worker_sees_what_the_other_worker_changed(
    workers: Workers,
) -> None:
    """A worker remembers no plate as absent: the check reads the store every time."""
    account_id = funded_account(workers[0])
    officer, attendant = workers[1].parking.enforcement, workers[0].parking

    before = officer.check(LOT, "29A-555.55")
    started = attendant.sessions.start(start_request("seen-elsewhere", "29A-555.55", account_id))
    paid = officer.check(LOT, "29A-555.55")
    attendant.ending.end(started.session.id, "end-elsewhere", EndedBy.ATTENDANT)
    after = officer.check(LOT, "29A-555.55")

    assert before.status is EnforcementStatus.UNPAID
    assert (paid.status, paid.session_id) == (EnforcementStatus.PAID, started.session.id)
    assert (after.status, after.session_id) == (EnforcementStatus.UNPAID, None)


BATCH_PLATES = 12


def test_batches_and_single_requests_racing_on_the_same_plates_open_and_end_each_once(
    workers: Workers,
) -> None:
    """One worker applies batches while the other starts, then ends, the same plates one by
    one: each plate gets one session, each session one end and one record, and every hold of a
    refused start is released."""
    # One account a side: a side holds at most one hold a plate, under the account's limit.
    account_id, other_id = funded_account(workers[0]), funded_account(workers[0])
    batches, singles = workers[0].parking, workers[1].parking
    plates = [f"29A-{200 + n:03d}.45" for n in range(BATCH_PLATES)]
    in_batch = [
        StartAction(start_request(f"batch-{n}", p, account_id)) for n, p in enumerate(plates)
    ]

    def single_starts() -> list[object]:
        outcomes: list[object] = []
        for n, plate in enumerate(plates):
            try:
                outcomes.append(singles.sessions.start(start_request(f"one-{n}", plate, other_id)))
            except SessionAlreadyOpen as error:
                outcomes.append(error)
        return outcomes

    def batch_starts() -> list[object]:
        return list(batches.batches.apply(in_batch))

    raced = at_once([batch_starts, single_starts])

    answers = [answer for outcome in raced for answer in _listed(outcome)]
    started = [a.session for a in answers if isinstance(a, Started)]
    assert len(started) == BATCH_PLATES, answers
    assert len([a for a in answers if isinstance(a, SessionAlreadyOpen)]) == BATCH_PLATES
    pending = pending_vnd(workers[1], account_id) + pending_vnd(workers[1], other_id)
    assert pending == BATCH_PLATES * START_HOLD_VND

    ends = [EndAction(s.id, f"end-{s.id.hex}", EndedBy.ATTENDANT) for s in started]

    def single_ends() -> list[object]:
        return [singles.ending.end(s.id, f"end-{s.id.hex}", EndedBy.ATTENDANT) for s in started]

    def batch_ends() -> list[object]:
        return list(batches.batches.apply(ends))

    ended = at_once([batch_ends, single_ends])

    answered = [answer for outcome in ended for answer in _listed(outcome)]
    records = {answer.record.id for answer in answered if isinstance(answer, Ended)}
    assert len(records) == BATCH_PLATES
    fees_vnd = sum(singles.records.get(s.id).fee_vnd for s in started)
    accounts = [workers[1].ledger.get_account(one) for one in (account_id, other_id)]
    assert sum(account.posted_vnd for account in accounts) == 2 * FUNDS_VND - fees_vnd
    assert sum(account.pending_vnd for account in accounts) == 0


def _listed(outcome: list[object] | BaseException) -> list[object]:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
