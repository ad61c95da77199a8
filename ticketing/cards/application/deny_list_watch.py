"""Waiting for the deny list to change: the long poll that brings a blocked card to every
online validator within seconds (`GET /v1/deny-list?since=V&wait_s=25`).

Why a long poll and not server-sent events or a broker: it is the same request a device already
makes, answered later; it passes every proxy and load balancer that passes the rest of the API;
a device that loses the link simply asks again with the version it holds, so nothing needs
replaying; and it adds no service (the news travels on the invalidation channel that already
carries revocations: PostgreSQL LISTEN/NOTIFY between worker processes, in-process on SQLite).

A waiting request holds no thread: it awaits an `asyncio.Event`. The head of the deny list (the
version of its newest entry) is read at most once per `DENY_RECHECK_S` per process, however
many devices wait, and at once when a `CardDenied` (or a lost channel) says it moved. The news
can arrive before the card follower has written the entry; the recheck then finds it a moment
later. The recheck is also what serves a block whose news was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable

from ticketing.cards.application.invalidation import CardDenied, Invalidation, MessagesMayBeLost

# The longest a request waits: under the devices' 30 s read timeout and common proxies' 60 s.
DENY_WAIT_S_MAX = 25
# How often a process reads the deny list's head while requests wait, news or not.
DENY_RECHECK_S = 0.5

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class DenyListWatch:
    """Wakes long-polling requests when the deny list gains an entry."""

    def __init__(
        self,
        head: Callable[[], int],
        *,
        recheck_s: float = DENY_RECHECK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_head = head
        self._recheck_s = recheck_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._waiters: set[_Waiter] = set()
        self._head = 0
        self._checked_at: float | None = None
        self._stale = True

    def on_invalidation(self, message: Invalidation) -> None:
        """The invalidation channel's subscriber: a denied card, or news that may be lost."""
        if isinstance(message, CardDenied | MessagesMayBeLost):
            self.changed()

    def changed(self) -> None:
        """The deny list may have moved: every waiting request reads its head again now."""
        self._stale = True
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def wait_past(
        self, since: int, wait_s: float, *, gone: Callable[[], Awaitable[bool]] | None = None
    ) -> int:
        """Returns the head as soon as it is past `since`, or after `wait_s` whatever it is, or
        as soon as `gone` says the client left (checked at each recheck), so a device that
        hung up holds nothing open."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        waiter: _Waiter = (loop, asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            while True:
                waiter[1].clear()
                head = self._fresh_head()
                if head is None:
                    head = await asyncio.to_thread(self.refresh)
                remaining = deadline - loop.time()
                if head > since or remaining <= 0 or (gone is not None and await gone()):
                    return head
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), min(remaining, self._recheck_s))
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def refresh(self) -> int:
        """Reads the head (once, for all the requests asking together) unless it is fresh."""
        with self._refresh_lock:
            head = self._fresh_head()
            if head is not None:
                return head
            # Cleared before reading, so news arriving during the read marks it stale again.
            self._stale = False
            self._head = self._read_head()
            self._checked_at = self._monotonic()
            return self._head

    def _fresh_head(self) -> int | None:
        checked_at = self._checked_at
        if self._stale or checked_at is None:
            return None
        if self._monotonic() - checked_at >= self._recheck_s:
            return None
        return self._head
