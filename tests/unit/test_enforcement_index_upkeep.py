"""The enforcement index kept up with the parking store: written after every commit, built and
repaired by its follower, and trusted only while known complete. On the embedded default (the
index in process memory)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from parking.adapters.enforcement_index_memory import MemoryEnforcementIndex
from parking.application.enforcement import Verdict
from parking.application.index_upkeep import IndexFollower, IndexWriter
from parking.application.sessions import Payment
from parking.application.store import ParkingStore
from parking.domain.enforcement import EnforcementStatus
from parking.domain.enforcement_index import (
    INDEX_CLOCK_MARGIN_MS,
    INDEX_ENTRY_TTL_MS,
    INDEX_RENEW_AFTER_MS,
    IndexCursor,
    IndexEntry,
    IndexUnavailable,
    entries_of,
    marker_ttl_ms,
)
from parking.domain.occupancy import PlateAtLot, opened_plate
from parking.domain.session import EndedBy
from tests.builders.parking import (
    DONG_DA_LOT,
    MORNING,
    OTHER_PLATE,
    PLATE,
    ParkingWorld,
    parking_world,
)

NEVER_SEEN_PLATE = "51F-999.99"
REPAIR_DEADLINE_S = 10.0
POLL_S = 0.02


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        yield built


def indexed(world: ParkingWorld, plate: str, lot_id: str = DONG_DA_LOT) -> Verdict | None:
    return asyncio.run(world.parking.enforcement.check_indexed(lot_id, plate))


def from_store(world: ParkingWorld, plate: str, lot_id: str = DONG_DA_LOT) -> Verdict:
    return world.parking.enforcement.check(lot_id, plate)


def index_of(world: ParkingWorld) -> MemoryEnforcementIndex:
    index = world.parking.enforcement.index
    assert isinstance(index, MemoryEnforcementIndex)
    return index


def built(world: ParkingWorld) -> None:
    """The index built by its follower, and the lot known to the checking process."""
    world.parking.index_follower.catch_up()
    from_store(world, NEVER_SEEN_PLATE)


def test_a_check_reads_the_store_until_the_follower_has_built_the_index(
    world: ParkingWorld,
) -> None:
    world.start(plate=PLATE)
    from_store(world, PLATE)

    before = indexed(world, PLATE)
    world.parking.index_follower.catch_up()
    after = indexed(world, PLATE)

    assert before is None
    assert after == from_store(world, PLATE)
    assert after is not None
    assert after.status is EnforcementStatus.PAID


def test_the_index_answers_as_the_store_for_paid_expired_and_unpaid(world: ParkingWorld) -> None:
    world.start(plate=PLATE, hours=1)
    ended = world.start(plate=OTHER_PLATE, hours=3).session
    world.parking.ending.end(ended.id, "end-1", EndedBy.APP)
    built(world)
    plates = (PLATE, OTHER_PLATE, NEVER_SEEN_PLATE, "29a 12345")

    now = [(indexed(world, plate), from_store(world, plate)) for plate in plates]
    world.clock.advance(2 * 3600)
    later = [(indexed(world, plate), from_store(world, plate)) for plate in plates]

    assert all(index == store for index, store in now + later)
    assert [store.status for _, store in now] == [
        EnforcementStatus.PAID,
        EnforcementStatus.UNPAID,
        EnforcementStatus.UNPAID,
        EnforcementStatus.PAID,
    ]
    assert later[0][0] is not None
    assert later[0][0].status is EnforcementStatus.EXPIRED


def test_an_unknown_lot_and_an_unreadable_plate_are_left_to_the_store_or_refused(
    world: ParkingWorld,
) -> None:
    built(world)

    unknown_lot = indexed(world, PLATE, lot_id="no-such-lot")

    assert unknown_lot is None
    with pytest.raises(Exception, match="plate") as refused:
        indexed(world, "not a plate")
    with pytest.raises(type(refused.value)):
        from_store(world, "not a plate")


def test_a_session_started_extended_and_ended_is_seen_as_soon_as_its_use_case_returns(
    world: ParkingWorld,
) -> None:
    built(world)

    session = world.start(plate=PLATE, hours=1).session
    started = indexed(world, PLATE)
    paid_until = world.clock() + timedelta(hours=3)
    world.parking.sessions.extend(session.id, "ext-1", Payment(paid_until=paid_until))
    extended = indexed(world, PLATE)
    world.parking.ending.end(session.id, "end-1", EndedBy.APP)
    ended = indexed(world, PLATE)

    assert started is not None
    assert (started.status, started.session_id) == (EnforcementStatus.PAID, session.id)
    assert extended is not None
    assert extended.paid_until == paid_until
    assert ended is not None
    assert (ended.status, ended.session_id, ended.paid_until) == (
        EnforcementStatus.UNPAID,
        None,
        None,
    )


def test_the_follower_repairs_a_commit_whose_index_write_was_lost(world: ParkingWorld) -> None:
    built(world)
    store = world.parking.store
    # A process that died between its commit and its index write.
    store.after_events[:] = [
        hook for hook in store.after_events if not isinstance(hook, IndexWriter)
    ]
    session = world.start(plate=PLATE).session
    missed = indexed(world, PLATE)
    stop = threading.Event()
    follower = threading.Thread(target=world.parking.index_follower.run, args=(stop,))
    follower.start()
    try:
        repaired = wait_for(lambda: indexed(world, PLATE), lambda v: v.session_id == session.id)
    finally:
        stop.set()
        follower.join()

    assert missed is not None
    assert missed.status is EnforcementStatus.UNPAID
    assert repaired.status is EnforcementStatus.PAID


def test_a_lost_index_is_never_taken_as_unpaid_and_is_built_again(world: ParkingWorld) -> None:
    built(world)
    session = world.start(plate=PLATE).session

    index_of(world).flush()
    cold = indexed(world, PLATE)
    store_answer = from_store(world, PLATE)
    world.parking.index_follower.catch_up()
    rebuilt = indexed(world, PLATE)

    assert cold is None
    assert (store_answer.status, store_answer.session_id) == (EnforcementStatus.PAID, session.id)
    assert rebuilt == store_answer


class FailingIndex(MemoryEnforcementIndex):
    def put(self, entries: Iterable[IndexEntry]) -> None:  # noqa: ARG002
        raise IndexUnavailable("the test's index refuses writes")


def test_an_index_write_that_fails_makes_the_index_cold_not_wrong() -> None:
    index = FailingIndex()
    assert index.move_cursor(None, IndexCursor(5, 0), marker_ttl_ms=60_000)
    opened = PlateAtLot("lot", "29A12345")

    IndexWriter(index)(opened.collect_events())

    assert not index.read_now(opened.id).complete
    assert index.cursor() is None


def test_the_follower_starts_a_new_pass_when_the_last_is_old_and_keeps_the_marker_meanwhile(
    world: ParkingWorld,
) -> None:
    now_ms = [10**12]
    index = index_of(world)
    follower = IndexFollower(world.parking.store, index, now_ms=lambda: now_ms[0], section_size=1)
    world.start(plate=PLATE)
    world.start(plate=OTHER_PLATE)
    follower.catch_up()
    first = index.cursor()

    now_ms[0] += INDEX_RENEW_AFTER_MS
    follower.pull()
    renewing = index.cursor()
    complete_meanwhile = index.read_now(UUID(int=1)).complete
    follower.catch_up()

    assert first is not None
    assert renewing is not None
    assert renewing.pass_started_ms == now_ms[0]
    assert 0 < renewing.position < first.position
    assert complete_meanwhile
    assert index.cursor() == IndexCursor(first.position, now_ms[0])


def test_a_marker_never_outlives_an_entry_written_since_its_pass_started() -> None:
    cursor = IndexCursor(10, pass_started_ms=1_000)

    at_start = marker_ttl_ms(cursor, 1_000)
    a_day_later = marker_ttl_ms(cursor, 1_000 + 24 * 3600 * 1000)
    too_late = marker_ttl_ms(cursor, 1_000 + INDEX_ENTRY_TTL_MS)

    assert at_start == INDEX_ENTRY_TTL_MS - INDEX_CLOCK_MARGIN_MS
    assert 1_000 + 24 * 3600 * 1000 + a_day_later < 1_000 + INDEX_ENTRY_TTL_MS
    assert too_late == 0
    assert INDEX_RENEW_AFTER_MS < INDEX_ENTRY_TTL_MS - INDEX_CLOCK_MARGIN_MS


def test_each_plate_event_gives_the_whole_answer_after_it() -> None:
    plate = PlateAtLot("lot", "29A12345")
    session_id = UUID(int=7)
    start = MORNING
    plate.open(session_id, start)
    plate.pay_until(session_id, start + timedelta(hours=1))
    plate.close(session_id)

    entries = entries_of([object(), *plate.collect_events()])

    assert [(e.version, e.session_id, e.paid_until) for e in entries] == [
        (1, None, None),
        (2, session_id, start),
        (3, session_id, start + timedelta(hours=1)),
        (4, None, None),
    ]
    assert {e.plate_id for e in entries} == {plate.id}


def test_a_plate_first_seen_with_its_session_open_is_one_event_giving_that_session() -> None:
    session_id = UUID(int=7)
    plate = opened_plate(None, "lot", "29A12345", session_id, MORNING)

    events = plate.collect_events()

    assert [type(e) for e in events] == [PlateAtLot.Seen]
    assert [(e.version, e.session_id, e.paid_until) for e in entries_of(events)] == [
        (1, session_id, MORNING)
    ]


def test_a_first_sighting_stored_before_it_could_open_a_session_reads_as_none_open() -> None:
    store = ParkingStore()
    seen = PlateAtLot("lot", "29A12345").collect_events()
    stored = store.mapper.to_stored_event(seen[0])
    earlier = json.loads(stored.state)
    del earlier["session_id"], earlier["paid_until"]
    written_then = dataclasses.replace(stored, state=json.dumps(earlier).encode())

    event = store.mapper.to_domain_event(written_then)
    assert isinstance(event, PlateAtLot.Seen)
    plate = event.mutate(None)

    assert isinstance(plate, PlateAtLot)
    assert (plate.session_id, plate.paid_until) == (None, None)
    assert [(e.session_id, e.paid_until) for e in entries_of([event])] == [(None, None)]


def wait_for(read: Callable[[], Verdict | None], done: Callable[[Verdict], bool]) -> Verdict:
    """The first answer of `read` that is `done`, asked again until a deadline."""
    deadline = time.monotonic() + REPAIR_DEADLINE_S
    while True:
        value = read()
        if value is not None and done(value):
            return value
        assert time.monotonic() < deadline, f"not repaired within {REPAIR_DEADLINE_S} s: {value}"
        time.sleep(POLL_S)
