"""Ends that go wrong: a process that dies between the end and the money, a session left open
past the maximum stay, holds that expired, credits; and the money of every session adds up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parking.application.ending import Ending
from parking.application.sessions import Payment
from parking.domain.errors import CreditExceedsFee, RecordNotFound, RequestIdReused, SessionEnded
from parking.domain.session import EndedBy, SessionState
from parking.domain.settlement import plan_settlement
from tests.builders.parking import BALANCE_VND, ParkingWorld, parking_world
from tests.builders.product import local_product
from ticketing.accounts.application.hold_sweeper import sweep_expired_holds

ONE_HOUR_VND = 25_000
# Dong Da cars: a whole day is capped at 300,000 VND; the maximum stay is a day.
DAY_CAP_VND = 300_000


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        yield built


class Crash(Exception):
    """The process dies here."""


def test_an_end_whose_process_died_before_the_money_is_settled_at_its_fee(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = world.start(hours=2).session
    world.clock.advance(30 * 60)

    def die(*_: object, **__: object) -> None:
        raise Crash

    monkeypatch.setattr(world.parking.ending, "settle", die)
    with pytest.raises(Crash):
        world.parking.ending.end(session.id, "end-1", EndedBy.APP)
    monkeypatch.undo()
    world.clock.advance(5 * 3600)  # the retry comes much later: the fee stays the first one
    world.parking.follower.catch_up()

    report = world.parking.sweeper.sweep()

    assert (report.ended, report.settled) == (0, 1)
    record = world.parking.records.get(session.id)
    assert (record.fee_vnd, record.posted_vnd) == (ONE_HOUR_VND, ONE_HOUR_VND)
    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND, 0)


def test_a_settlement_interrupted_after_a_post_posts_once(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = world.start(hours=1).session
    extended = world.parking.sessions.extend(
        session.id, "ext", _payment(session.paid_until + timedelta(hours=1))
    )
    world.clock.advance(90 * 60)
    ledger = world.container.ledger
    real_execute = ledger.execute
    calls = {"n": 0}

    def dies_on_second_call(command: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash
        return real_execute(command)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "execute", dies_on_second_call)
    with pytest.raises(Crash):
        world.parking.ending.end(extended.id, "end-1", EndedBy.APP)
    monkeypatch.undo()

    ended = world.parking.ending.end(extended.id, "end-1", EndedBy.APP)

    assert ended.record.fee_vnd == ended.record.posted_vnd == 2 * ONE_HOUR_VND
    assert world.balance() == (BALANCE_VND - 2 * ONE_HOUR_VND, 0)


def test_the_sweeper_ends_a_session_past_its_maximum_stay_at_that_stay(
    world: ParkingWorld,
) -> None:
    session = world.start(hours=2).session
    world.clock.advance(30 * 3600)
    world.parking.follower.catch_up()

    report = world.parking.sweeper.sweep()

    assert report.ended == 1
    ended = world.parking.sessions.get(session.id)
    assert ended.state is SessionState.SETTLED
    assert ended.ended_by == "sweeper"
    assert ended.ended_at == session.started_at + timedelta(days=1)
    assert ended.fee_vnd == DAY_CAP_VND
    assert world.balance() == (BALANCE_VND - DAY_CAP_VND, 0)
    assert world.parking.sweeper.sweep().ended == 0


def test_a_hold_that_expired_is_paid_by_a_debit_instead(world: ParkingWorld) -> None:
    session = world.start(hours=1).session
    world.clock.advance(26 * 3600)  # past the hold's expiry (paid end + a day of grace)
    world.container.follower.catch_up()
    sweep_expired_holds(
        world.container.ledger, world.container.read_model, world.container.follower
    )

    record = world.parking.ending.end(session.id, "end-1", EndedBy.ATTENDANT).record

    # A day capped at 300,000 VND, then hours 25 and 26 at the third tier's 45,000.
    assert record.fee_vnd == DAY_CAP_VND + 2 * 45_000
    assert (record.posted_vnd, record.debited_vnd) == (0, record.fee_vnd)
    assert world.balance() == (BALANCE_VND - record.fee_vnd, 0)


def test_credits_refund_a_fee_and_never_more_than_it(world: ParkingWorld) -> None:
    session = world.start(hours=1).session
    world.clock.advance(600)
    world.parking.ending.end(session.id, "end-1", EndedBy.APP)

    world.parking.records.credit(session.id, "c-1", 10_000, "meter fault")
    world.parking.records.credit(session.id, "c-1", 10_000, "meter fault")
    with pytest.raises(RequestIdReused):
        world.parking.records.credit(session.id, "c-1", 5_000, "meter fault")
    with pytest.raises(CreditExceedsFee):
        world.parking.records.credit(session.id, "c-2", 15_001, "again")

    record = world.parking.records.get(session.id)
    assert (record.credited_vnd, record.net_vnd) == (10_000, 15_000)
    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND + 10_000, 0)


def test_an_open_session_has_no_record(world: ParkingWorld) -> None:
    session = world.start().session
    with pytest.raises(RecordNotFound):
        world.parking.records.get(session.id)


holds = st.lists(st.integers(min_value=1, max_value=400_000), min_size=0, max_size=6)


@given(holds=holds, fee_vnd=st.integers(min_value=0, max_value=2_000_000))
def test_a_settlement_plan_posts_the_fee_and_releases_the_rest_of_every_hold(
    holds: list[int], fee_vnd: int
) -> None:
    plan = plan_settlement([(f"h{i}", amount) for i, amount in enumerate(holds)], fee_vnd)

    assert plan.posted_vnd + plan.released_vnd == sum(holds)
    assert plan.posted_vnd + plan.rest_vnd == fee_vnd
    assert all(0 <= use.post_vnd <= use.held_vnd for use in plan.uses)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paid_hours=st.integers(min_value=1, max_value=6),
    extensions=st.lists(st.integers(min_value=1, max_value=4), max_size=3),
    stay_minutes=st.integers(min_value=1, max_value=20 * 60),
    credit_vnd=st.integers(min_value=0, max_value=400_000),
)
def test_every_session_pays_its_fee_once_and_held_is_posted_plus_released(
    tmp_path_factory: pytest.TempPathFactory,
    paid_hours: int,
    extensions: list[int],
    stay_minutes: int,
    credit_vnd: int,
) -> None:
    with parking_world(tmp_path_factory.mktemp("p")) as world:
        session = world.start(hours=paid_hours).session
        paid_until = session.paid_until
        for number, hours in enumerate(extensions):
            paid_until += timedelta(hours=hours)
            world.parking.sessions.extend(session.id, f"x{number}", _payment(paid_until))
        world.clock.advance(stay_minutes * 60)

        ended = world.parking.ending.end(session.id, "end", EndedBy.APP)
        record = ended.record
        held = ended.session.held_vnd
        if 0 < credit_vnd <= record.fee_vnd:
            world.parking.records.credit(session.id, "c", credit_vnd, "goodwill")
        record = world.parking.records.get(session.id)

        assert record.posted_vnd + record.debited_vnd + record.unpaid_vnd == record.fee_vnd
        assert record.posted_vnd <= held
        assert record.net_vnd >= 0
        posted, pending = world.balance()
        assert pending == 0
        assert posted == BALANCE_VND - record.fee_vnd + record.unpaid_vnd + record.credited_vnd


def _payment(paid_until: datetime) -> Payment:
    return Payment(paid_until=paid_until)


def test_two_attendants_ending_one_session_at_once_end_it_once(
    world: ParkingWorld, tmp_path: Path
) -> None:
    session = world.start(hours=2).session
    world.clock.advance(30 * 60)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attendant(ending: Ending, end_id: str) -> None:
        barrier.wait()
        try:
            ending.end(session.id, end_id, EndedBy.ATTENDANT)
            outcomes.append("ended")
        except SessionEnded:
            outcomes.append("refused")

    with local_product(tmp_path, clock=world.clock) as other:
        threads = [
            threading.Thread(target=attendant, args=(world.parking.ending, "handheld-1-7")),
            threading.Thread(target=attendant, args=(other.parking.ending, "handheld-2-3")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(outcomes) == ["ended", "refused"]
    assert world.parking.records.get(session.id).posted_vnd == ONE_HOUR_VND
    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND, 0)


def test_the_sweeper_releases_a_start_hold_no_session_took_up(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def process_dies(*_: object, **__: object) -> None:
        raise Crash

    monkeypatch.setattr(world.parking.store, "save", process_dies)
    with pytest.raises(Crash):
        world.start(hours=2)  # the hold is placed, the session never saved
    monkeypatch.undo()
    kept = world.start(hours=1, plate="30E-678.90").session  # a session whose hold is its own
    assert world.balance() == (BALANCE_VND, 2 * ONE_HOUR_VND + ONE_HOUR_VND)
    world.container.follower.catch_up()
    assert world.parking.sweeper.sweep().released == 0  # younger than any request can take

    world.clock.advance(11 * 60)
    world.container.follower.catch_up()
    world.parking.follower.catch_up()

    assert world.parking.sweeper.sweep().released == 1
    assert world.balance() == (BALANCE_VND, kept.held_vnd)
