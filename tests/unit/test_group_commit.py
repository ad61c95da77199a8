"""Group commit: items handed in by many threads are committed together, each caller gets its own
result, and a failed group fails every one of its callers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from ticketing.shared.group_commit import GroupCommit, GroupCommitBusy

CALLERS = 40
JOIN_TIMEOUT_S = 30.0
GROUP_MAX = 7
WAITING_POLL_S = 0.01


class Store:
    """Commits by doubling each item, holding every group until a test lets it go."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.committing = threading.Event()

    def commit(self, items: Sequence[int]) -> list[int]:
        self.committing.set()
        self.gate.wait(JOIN_TIMEOUT_S)
        self.groups.append(list(items))
        return [2 * item for item in items]


def wait_for_waiting(writer: GroupCommit[int, int], count: int) -> None:
    """Until at least `count` callers wait for the group being committed, at most
    `JOIN_TIMEOUT_S`."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while writer.waiting() < count:
        assert time.monotonic() < deadline, f"{writer.waiting()} callers waiting, not {count}"
        time.sleep(WAITING_POLL_S)


def submit_from_threads(writer: GroupCommit[int, int], items: list[int]) -> dict[int, int]:
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def call(item: int) -> None:
        answer = writer.submit(item)
        with lock:
            answers[item] = answer

    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    return answers


def test_every_caller_gets_its_own_result() -> None:
    store = Store()
    writer = GroupCommit(store.commit, group_max=500, name="test")
    try:
        answers = submit_from_threads(writer, list(range(CALLERS)))
    finally:
        writer.close()
    assert answers == {item: 2 * item for item in range(CALLERS)}
    assert sorted(item for group in store.groups for item in group) == list(range(CALLERS))


def test_items_waiting_during_a_commit_are_committed_together() -> None:
    store = Store()
    store.gate.clear()  # the first group's commit waits until every other caller has queued
    writer = GroupCommit(store.commit, group_max=500, name="test")
    try:
        first = threading.Thread(target=writer.submit, args=(0,))
        first.start()
        assert store.committing.wait(JOIN_TIMEOUT_S)
        others = threading.Thread(
            target=submit_from_threads, args=(writer, list(range(1, CALLERS)))
        )
        others.start()
        wait_for_waiting(writer, CALLERS - 1)
        store.gate.set()
        first.join(JOIN_TIMEOUT_S)
        others.join(JOIN_TIMEOUT_S)
    finally:
        store.gate.set()
        writer.close()
    assert len(store.groups) == 2
    assert store.groups[0] == [0]
    assert sorted(store.groups[1]) == list(range(1, CALLERS))


def test_a_group_never_exceeds_its_maximum() -> None:
    store = Store()
    store.gate.clear()
    writer = GroupCommit(store.commit, group_max=GROUP_MAX, name="test")
    try:
        runner = threading.Thread(target=submit_from_threads, args=(writer, list(range(CALLERS))))
        runner.start()
        # Released once more callers wait than one group may hold, however slow the machine.
        wait_for_waiting(writer, CALLERS - GROUP_MAX)
        store.gate.set()
        runner.join(JOIN_TIMEOUT_S)
    finally:
        writer.close()
    assert max(len(group) for group in store.groups) <= GROUP_MAX
    assert sum(len(group) for group in store.groups) == CALLERS


def test_a_failed_commit_fails_every_caller_of_its_group() -> None:
    def commit(items: Sequence[int]) -> list[int]:
        raise RuntimeError(f"the store is down ({len(items)} items)")

    writer = GroupCommit(commit, group_max=500, name="test")
    try:
        with pytest.raises(RuntimeError, match="the store is down"):
            writer.submit(1)
        with pytest.raises(RuntimeError, match="the store is down"):
            writer.submit(2)
    finally:
        writer.close()


def test_a_caller_that_waits_too_long_is_told_the_writer_is_busy() -> None:
    store = Store()
    store.gate.clear()
    writer = GroupCommit(store.commit, group_max=500, name="test", wait_s=0.05)
    try:
        with pytest.raises(GroupCommitBusy):
            writer.submit(1)
    finally:
        store.gate.set()
        writer.close()


def test_callers_on_an_event_loop_are_committed_together() -> None:
    store = Store()
    writer = GroupCommit(store.commit, group_max=500, name="test")

    async def main() -> list[int]:
        return list(await asyncio.gather(*(writer.submit_async(i) for i in range(CALLERS))))

    try:
        answers = asyncio.run(main())
    finally:
        writer.close()
    assert answers == [2 * i for i in range(CALLERS)]
    assert len(store.groups) < CALLERS


def test_an_async_caller_that_gave_up_before_its_group_began_is_not_committed() -> None:
    store = Store()
    store.gate.clear()
    writer = GroupCommit(store.commit, group_max=500, name="test", wait_s=0.05)

    async def main() -> None:
        blocker = asyncio.create_task(writer.submit_async(0))  # holds the writer
        assert await asyncio.to_thread(store.committing.wait, JOIN_TIMEOUT_S)
        with pytest.raises(GroupCommitBusy):
            await writer.submit_async(1)  # gives up while queued
        store.gate.set()
        with pytest.raises(GroupCommitBusy):
            await blocker

    try:
        asyncio.run(main())
        assert writer.submit(2) == 4
    finally:
        store.gate.set()
        writer.close()
    assert [item for group in store.groups for item in group] == [0, 2]


class CountingLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Event loops that count the calls other threads make into them."""

    calls = 0

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            CountingLoopPolicy.calls += 1
            return call_soon_threadsafe(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
        return loop


def test_a_group_of_callers_on_one_event_loop_is_answered_with_one_call_into_it() -> None:
    store = Store()
    store.gate.clear()
    writer = GroupCommit(store.commit, group_max=500, name="test")

    async def main() -> tuple[list[int], int]:
        first = asyncio.ensure_future(writer.submit_async(0))  # holds the writer
        assert await asyncio.to_thread(store.committing.wait, JOIN_TIMEOUT_S)
        rest = [asyncio.ensure_future(writer.submit_async(i)) for i in range(1, CALLERS)]
        await asyncio.sleep(0)  # every caller queued behind the first
        before = CountingLoopPolicy.calls
        store.gate.set()
        answers = list(await asyncio.gather(first, *rest))
        return answers, CountingLoopPolicy.calls - before

    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(CountingLoopPolicy())
    try:
        answers, calls = asyncio.run(main())
    finally:
        asyncio.set_event_loop_policy(policy)
        store.gate.set()
        writer.close()
    assert answers == [2 * i for i in range(CALLERS)]
    assert store.groups == [[0], list(range(1, CALLERS))]
    # One call per group, where a future per caller would make one per caller.
    assert calls == len(store.groups)


def test_a_failed_group_fails_every_caller_on_an_event_loop() -> None:
    def fail(items: Sequence[int]) -> list[int]:
        raise ConnectionResetError("the database went away")

    writer = GroupCommit(fail, group_max=500, name="test")

    async def main() -> list[BaseException | int]:
        calls = (writer.submit_async(i) for i in range(CALLERS))
        return list(await asyncio.gather(*calls, return_exceptions=True))

    try:
        outcomes = asyncio.run(main())
    finally:
        writer.close()
    assert all(isinstance(o, ConnectionResetError) for o in outcomes)
