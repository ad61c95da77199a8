"""Group commit: many threads hand in one item each; one writer commits them together.

A gate's online check is one tap, and one durable transaction per tap caps a process at a few
hundred taps a second, all waiting on the same table lock and disk flush. Here each request
thread does its own work first (parsing, verifying signatures) and then hands its item to the
writer thread, which takes everything that queued up while its last transaction ran and
commits it as one. Under light load a group is one item and costs one transaction, as before;
under heavy load the groups grow, so commits per second stay flat while items per second rise.

Callers on an event loop wait on the loop's own futures, and the writer settles a whole group
with one call into each loop: a thread's future per item would cost a lock, a condition and a
wake-up of the loop for every item.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeAlias, TypeVar

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.invariants import require

T = TypeVar("T")
R = TypeVar("R")

# How long a request waits for its group's commit before it is answered 503.
GROUP_WAIT_S = 10.0


class GroupCommitBusy(DomainError):
    code = "writer_busy"

    def __init__(self) -> None:
        super().__init__(f"the write did not complete within {GROUP_WAIT_S:.0f} s; send it again")


class GroupCommit(Generic[T, R]):
    """Commits items from many threads in groups of at most `group_max`, in arrival order.

    `commit` gets a group and returns one result per item, in order; if it raises, every
    item of that group gets the exception.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[T]], Sequence[R]],
        *,
        group_max: int,
        name: str,
        wait_s: float = GROUP_WAIT_S,
    ) -> None:
        require(group_max >= 1, "a group holds at least one item")
        self._commit = commit
        self._group_max = group_max
        self._wait_s = wait_s
        self._queue: queue.SimpleQueue[tuple[T, _Waiter[R]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._name = name

    def submit(self, item: T) -> R:
        """Commits `item` with whatever else is waiting; returns its result or raises."""
        try:
            return self._enqueue(item).result(self._wait_s)
        except FutureTimeout:
            raise GroupCommitBusy from None

    async def submit_async(self, item: T) -> R:
        """`submit` for an event loop: the loop serves other requests while the group commits.
        An item whose caller gave up before its group began is not committed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[R] = loop.create_future()
        self._hand_in(item, _LoopWaiter(loop, waiter))
        try:
            # `asyncio.timeout` rather than `wait_for`, which would start a task per item.
            async with asyncio.timeout(self._wait_s):
                return await waiter  # cancelled on timeout, so the writer leaves it out
        except TimeoutError:
            raise GroupCommitBusy from None

    def _enqueue(self, item: T) -> Future[R]:
        future: Future[R] = Future()
        self._hand_in(item, future)
        return future

    def _hand_in(self, item: T, waiter: _Waiter[R]) -> None:
        self._ensure_writer()
        self._queue.put((item, waiter))

    def waiting(self) -> int:
        """Items handed in and not yet taken into a group (approximate, for monitoring)."""
        return self._queue.qsize()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_writer(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            require(not self._closed, "a closed group commit takes no items")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self._group_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            self._commit_group(group)

    def _commit_group(self, waiting: list[tuple[T, _Waiter[R]]]) -> None:
        # From here on a caller can no longer cancel; one that already did is left out.
        group = [(item, w) for item, w in waiting if _begin(w)]
        if not group:
            return
        waiters = [w for _, w in group]
        try:
            results = self._commit([item for item, _ in group])
        except BaseException as error:  # handed to every waiting request
            _settle(waiters, [_Failed(error)] * len(waiters))
            return
        require(len(results) == len(group), "one result per item")
        _settle(waiters, list(results))


class _LoopWaiter(Generic[R]):
    """A caller on an event loop, waiting on a future of that loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[R]) -> None:
        self.loop = loop
        self.future = future


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_Waiter: TypeAlias = Future[R] | _LoopWaiter[R]
_Outcome: TypeAlias = R | _Failed


def _begin(waiter: _Waiter[R]) -> bool:
    """Whether the caller still waits; a thread's future can no longer be cancelled after."""
    if isinstance(waiter, _LoopWaiter):
        # Read from the writer's thread: a caller that gives up just after is settled no more.
        return not waiter.future.cancelled()
    return waiter.set_running_or_notify_cancel()


def _settle(waiters: Sequence[_Waiter[R]], outcomes: Sequence[_Outcome[R]]) -> None:
    """Hands each waiter its outcome: threads' futures one by one, and each event loop's
    callers in one call made on that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], _Outcome[R]]]] = {}
    for waiter, outcome in zip(waiters, outcomes, strict=True):
        if isinstance(waiter, _LoopWaiter):
            by_loop.setdefault(waiter.loop, []).append((waiter.future, outcome))
        elif isinstance(outcome, _Failed):
            waiter.set_exception(outcome.error)
        else:
            waiter.set_result(outcome)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
            loop.call_soon_threadsafe(_settle_on_loop, settled)


def _settle_on_loop(settled: list[tuple[asyncio.Future[R], _Outcome[R]]]) -> None:
    for future, outcome in settled:
        if future.done():  # its caller gave up meanwhile
            continue
        if isinstance(outcome, _Failed):
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome)
