"""A handheld's queued actions applied as one batch: each answered as if sent alone, a repeat
with one effect, the writes grouped, and a crash or a concurrent writer between the ledger's
writes and parking's leaving what the one-by-one path leaves."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from parking.application.batch_actions import (
    Action,
    Answer,
    EndAction,
    ExtendAction,
    StartAction,
)
from parking.application.ending import Ended
from parking.application.sessions import Payer, Payment, Started, StartRequest
from parking.domain.errors import CodeAlreadyUsed, SessionAlreadyOpen
from parking.domain.session import (
    EndedBy,
    ParkingSession,
    SessionState,
    StartedBy,
    session_id_for,
    start_hold_id,
)
from parking.domain.tariff import VehicleClass
from tests.builders.parking import BALANCE_VND, DONG_DA_LOT, PLATE, ParkingWorld, parking_world
from ticketing.accounts.domain.errors import InsufficientFunds

# Dong Da cars: 25,000 VND for each of hours 1-2, 35,000 for 3-4.
ONE_HOUR_VND = 25_000
TWO_HOURS_VND = 50_000
THREE_HOURS_VND = 85_000
PLATES = ["29A-100.01", "29A-100.02", "29A-100.03"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        yield built


class Crash(Exception):
    """The process dies here."""


def start(
    world: ParkingWorld,
    start_id: str,
    plate: str,
    *,
    hours: float = 2,
    account_id: UUID | None = None,
    code: str | None = None,
) -> StartAction:
    payer = Payer(code=code) if code else Payer(account_id=account_id or world.account_id)
    return StartAction(
        StartRequest(
            start_id=start_id,
            lot_id=DONG_DA_LOT,
            plate=plate,
            vehicle_class=VehicleClass.CAR,
            payment=Payment(paid_until=world.clock() + timedelta(hours=hours)),
            payer=payer,
            started_by=StartedBy.ATTENDANT,
        )
    )


def end(start_id: str, end_id: str = "end") -> EndAction:
    return EndAction(session_id_for(start_id), f"{end_id}-{start_id}", EndedBy.ATTENDANT)


def extend(world: ParkingWorld, start_id: str, hours: float) -> ExtendAction:
    paid_until = world.clock() + timedelta(hours=hours)
    return ExtendAction(session_id_for(start_id), "ext", Payment(paid_until=paid_until))


def apply(world: ParkingWorld, actions: Sequence[Action]) -> list[Answer]:
    return world.parking.batches.apply(actions)


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Callable[[], int]:
    calls = {"n": 0}
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return lambda: calls["n"]


def test_starts_of_a_batch_are_one_ledger_transaction_and_one_parking_save(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger_saves = counting(monkeypatch, world.container.ledger, "save")
    parking_saves = counting(monkeypatch, world.parking.store, "save")

    answers = apply(world, [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES)])

    assert all(isinstance(answer, Started) and not answer.replayed for answer in answers)
    assert (ledger_saves(), parking_saves()) == (1, 1)
    assert world.balance() == (BALANCE_VND, 3 * TWO_HOURS_VND)


def test_a_day_in_batches_posts_each_fee_releases_the_rest_and_seals_one_record_each(
    world: ParkingWorld,
) -> None:
    apply(world, [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES)])
    world.clock.advance(60 * 60)
    extended = apply(world, [extend(world, "s0", hours=2)])
    world.clock.advance(2 * 60 * 60)  # three hours in: s0 paid for them, the others for two

    answers = apply(world, [end(f"s{n}") for n in range(len(PLATES))])

    assert isinstance(extended[0], ParkingSession)
    assert extended[0].held_vnd == THREE_HOURS_VND
    records = [answer.record for answer in answers if isinstance(answer, Ended)]
    assert [record.fee_vnd for record in records] == [THREE_HOURS_VND] * 3
    assert [(r.posted_vnd, r.debited_vnd, r.unpaid_vnd) for r in records] == [
        (THREE_HOURS_VND, 0, 0),
        (TWO_HOURS_VND, THREE_HOURS_VND - TWO_HOURS_VND, 0),
        (TWO_HOURS_VND, THREE_HOURS_VND - TWO_HOURS_VND, 0),
    ]
    assert world.balance() == (BALANCE_VND - 3 * THREE_HOURS_VND, 0)
    for n in range(len(PLATES)):
        session = world.parking.sessions.get(session_id_for(f"s{n}"))
        assert session.state is SessionState.SETTLED
        assert world.parking.records.get(session.id).fee_vnd == THREE_HOURS_VND


def test_a_start_and_the_end_of_its_session_in_one_batch_happen_in_that_order(
    world: ParkingWorld,
) -> None:
    answers = apply(world, [start(world, "s0", PLATE), end("s0")])

    assert isinstance(answers[1], Ended)
    assert answers[1].record.fee_vnd == ONE_HOUR_VND
    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND, 0)


def test_a_start_answers_its_session_as_started_though_the_batch_ends_it_after(
    world: ParkingWorld,
) -> None:
    answers = apply(world, [start(world, "s0", PLATE), extend(world, "s0", 3), end("s0")])

    assert isinstance(answers[0], Started)
    assert answers[0].session.state is SessionState.OPEN
    assert isinstance(answers[1], ParkingSession)
    assert answers[1].state is SessionState.OPEN
    assert isinstance(answers[2], Ended)
    assert answers[2].session.state is SessionState.SETTLED


def test_ends_whose_save_crashed_are_ended_once_by_a_repeat_and_their_plates_reopen(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(world, [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES)])
    world.clock.advance(30 * 60)
    ends: list[Action] = [end(f"s{n}") for n in range(len(PLATES))]

    def die(*_: object) -> None:
        raise Crash

    monkeypatch.setattr(world.parking.store, "save", die)
    with pytest.raises(Crash):
        apply(world, ends)
    monkeypatch.undo()

    answers = apply(world, ends)
    again = apply(world, [start(world, f"t{n}", plate) for n, plate in enumerate(PLATES)])

    assert [a.record.fee_vnd for a in answers if isinstance(a, Ended)] == [ONE_HOUR_VND] * 3
    assert all(isinstance(answer, Started) for answer in again)
    assert world.balance() == (BALANCE_VND - 3 * ONE_HOUR_VND, 3 * TWO_HOURS_VND)


def test_a_plate_already_open_refuses_that_start_only(world: ParkingWorld) -> None:
    world.start(plate=PLATE)

    answers = apply(world, [start(world, "s0", PLATES[0]), start(world, "s1", PLATE)])

    assert isinstance(answers[0], Started)
    assert isinstance(answers[1], SessionAlreadyOpen)
    assert world.balance() == (BALANCE_VND, 2 * TWO_HOURS_VND)


def test_a_short_balance_refuses_that_start_only_and_holds_nothing_for_it(
    world: ParkingWorld,
) -> None:
    poor = world.open_account(amount_vnd=ONE_HOUR_VND)
    batch = [
        start(world, "s0", PLATES[0]),
        start(world, "s1", PLATES[1], account_id=poor),
        start(world, "s2", PLATES[2]),
    ]

    answers = apply(world, batch)

    assert [type(answer) for answer in answers] == [Started, InsufficientFunds, Started]
    assert world.balance() == (BALANCE_VND, 2 * TWO_HOURS_VND)
    assert world.balance(poor) == (ONE_HOUR_VND, 0)
    assert world.parking.store.get_or_none(session_id_for("s1")) is None


def test_a_code_used_before_refuses_that_start_only(world: ParkingWorld) -> None:
    code = world.code()
    world.start(plate=PLATE, code=code)

    answers = apply(
        world, [start(world, "s0", PLATES[0], code=code), start(world, "s1", PLATES[1])]
    )

    assert isinstance(answers[0], CodeAlreadyUsed)
    assert isinstance(answers[1], Started)


def test_a_code_pays_a_batched_start_once(world: ParkingWorld) -> None:
    code = world.code()

    answers = apply(
        world, [start(world, "s0", PLATES[0], code=code), start(world, "s1", PLATES[1], code=code)]
    )

    assert isinstance(answers[0], Started)
    assert isinstance(answers[1], CodeAlreadyUsed)
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_batch_sent_again_has_the_effect_of_one(world: ParkingWorld) -> None:
    starts: list[Action] = [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES)]
    apply(world, starts)
    again = apply(world, starts)
    world.clock.advance(30 * 60)
    ends: list[Action] = [end(f"s{n}") for n in range(len(PLATES))]
    first = apply(world, ends)
    second = apply(world, ends)

    assert all(isinstance(answer, Started) and answer.replayed for answer in again)
    assert [a.record.id for a in first if isinstance(a, Ended)] == [
        a.record.id for a in second if isinstance(a, Ended)
    ]
    assert world.balance() == (BALANCE_VND - 3 * ONE_HOUR_VND, 0)


def test_a_crash_after_the_holds_leaves_holds_a_repeat_of_the_batch_takes_up(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[Action] = [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES)]

    def die(*_: object) -> None:
        raise Crash

    monkeypatch.setattr(world.parking.store, "save", die)
    with pytest.raises(Crash):
        apply(world, starts)
    monkeypatch.undo()
    assert world.balance() == (BALANCE_VND, 3 * TWO_HOURS_VND)  # holds no session names
    world.clock.advance(5)

    answers = apply(world, starts)

    assert all(isinstance(answer, Started) for answer in answers)
    assert world.balance() == (BALANCE_VND, 3 * TWO_HOURS_VND)
    for n in range(len(PLATES)):
        session = world.parking.sessions.get(session_id_for(f"s{n}"))
        hold = {"hold_id": start_hold_id(session.id), "amount_vnd": TWO_HOURS_VND}
        assert session.holds == [hold]


def test_holds_of_a_batch_that_crashed_and_never_came_back_are_released_as_orphans(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(*_: object) -> None:
        raise Crash

    monkeypatch.setattr(world.parking.store, "save", die)
    with pytest.raises(Crash):
        apply(world, [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES)])
    monkeypatch.undo()
    world.clock.advance(11 * 60)
    world.container.follower.catch_up()
    world.parking.follower.catch_up()

    assert world.parking.sweeper.sweep().released == len(PLATES)
    assert world.balance() == (BALANCE_VND, 0)


def test_a_crash_after_the_ends_are_saved_is_settled_by_a_repeat_at_the_first_fee(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(world, [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES)])
    world.clock.advance(30 * 60)
    ends: list[Action] = [end(f"s{n}") for n in range(len(PLATES))]
    real_execute_all = world.container.ledger.execute_all

    def die(*_: object) -> None:
        raise Crash

    monkeypatch.setattr(world.container.ledger, "execute_all", die)
    with pytest.raises(Crash):
        apply(world, ends)
    monkeypatch.setattr(world.container.ledger, "execute_all", real_execute_all)
    world.clock.advance(3 * 60 * 60)  # the repeat comes much later: the fee stays the first

    answers = apply(world, ends)

    assert [a.record.fee_vnd for a in answers if isinstance(a, Ended)] == [ONE_HOUR_VND] * 3
    assert world.balance() == (BALANCE_VND - 3 * ONE_HOUR_VND, 0)


def test_ends_and_starts_of_a_batch_are_one_ledger_transaction_and_two_parking_saves(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(world, [start(world, "s0", PLATES[0]), start(world, "s1", PLATES[1])])
    world.clock.advance(30 * 60)
    ledger_saves = counting(monkeypatch, world.container.ledger, "save")
    parking_saves = counting(monkeypatch, world.parking.store, "save")

    answers = apply(world, [end("s0"), start(world, "s2", PLATES[2]), end("s1")])

    assert [type(answer) for answer in answers] == [Ended, Started, Ended]
    assert (ledger_saves(), parking_saves()) == (1, 2)
    assert world.balance() == (BALANCE_VND - 2 * ONE_HOUR_VND, TWO_HOURS_VND)


def test_a_crash_after_the_money_moved_is_settled_by_a_repeat_once(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(world, [start(world, f"s{n}", plate) for n, plate in enumerate(PLATES[:2])])
    world.clock.advance(30 * 60)
    batch: list[Action] = [end("s0"), end("s1"), start(world, "s2", PLATES[2])]
    real_save = world.parking.store.save
    saves = {"n": 0}

    def die_on_the_second(*aggregates: Any) -> Any:
        saves["n"] += 1
        if saves["n"] == 2:  # the ends are saved, the ledger has posted and held
            raise Crash
        return real_save(*aggregates)

    monkeypatch.setattr(world.parking.store, "save", die_on_the_second)
    with pytest.raises(Crash):
        apply(world, batch)
    monkeypatch.undo()
    world.clock.advance(60 * 60)

    answers = apply(world, batch)

    assert [a.record.fee_vnd for a in answers if isinstance(a, Ended)] == [ONE_HOUR_VND] * 2
    assert isinstance(answers[2], Started)
    assert world.balance() == (BALANCE_VND - 2 * ONE_HOUR_VND, TWO_HOURS_VND)


def test_a_single_start_saved_between_the_holds_and_the_save_refuses_that_batched_start(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.parking.store
    real_save = store.save
    raced = {"done": False}

    def save_after_a_rival(*aggregates: Any) -> Any:
        if not raced["done"]:
            raced["done"] = True
            world.start(plate=PLATE, start_id="alone")  # another worker, the same plate
        return real_save(*aggregates)

    monkeypatch.setattr(store, "save", save_after_a_rival)

    answers = apply(world, [start(world, "s0", PLATES[0]), start(world, "s1", PLATE)])

    assert isinstance(answers[0], Started)
    assert isinstance(answers[1], SessionAlreadyOpen)
    # The rival's hold and s0's; the hold placed for s1 was released.
    assert world.balance() == (BALANCE_VND, 2 * TWO_HOURS_VND)
    assert world.container.ledger.get_transfer(start_hold_id(session_id_for("s1"))) is not None


def test_an_end_sent_alone_while_a_batch_ends_the_same_session_is_one_end(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(world, [start(world, "s0", PLATES[0]), start(world, "s1", PLATES[1])])
    world.clock.advance(30 * 60)
    store = world.parking.store
    real_save = store.save
    raced = {"done": False}

    def save_after_a_rival(*aggregates: Any) -> Any:
        if not raced["done"]:
            raced["done"] = True
            world.parking.ending.end(session_id_for("s0"), "end-s0", EndedBy.ATTENDANT)
        return real_save(*aggregates)

    monkeypatch.setattr(store, "save", save_after_a_rival)

    answers = apply(world, [end("s0"), end("s1")])

    assert all(isinstance(answer, Ended) for answer in answers)
    assert world.balance() == (BALANCE_VND - 2 * ONE_HOUR_VND, 0)


def test_an_end_and_the_next_start_of_its_plate_in_one_batch_go_in_order_on_the_batch_path(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(world, [start(world, "s0", PLATE)])
    world.clock.advance(30 * 60)
    alone = counting(monkeypatch, world.parking.sessions, "start")

    answers = apply(world, [end("s0"), start(world, "s1", PLATE)])

    assert isinstance(answers[0], Ended)
    assert isinstance(answers[1], Started)
    assert alone() == 0  # neither went down the one-by-one path
