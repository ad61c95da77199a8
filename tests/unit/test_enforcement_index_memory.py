"""The enforcement index contract on the in-process adapter, with a clock the test moves."""

from __future__ import annotations

import uuid

import pytest

from parking.adapters.enforcement_index_memory import MemoryEnforcementIndex
from parking.domain.enforcement_index import (
    INDEX_ENTRY_TTL_MS,
    EnforcementIndex,
    IndexCursor,
    IndexUnavailable,
)
from tests.enforcement_index_contract import EnforcementIndexContract, closed, opened, read


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms


class TestMemoryEnforcementIndex(EnforcementIndexContract):
    clock: Clock

    @pytest.fixture
    def index(self) -> EnforcementIndex:
        self.clock = Clock()
        return MemoryEnforcementIndex(now_ms=self.clock)

    def let_time_pass(self, ms: int) -> None:
        self.clock.now_ms += ms


def test_an_entry_lives_an_entry_lifetime_from_its_last_write() -> None:
    clock = Clock()
    index = MemoryEnforcementIndex(now_ms=clock)
    plate_id = uuid.uuid4()
    index.put([opened(plate_id, 2)])
    clock.now_ms += INDEX_ENTRY_TTL_MS - 1
    index.put([opened(plate_id, 2)])

    clock.now_ms += INDEX_ENTRY_TTL_MS - 1
    still = read(index, plate_id).entry
    clock.now_ms += 1
    gone = read(index, plate_id).entry

    assert (still is not None, gone) == (True, None)


def test_an_expired_entry_does_not_keep_an_older_version_out() -> None:
    clock = Clock()
    index = MemoryEnforcementIndex(now_ms=clock)
    plate_id = uuid.uuid4()
    index.put([closed(plate_id, 5)])
    clock.now_ms += INDEX_ENTRY_TTL_MS
    older = opened(plate_id, 2)

    index.put([older])

    assert read(index, plate_id).entry == older


def test_a_full_index_refuses_a_new_entry_rather_than_drop_a_live_one() -> None:
    index = MemoryEnforcementIndex(entries_max=2)
    kept = [opened(uuid.uuid4(), 2), opened(uuid.uuid4(), 2)]
    index.put(kept)

    with pytest.raises(IndexUnavailable):
        index.put([opened(uuid.uuid4(), 2)])

    assert [read(index, entry.plate_id).entry for entry in kept] == kept


def test_a_flush_loses_entries_marker_and_cursor_together() -> None:
    index = MemoryEnforcementIndex()
    plate_id = uuid.uuid4()
    index.put([opened(plate_id, 2)])
    index.move_cursor(None, IndexCursor(3, 0), marker_ttl_ms=60_000)

    index.flush()

    assert (read(index, plate_id).complete, read(index, plate_id).entry) == (False, None)
    assert index.cursor() is None
