"""Per-caller rate limiting in fixed windows, counted in hot state.

The count is shared by every worker through hot state, but a worker does not ask for each
request: it counts hits locally and tells the shared counter in batches, at least every
`LOCAL_TALLY_MAX_MS` and whenever it holds a `LOCAL_TALLY_SHARE`-th of the limit. A caller can
so exceed its limit by at most that share per worker (and what arrives while a batch is being
told), and a gate's taps cost no round trip and no thread hand-off each. With a small limit the
share is one hit, and every request is told.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tapledger.http.problems import problem_response
from ticketing.domain.invariants import require
from ticketing.hotstate import HotState, HotStateUnavailable, check_ttl

RATE_LIMIT_REQUESTS_MAX = 1_000_000
# A worker tells the shared count after this share of the limit, or this long, at the latest.
LOCAL_TALLY_SHARE = 100
LOCAL_TALLY_MAX_MS = 100.0
# Callers tallied in one worker; the tallies are dropped (and re-read) when there are more.
LOCAL_TALLIES_MAX = 100_000
MS_PER_S = 1000
BEARER_PREFIX = "bearer "
UNKNOWN_CLIENT = "unknown"

logger = logging.getLogger(__name__)


@dataclass
class _Tally:
    """One caller's count in this worker: the shared count as last seen, and hits since."""

    shared: int = 0
    pending: int = 0
    told_ms: float = -math.inf
    telling: int = 0  # hits on their way to the shared count


def _bucket(scope: Scope, headers: Headers) -> str:
    """The counter key for the caller: its bearer token if it has one, else its address."""
    authorization = headers.get("authorization")
    if authorization is not None:
        token = authorization
        if authorization.lower().startswith(BEARER_PREFIX):
            token = authorization[len(BEARER_PREFIX) :].strip()
        # Hashed so that no token is ever written to the hot-state store in the clear.
        return "ratelimit:token:" + hashlib.sha256(token.encode("latin-1")).hexdigest()
    client = scope.get("client")
    address = client[0] if client else UNKNOWN_CLIENT
    return "ratelimit:ip:" + hashlib.sha256(address.encode("utf-8")).hexdigest()


class RateLimitMiddleware:
    """Pure ASGI middleware allowing each caller `requests_per_window` requests per window.

    It fails open: when hot state is unavailable, requests pass uncounted. The limit protects
    capacity, not correctness, and refusing every request because Redis blinked would do more
    harm than a few minutes without limits. Idempotency, which protects correctness, fails closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hot_state: HotState,
        requests_per_window: int,
        window_ms: int,
        exempt_paths: Iterable[str] = ("/healthz",),
        monotonic_ms: Callable[[], float] = lambda: time.monotonic() * MS_PER_S,
    ) -> None:
        require(
            1 <= requests_per_window <= RATE_LIMIT_REQUESTS_MAX,
            f"requests_per_window must be 1 to {RATE_LIMIT_REQUESTS_MAX}",
        )
        check_ttl(window_ms)
        self.app = app
        self.hot_state = hot_state
        self.requests_per_window = requests_per_window
        self.window_ms = window_ms
        self.exempt_paths = frozenset(exempt_paths)
        self.tell_every = max(1, requests_per_window // LOCAL_TALLY_SHARE)
        self._tallies: dict[str, _Tally] = {}
        self._monotonic_ms = monotonic_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        bucket = _bucket(scope, Headers(scope=scope))
        try:
            count = await self._count(bucket)
            limited = count > self.requests_per_window
            retry_after_s = await self._retry_after_s(bucket) if limited else None
        except HotStateUnavailable:
            logger.warning("hot state unavailable; letting a request through without a limit")
            await self.app(scope, receive, send)
            return
        limit_headers = {
            "X-RateLimit-Limit": str(self.requests_per_window),
            "X-RateLimit-Remaining": str(max(0, self.requests_per_window - count)),
        }
        if retry_after_s is not None:
            detail = f"more than {self.requests_per_window} requests in {self.window_ms} ms"
            headers = {**limit_headers, "Retry-After": str(retry_after_s)}
            response = problem_response(429, "rate_limited", detail, headers=headers)
            await response(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(limit_headers)
            await send(message)

        await self.app(scope, receive, send_with_limits)

    async def _count(self, bucket: str) -> int:
        """The caller's count in this window, this request included.

        While one request tells the shared count, the others of the same caller count locally
        instead of each telling it too: under load a round trip takes longest, and every
        request arriving during it would otherwise add one more."""
        tally = self._tallies.get(bucket)
        if tally is None:
            if len(self._tallies) >= LOCAL_TALLIES_MAX:
                self._tallies.clear()
            tally = self._tallies[bucket] = _Tally()
        tally.pending += 1
        now_ms = self._monotonic_ms()
        due = tally.pending >= self.tell_every or now_ms - tally.told_ms >= LOCAL_TALLY_MAX_MS
        if tally.telling or not due:
            return tally.shared + tally.telling + tally.pending
        hits, tally.pending = tally.pending, 0
        tally.telling = hits
        try:
            shared = await run_in_threadpool(
                partial(self.hot_state.hit, bucket, window_ms=self.window_ms, hits=hits)
            )
        except HotStateUnavailable:
            tally.pending += hits  # told next time
            raise
        finally:
            tally.telling = 0
        # Requests that arrived meanwhile are in `pending` and not yet in `shared`.
        tally.shared = shared
        tally.told_ms = now_ms
        return shared + tally.pending

    async def _retry_after_s(self, bucket: str) -> int:
        remaining_ms = await run_in_threadpool(self.hot_state.remaining_ttl_ms, bucket)
        # The window may have closed since the hit; a client still waits a second, as a
        # Retry-After of 0 invites a busy loop.
        return max(1, math.ceil((remaining_ms or 0) / MS_PER_S))
