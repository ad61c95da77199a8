"""Rate limiting in fixed windows, counted in hot state: per principal, and per address.

Authentication runs first (`tapledger.http.authentication`), so a request that reaches
`RateLimitMiddleware` carries its principal, and is counted under the principal's token id: a
caller cannot escape its limit by sending made-up tokens, as those never get this far. Failed
authentications are counted by the authentication middleware with a `RateLimiter` of its own,
per client address; requests outside the API (health, the rider page) are counted per address.

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

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tapledger.http.hotstate import HotState, HotStateUnavailable, check_ttl
from tapledger.http.problems import problem_response
from ticketing.shared.access import PRINCIPAL_STATE_KEY, Principal
from ticketing.shared.domain.invariants import require

RATE_LIMIT_REQUESTS_MAX = 1_000_000
# A worker tells the shared count after this share of the limit, or this long, at the latest.
LOCAL_TALLY_SHARE = 100
LOCAL_TALLY_MAX_MS = 100.0
# Callers tallied in one worker; the tallies are dropped (and re-read) when there are more.
LOCAL_TALLIES_MAX = 100_000
MS_PER_S = 1000
UNKNOWN_CLIENT = "unknown"

logger = logging.getLogger(__name__)


@dataclass
class _Tally:
    """One caller's count in this worker: the shared count as last seen, and hits since."""

    shared: int = 0
    pending: int = 0
    told_ms: float = -math.inf
    telling: int = 0  # hits on their way to the shared count


@dataclass(frozen=True)
class Verdict:
    """A caller's count in the window, this request included, and whether it is over."""

    count: int
    limit: int
    retry_after_s: int | None  # set only when the caller is over its limit

    @property
    def limited(self) -> bool:
        return self.retry_after_s is not None

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.count)),
        }


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else UNKNOWN_CLIENT


def address_bucket(kind: str, scope: Scope) -> str:
    """A counter key for the client's address; hashed, as addresses are personal data."""
    digest = hashlib.sha256(client_address(scope).encode("utf-8")).hexdigest()
    return f"ratelimit:{kind}:{digest}"


def _bucket(scope: Scope) -> str:
    """The counter key for the caller: its principal's token id, else its address."""
    principal: Principal | None = scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
    if principal is not None:
        return "ratelimit:principal:" + principal.token_id
    return address_bucket("ip", scope)


class RateLimiter:
    """Counts hits per bucket, allowing `requests_per_window` in each window."""

    def __init__(
        self,
        *,
        hot_state: HotState,
        requests_per_window: int,
        window_ms: int,
        monotonic_ms: Callable[[], float] = lambda: time.monotonic() * MS_PER_S,
    ) -> None:
        require(
            1 <= requests_per_window <= RATE_LIMIT_REQUESTS_MAX,
            f"requests_per_window must be 1 to {RATE_LIMIT_REQUESTS_MAX}",
        )
        check_ttl(window_ms)
        self.hot_state = hot_state
        self.requests_per_window = requests_per_window
        self.window_ms = window_ms
        self.tell_every = max(1, requests_per_window // LOCAL_TALLY_SHARE)
        self._tallies: dict[str, _Tally] = {}
        self._monotonic_ms = monotonic_ms

    async def hit(self, bucket: str) -> Verdict | None:
        """Counts one hit; None when hot state is unavailable, for the caller to fail open."""
        try:
            count = await self._count(bucket)
            limited = count > self.requests_per_window
            retry_after_s = await self._retry_after_s(bucket) if limited else None
        except HotStateUnavailable:
            logger.warning("hot state unavailable; letting a request through without a limit")
            return None
        return Verdict(count, self.requests_per_window, retry_after_s)

    def refusal(self, verdict: Verdict) -> JSONResponse:
        detail = f"more than {self.requests_per_window} requests in {self.window_ms} ms"
        headers = {**verdict.headers(), "Retry-After": str(verdict.retry_after_s)}
        return problem_response(429, "rate_limited", detail, headers=headers)

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
        self.app = app
        self.limiter = RateLimiter(
            hot_state=hot_state,
            requests_per_window=requests_per_window,
            window_ms=window_ms,
            monotonic_ms=monotonic_ms,
        )
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        verdict = await self.limiter.hit(_bucket(scope))
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if verdict.limited:
            await self.limiter.refusal(verdict)(scope, receive, send)
            return
        limit_headers = verdict.headers()

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(limit_headers)
            await send(message)

        await self.app(scope, receive, send_with_limits)
