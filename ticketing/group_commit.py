"""Group commit: many threads hand in one item each; one writer commits them together.

A gate's online check is one tap, and one durable transaction per tap caps a process at a few
hundred taps a second, all waiting on the same table lock and disk flush. Here each request
thread does its own work first (parsing, verifying signatures) and then hands its item to the
writer thread, which takes everything that queued up while its last transaction ran and
commits it as one. Under light load a group is one item and costs one transaction, as before;
under heavy load the groups grow, so commits per second stay flat while items per second rise.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

from ticketing.domain.errors import LedgerError
from ticketing.domain.invariants import require

T = TypeVar("T")
R = TypeVar("R")

# How long a request waits for its group's commit before it is answered 503.
GROUP_WAIT_S = 10.0


class GroupCommitBusy(LedgerError):
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
        self._queue: queue.SimpleQueue[tuple[T, Future[R]] | None] = queue.SimpleQueue()
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
        try:
            # `asyncio.timeout` rather than `wait_for`, which would start a task per item.
            async with asyncio.timeout(self._wait_s):
                return await asyncio.wrap_future(self._enqueue(item))
        except TimeoutError:
            raise GroupCommitBusy from None

    def _enqueue(self, item: T) -> Future[R]:
        future: Future[R] = Future()
        self._ensure_writer()
        self._queue.put((item, future))
        return future

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

    def _commit_group(self, waiting: list[tuple[T, Future[R]]]) -> None:
        # From here on a caller can no longer cancel; one that already did is left out.
        group = [(item, f) for item, f in waiting if f.set_running_or_notify_cancel()]
        if not group:
            return
        try:
            results = self._commit([item for item, _ in group])
        except BaseException as error:  # handed to every waiting request
            for _, future in group:
                future.set_exception(error)
            return
        require(len(results) == len(group), "one result per item")
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)
