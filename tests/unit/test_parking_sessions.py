"""Parking sessions on the product's composition root: started, extended and ended against a
real ledger, each step's money checked on the transport account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from eventsourcing.persistence import RecordConflictError

from parking.application.sessions import Payer, Payment, StartRequest
from parking.domain.action_time import acted_at
from parking.domain.errors import (
    ActionTimeOutOfRange,
    CodeAlreadyUsed,
    CodeRefused,
    ExtensionNotLater,
    LotClosed,
    PlateUnreadable,
    RequestIdReused,
    SessionAlreadyOpen,
    SessionEnded,
)
from parking.domain.limits import HANDHELD_OFFLINE_MAX
from parking.domain.session import EndedBy, SessionState, StartedBy
from parking.domain.tariff import VehicleClass
from tests.builders.parking import (
    BALANCE_VND,
    DONG_DA_LOT,
    MORNING,
    OTHER_PLATE,
    PLATE,
    ParkingWorld,
    parking_world,
)
from ticketing.accounts.domain.errors import InsufficientFunds
from ticketing.shared.domain.errors import Contended

# Dong Da cars: 25,000 VND for each of hours 1-2, 35,000 for 3-4, 45,000 from the 5th.
TWO_HOURS_VND = 50_000
THREE_HOURS_VND = 85_000
ONE_HOUR_VND = 25_000


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        yield built


def test_a_start_holds_the_quoted_amount_on_the_account(world: ParkingWorld) -> None:
    started = world.start(hours=2)

    assert started.session.held_vnd == TWO_HOURS_VND
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_an_end_posts_the_fee_of_the_real_stay_and_releases_the_rest(world: ParkingWorld) -> None:
    session = world.start(hours=2).session
    world.clock.advance(50 * 60)

    ended = world.parking.ending.end(session.id, "end-1", EndedBy.APP)

    assert ended.session.state is SessionState.SETTLED
    assert ended.record.fee_vnd == ONE_HOUR_VND
    assert ended.record.posted_vnd == ONE_HOUR_VND
    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND, 0)


def test_an_extension_raises_the_hold_by_the_difference(world: ParkingWorld) -> None:
    session = world.start(hours=2).session

    extended = world.parking.sessions.extend(
        session.id, "ext-1", Payment(paid_until=session.paid_until + timedelta(hours=1))
    )

    assert extended.held_vnd == THREE_HOURS_VND
    assert world.balance() == (BALANCE_VND, THREE_HOURS_VND)


def test_an_extension_must_end_later(world: ParkingWorld) -> None:
    session = world.start(hours=2).session

    with pytest.raises(ExtensionNotLater):
        world.parking.sessions.extend(session.id, "ext-1", Payment(paid_until=session.paid_until))
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_stay_past_its_paid_end_is_debited_beyond_the_holds(world: ParkingWorld) -> None:
    session = world.start(hours=1).session
    world.clock.advance(3 * 3600 - 60)

    record = world.parking.ending.end(session.id, "end-1", EndedBy.ATTENDANT).record

    assert record.fee_vnd == THREE_HOURS_VND
    assert (record.posted_vnd, record.debited_vnd, record.unpaid_vnd) == (25_000, 60_000, 0)
    assert world.balance() == (BALANCE_VND - THREE_HOURS_VND, 0)


def test_what_the_account_cannot_pay_is_recorded_unpaid(world: ParkingWorld) -> None:
    poor = world.open_account(30_000)
    session = world.start(hours=1, account_id=poor).session
    world.clock.advance(2 * 3600 - 60)

    record = world.parking.ending.end(session.id, "end-1", EndedBy.ATTENDANT).record

    assert (record.fee_vnd, record.posted_vnd, record.unpaid_vnd) == (50_000, 25_000, 25_000)
    assert world.balance(poor) == (5_000, 0)


def test_one_open_session_per_plate_per_lot(world: ParkingWorld) -> None:
    first = world.start().session

    with pytest.raises(SessionAlreadyOpen) as refused:
        world.start(plate="29a12345")

    assert refused.value.session_id == first.id
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_plate_may_park_again_after_its_session_ended(world: ParkingWorld) -> None:
    session = world.start().session
    world.clock.advance(600)
    world.parking.ending.end(session.id, "end-1", EndedBy.APP)

    again = world.start().session

    assert again.id != session.id


def test_the_same_start_id_is_one_session_and_one_hold(world: ParkingWorld) -> None:
    first = world.start(start_id="handheld-7-1")
    second = world.start(start_id="handheld-7-1")

    assert (first.replayed, second.replayed) == (False, True)
    assert second.session.id == first.session.id
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_start_id_reused_for_another_request_is_refused(world: ParkingWorld) -> None:
    world.start(start_id="handheld-7-1")

    with pytest.raises(RequestIdReused):
        world.start(start_id="handheld-7-1", plate=OTHER_PLATE)


def test_an_end_repeated_with_its_id_is_one_end_and_another_end_is_refused(
    world: ParkingWorld,
) -> None:
    session = world.start().session
    world.clock.advance(600)
    first = world.parking.ending.end(session.id, "end-1", EndedBy.APP)
    world.clock.advance(3600)

    again = world.parking.ending.end(session.id, "end-1", EndedBy.APP)

    assert again.record.fee_vnd == first.record.fee_vnd == ONE_HOUR_VND
    with pytest.raises(SessionEnded):
        world.parking.ending.end(session.id, "end-2", EndedBy.APP)
    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND, 0)


def test_a_scanned_code_pays_from_its_card_account_once(world: ParkingWorld) -> None:
    code = world.code(counter=1)
    started = world.start(code=code)

    assert started.session.account_id == world.account_id
    assert started.session.started_by == "attendant"
    with pytest.raises(CodeAlreadyUsed):
        world.start(code=code, plate=OTHER_PLATE)
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_forged_code_is_refused_with_the_validators_reason(world: ParkingWorld) -> None:
    code = world.code()
    forged = code[:-6] + ("A" if code[-6] != "A" else "B") + code[-5:]

    with pytest.raises(CodeRefused) as refused:
        world.start(code=forged)

    assert refused.value.code.startswith("code_")
    assert world.balance() == (BALANCE_VND, 0)


def test_a_start_the_account_cannot_hold_writes_nothing(world: ParkingWorld) -> None:
    poor = world.open_account(10_000)

    with pytest.raises(InsufficientFunds):
        world.start(account_id=poor)

    world.start(plate=PLATE)  # the plate is free: nothing was saved for the refused start


def test_an_unreadable_plate_is_a_clear_error(world: ParkingWorld) -> None:
    with pytest.raises(PlateUnreadable):
        world.start(plate="HELLO")


def test_a_closed_lot_refuses_a_start(world: ParkingWorld) -> None:
    world.clock.advance(15 * 3600)  # 23:00 in Hanoi; Dong Da's lot closes at 22:00

    with pytest.raises(LotClosed):
        world.start(lot_id=DONG_DA_LOT)


def test_a_start_whose_save_keeps_losing_releases_its_hold(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_conflicts(*_: object, **__: object) -> None:
        raise RecordConflictError

    monkeypatch.setattr("ticketing.shared.optimistic.back_off", lambda _: None)
    monkeypatch.setattr(world.parking.store, "save", always_conflicts)

    with pytest.raises(Contended):
        world.start()

    assert world.balance() == (BALANCE_VND, 0)


def test_a_start_queued_offline_counts_from_when_the_code_was_scanned(
    world: ParkingWorld,
) -> None:
    scanned_at = world.clock()
    code = world.code()
    world.clock.advance(20 * 60)  # the handheld was offline for 20 minutes

    started = world.parking.sessions.start(
        StartRequest(
            start_id="handheld-2-9",
            lot_id=DONG_DA_LOT,
            plate=PLATE,
            vehicle_class=VehicleClass.CAR,
            payment=Payment(paid_until=scanned_at + timedelta(hours=1)),
            payer=Payer(code=code),
            started_by=StartedBy.ATTENDANT,
            started_at=scanned_at,
        )
    )

    assert started.session.started_at == scanned_at
    assert started.session.held_vnd == ONE_HOUR_VND


def test_an_end_queued_offline_is_priced_up_to_when_it_was_made(world: ParkingWorld) -> None:
    session = world.start(hours=2).session
    world.clock.advance(50 * 60)
    pressed_at = world.clock()
    world.clock.advance(3 * 3600)  # the handheld came back online three hours later

    record = world.parking.ending.end(
        session.id, "end-1", EndedBy.ATTENDANT, at=acted_at(pressed_at, world.clock())
    ).record

    assert record.fee_vnd == ONE_HOUR_VND


@pytest.mark.parametrize(
    "offset", [-HANDHELD_OFFLINE_MAX - timedelta(seconds=1), timedelta(minutes=5)]
)
def test_an_action_stamped_too_long_ago_or_ahead_is_refused(offset: timedelta) -> None:
    now = MORNING

    with pytest.raises(ActionTimeOutOfRange):
        acted_at(now + offset, now)


def test_an_action_stamped_a_moment_ahead_counts_as_now() -> None:
    assert acted_at(MORNING + timedelta(seconds=5), MORNING) == MORNING


def test_an_extension_cut_off_by_a_failure_keeps_its_hold_for_the_retry(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = world.start(hours=2).session
    later = Payment(paid_until=session.paid_until + timedelta(hours=1))
    real_save = world.parking.store.save

    def database_gone(*_: object, **__: object) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(world.parking.store, "save", database_gone)
    with pytest.raises(ConnectionError):
        world.parking.sessions.extend(session.id, "ext-1", later)
    monkeypatch.setattr(world.parking.store, "save", real_save)

    extended = world.parking.sessions.extend(session.id, "ext-1", later)

    assert extended.held_vnd == THREE_HOURS_VND
    assert world.balance() == (BALANCE_VND, THREE_HOURS_VND)
