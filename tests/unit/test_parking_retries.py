"""Requests met by their twins: starts and extensions repeated seconds after the worker that took
them died between placing the hold and saving the session (the hold's time to live is counted
from each attempt's now, yet the repeat is one effect, and a hold no session takes up is
released), and saves whose reads straddle another worker's commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from parking.application.ending import Ended
from parking.application.sessions import Payer, Payment, StartRequest
from parking.domain.errors import SessionAlreadyOpen, SessionEnded
from parking.domain.occupancy import PlateAtLot
from parking.domain.session import EndedBy, StartedBy
from parking.domain.tariff import VehicleClass
from tests.builders.parking import BALANCE_VND, DONG_DA_LOT, PLATE, ParkingWorld, parking_world

TWO_HOURS_VND = 50_000
THREE_HOURS_VND = 85_000
ONE_HOUR_VND = 25_000
RETRY_AFTER_S = 7


class WorkerDied(BaseException):
    """The process ended between the hold and the session's save: like a SIGKILL, nothing of
    the request's own error handling runs (hence not an `Exception`)."""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        yield built


def dying_once(world: ParkingWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's next save never happens, as if the worker were killed before it."""
    store = world.parking.store
    save = store.save

    def die(*aggregates: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(store, "save", save)
        raise WorkerDied

    monkeypatch.setattr(store, "save", die)


def request(world: ParkingWorld, start_id: str, plate: str = PLATE) -> StartRequest:
    return StartRequest(
        start_id=start_id,
        lot_id=DONG_DA_LOT,
        plate=plate,
        vehicle_class=VehicleClass.CAR,
        payment=Payment(paid_until=world.clock() + timedelta(hours=2)),
        payer=Payer(account_id=world.account_id),
        started_by=StartedBy.APP,
    )


def test_a_start_repeated_seconds_after_its_worker_died_is_one_session_and_one_hold(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = request(world, "app-1")
    dying_once(world, monkeypatch)
    with pytest.raises(WorkerDied):
        world.parking.sessions.start(start)
    world.clock.advance(RETRY_AFTER_S)

    started = world.parking.sessions.start(start)

    assert (started.replayed, started.session.held_vnd) == (False, TWO_HOURS_VND)
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_an_extension_repeated_seconds_after_its_worker_died_holds_the_difference_once(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = world.start(hours=2).session
    later = Payment(paid_until=session.paid_until + timedelta(hours=1))
    dying_once(world, monkeypatch)
    with pytest.raises(WorkerDied):
        world.parking.sessions.extend(session.id, "ext-1", later)
    world.clock.advance(RETRY_AFTER_S)

    extended = world.parking.sessions.extend(session.id, "ext-1", later)

    assert extended.held_vnd == THREE_HOURS_VND
    assert world.balance() == (BALANCE_VND, THREE_HOURS_VND)


def test_a_start_refused_for_an_open_plate_releases_the_hold_an_earlier_attempt_left(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = request(world, "app-late")
    dying_once(world, monkeypatch)
    with pytest.raises(WorkerDied):
        world.parking.sessions.start(late)
    first = world.start(start_id="app-first").session
    assert world.balance() == (BALANCE_VND, 2 * TWO_HOURS_VND)

    with pytest.raises(SessionAlreadyOpen) as refused:
        world.parking.sessions.start(late)

    assert refused.value.session_id == first.id
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_start_refused_for_an_open_plate_with_no_earlier_attempt_holds_nothing(
    world: ParkingWorld,
) -> None:
    world.start(start_id="app-first")

    with pytest.raises(SessionAlreadyOpen):
        world.parking.sessions.start(request(world, "app-second"))

    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_copy_of_a_start_that_finds_its_twin_saved_between_its_reads_is_a_repeat(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = request(world, "app-1")
    first = world.parking.sessions.start(start)
    # The copy looks for its session twice (before the hold, and in its save attempt) while
    # the twin has not saved it yet; the plate it reads next has it open.
    store = world.parking.store
    get_or_none = store.get_or_none
    hidden = [first.session.id, first.session.id]

    def not_yet(aggregate_id: Any) -> Any:
        if aggregate_id in hidden:
            hidden.remove(aggregate_id)
            return None
        return get_or_none(aggregate_id)

    monkeypatch.setattr(store, "get_or_none", not_yet)

    copy = world.parking.sessions.start(start)

    assert (copy.replayed, copy.session.id) == (True, first.session.id)
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def committing_first(world: ParkingWorld, monkeypatch: pytest.MonkeyPatch, session: Any) -> None:
    """Another worker ends `session` (end id `end-1`) just before this one reads its plate."""
    repository = world.parking.store.repository
    get = repository.get
    plate_id = PlateAtLot.create_id(session.lot_id, session.plate)
    twin: list[Ended] = []

    def get_after_the_twin(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        if aggregate_id == plate_id and not twin:
            monkeypatch.setattr(repository, "get", get)
            twin.append(world.parking.ending.end(session.id, "end-1", EndedBy.APP))
        return get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(repository, "get", get_after_the_twin)


def test_an_end_whose_twin_commits_while_it_reads_is_the_same_end(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = world.start(hours=2).session
    world.clock.advance(600)
    committing_first(world, monkeypatch, session)

    ended = world.parking.ending.end(session.id, "end-1", EndedBy.APP)

    assert ended.record.fee_vnd == ONE_HOUR_VND
    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND, 0)


def test_an_extension_meeting_an_end_committed_while_it_reads_is_refused_and_holds_nothing(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = world.start(hours=2).session
    world.clock.advance(600)
    later = Payment(paid_until=session.paid_until + timedelta(hours=1))
    committing_first(world, monkeypatch, session)

    with pytest.raises(SessionEnded):
        world.parking.sessions.extend(session.id, "ext-1", later)

    assert world.balance() == (BALANCE_VND - ONE_HOUR_VND, 0)
