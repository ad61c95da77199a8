"""What every enforcement index adapter promises, written once and run against each: a test
module subclasses `EnforcementIndexContract` as `Test...` and overrides the `index` fixture
and `let_time_pass`."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from parking.domain.enforcement_index import (
    EnforcementIndex,
    IndexCursor,
    IndexEntry,
    IndexRead,
)

PAID_UNTIL = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MARKER_TTL_MS = 60_000
SHORT_MARKER_TTL_MS = 150
WRITER_THREADS = 8
VERSIONS = 200


def read(index: EnforcementIndex, plate_id: UUID) -> IndexRead:
    return asyncio.run(index.read(plate_id))


def opened(plate_id: UUID, version: int, hours: int = 2) -> IndexEntry:
    return IndexEntry(plate_id, version, uuid.uuid4(), PAID_UNTIL + timedelta(hours=hours))


def closed(plate_id: UUID, version: int) -> IndexEntry:
    return IndexEntry(plate_id, version, None, None)


def mark_complete(index: EnforcementIndex, ttl_ms: int = MARKER_TTL_MS) -> None:
    assert index.move_cursor(index.cursor(), IndexCursor(1, 0), marker_ttl_ms=ttl_ms)


class EnforcementIndexContract:
    @pytest.fixture
    def index(self) -> EnforcementIndex:
        raise NotImplementedError

    def let_time_pass(self, ms: int) -> None:
        raise NotImplementedError

    def test_an_entry_is_read_back_as_written(self, index: EnforcementIndex) -> None:
        plate_id = uuid.uuid4()
        entry = opened(plate_id, 2)

        index.put([entry])

        assert read(index, plate_id).entry == entry

    def test_an_older_version_never_replaces_a_newer_one(self, index: EnforcementIndex) -> None:
        plate_id = uuid.uuid4()
        newer = closed(plate_id, 3)

        index.put([newer])
        index.put([opened(plate_id, 2)])

        assert read(index, plate_id).entry == newer

    def test_a_newer_or_equal_version_replaces_the_stored_one(
        self, index: EnforcementIndex
    ) -> None:
        plate_id = uuid.uuid4()
        index.put([opened(plate_id, 2, hours=1)])
        extended = opened(plate_id, 3, hours=3)

        index.put([extended])
        index.put([extended])

        assert read(index, plate_id).entry == extended

    def test_entries_of_one_put_apply_in_order(self, index: EnforcementIndex) -> None:
        plate_id = uuid.uuid4()
        last = opened(plate_id, 2)

        index.put([closed(plate_id, 1), last])

        assert read(index, plate_id).entry == last

    def test_the_highest_version_wins_whatever_order_writers_arrive_in(
        self, index: EnforcementIndex
    ) -> None:
        plate_id = uuid.uuid4()
        versions = list(range(1, VERSIONS + 1))
        random.shuffle(versions)
        shares = [versions[i::WRITER_THREADS] for i in range(WRITER_THREADS)]

        def write(share: list[int]) -> None:
            for version in share:
                index.put([closed(plate_id, version)])

        threads = [threading.Thread(target=write, args=(share,)) for share in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        found = read(index, plate_id).entry
        assert found is not None
        assert found.version == VERSIONS

    def test_an_index_is_not_complete_until_its_marker_is_written(
        self, index: EnforcementIndex
    ) -> None:
        plate_id = uuid.uuid4()
        index.put([opened(plate_id, 2)])

        before = read(index, plate_id)
        mark_complete(index)
        after = read(index, plate_id)

        assert (before.complete, after.complete) == (False, True)
        assert before.entry == after.entry

    def test_the_cursor_moves_only_from_the_cursor_expected(self, index: EnforcementIndex) -> None:
        first, second = IndexCursor(0, 1_000), IndexCursor(10, 1_000)

        assert index.move_cursor(None, first, marker_ttl_ms=0)
        assert not index.move_cursor(None, second, marker_ttl_ms=MARKER_TTL_MS)
        assert not index.move_cursor(IndexCursor(5, 1_000), second, marker_ttl_ms=0)
        assert index.cursor() == first
        assert not read(index, uuid.uuid4()).complete

        assert index.move_cursor(first, second, marker_ttl_ms=0)
        assert index.cursor() == second

    def test_forgetting_removes_the_marker_and_the_cursor_but_no_entry(
        self, index: EnforcementIndex
    ) -> None:
        plate_id = uuid.uuid4()
        entry = opened(plate_id, 2)
        index.put([entry])
        mark_complete(index)

        index.forget()

        assert index.cursor() is None
        assert read(index, plate_id) == IndexRead(complete=False, entry=entry)

    def test_the_marker_expires_after_its_ttl(self, index: EnforcementIndex) -> None:
        mark_complete(index, SHORT_MARKER_TTL_MS)
        assert read(index, uuid.uuid4()).complete

        self.let_time_pass(SHORT_MARKER_TTL_MS)

        assert not read(index, uuid.uuid4()).complete
