"""The enforcement index on Redis, shared by two workers on one PostgreSQL database: what one
writes, the other's checks see at once; a lost write is repaired; a flush is rebuilt."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from parking.adapters.enforcement_index_memory import MemoryEnforcementIndex
from parking.application.enforcement import Verdict
from parking.application.index_upkeep import IndexWriter
from parking.application.sessions import Payment
from parking.domain.enforcement import EnforcementStatus
from parking.domain.session import EndedBy
from tapledger.bootstrap import Container, bootstrap
from tapledger.parking_index import enforcement_index_prefix
from tests.integration.conftest import DatabaseFactory, settings_for
from tests.integration.test_parking_postgres import LOT, funded_account, start_request, workers
from tests.services import delete_redis_keys_under

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

__all__ = ["workers"]  # the fixture: two containers on one database, with a lot

PLATE = "29A-246.80"
REPAIR_DEADLINE_S = 10.0
POLL_S = 0.02

Workers = tuple[Container, Container]


@pytest.fixture
def redis_keys(postgres_database_url: str, tmp_path: Path) -> Iterator[str]:
    """The prefix of this database's index in Redis; its keys deleted afterwards."""
    settings = settings_for(tmp_path, postgres_database_url)
    engine = create_engine(settings.read_model_url())
    try:
        prefix = enforcement_index_prefix(settings, engine)
    finally:
        engine.dispose()
    yield prefix
    delete_redis_keys_under(prefix)


def indexed(container: Container, plate: str = PLATE) -> Verdict | None:
    return asyncio.run(container.parking.enforcement.check_indexed(LOT, plate))


def built(container: Container) -> None:
    container.parking.index_follower.catch_up()
    container.parking.enforcement.check(LOT, "30E-111.11")  # the lot, known to this worker


@pytest.mark.usefixtures("redis_keys")
def test_a_session_written_by_one_worker_is_seen_by_the_others_checks_at_once(
    workers: Workers,
) -> None:
    writer, officer = workers
    built(officer)
    account_id = funded_account(writer)

    session = writer.parking.sessions.start(start_request("rw-start", PLATE, account_id)).session
    started = indexed(officer)
    paid_until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4)
    writer.parking.sessions.extend(session.id, "rw-extend", Payment(paid_until=paid_until))
    extended = indexed(officer)
    writer.parking.ending.end(session.id, "rw-end", EndedBy.APP)
    ended = indexed(officer)

    assert started is not None
    assert (started.status, started.session_id) == (EnforcementStatus.PAID, session.id)
    assert extended is not None
    assert extended.paid_until == paid_until
    assert ended == officer.parking.enforcement.check(LOT, PLATE)
    assert ended.status is EnforcementStatus.UNPAID


@pytest.mark.usefixtures("redis_keys")
def test_the_follower_repairs_a_worker_that_committed_without_writing_the_index(
    workers: Workers,
) -> None:
    crashed, officer = workers
    built(officer)
    hooks = crashed.parking.store.after_events
    hooks[:] = [hook for hook in hooks if not isinstance(hook, IndexWriter)]

    session = crashed.parking.sessions.start(
        start_request("lost-write", PLATE, funded_account(crashed))
    ).session
    missed = indexed(officer)
    stop = threading.Event()
    follower = threading.Thread(target=officer.parking.index_follower.run, args=(stop,))
    follower.start()
    try:
        deadline = time.monotonic() + REPAIR_DEADLINE_S
        while (repaired := indexed(officer)) is None or repaired.session_id != session.id:
            assert time.monotonic() < deadline, f"not repaired in {REPAIR_DEADLINE_S} s"
            time.sleep(POLL_S)
    finally:
        stop.set()
        follower.join()

    assert missed is not None
    assert missed.status is EnforcementStatus.UNPAID
    assert repaired.status is EnforcementStatus.PAID


def test_a_flushed_index_sends_checks_to_the_store_until_a_pass_rebuilds_it(
    workers: Workers, redis_keys: str
) -> None:
    writer, officer = workers
    built(officer)
    session = writer.parking.sessions.start(
        start_request("flushed", PLATE, funded_account(writer))
    ).session

    delete_redis_keys_under(redis_keys)  # FLUSHDB, for this database's keys only
    cold = indexed(officer)
    from_store = officer.parking.enforcement.check(LOT, PLATE)
    writer.parking.index_follower.catch_up()
    rebuilt = indexed(officer)

    assert cold is None
    assert (from_store.status, from_store.session_id) == (EnforcementStatus.PAID, session.id)
    assert rebuilt == from_store


def test_a_worker_without_redis_settings_keeps_its_index_in_memory(
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, postgres_database_url).model_copy(
        update={"redis_url": None, "follow_in_process": False}
    )
    container = bootstrap(settings)
    try:
        assert isinstance(container.parking.enforcement.index, MemoryEnforcementIndex)
    finally:
        container.close()


def test_a_database_created_again_under_the_same_name_gets_an_index_of_its_own(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    def prefix_of(url: str) -> str:
        engine = create_engine(settings_for(tmp_path, url).read_model_url())
        try:
            return enforcement_index_prefix(settings_for(tmp_path, url), engine)
        finally:
            engine.dispose()

    url = database_factory.create()
    first = prefix_of(url)
    database_factory.drop(url)
    name = make_url(url).database
    assert name is not None
    again = database_factory.create(name)
    try:
        second = prefix_of(again)
    finally:
        database_factory.drop(again)

    assert again == url
    assert first != second
