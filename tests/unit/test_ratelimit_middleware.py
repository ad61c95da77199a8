"""Rate limits on a tiny app, with a fake clock to open new windows."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tapledger.http.hotstate import HotStateUsageError
from tapledger.http.hotstate_memory import MemoryHotState
from tapledger.http.problems import PROBLEM_MEDIA_TYPE
from tapledger.http.ratelimit import RATE_LIMIT_REQUESTS_MAX, RateLimitMiddleware
from tests.doubles import MillisClock
from tests.hotstate_contract import SwitchableHotState
from tests.http_auth import ALICE, BOB, authenticate_everything
from ticketing.shared.domain.invariants import InvariantViolated

LIMIT = 3
WINDOW_MS = 60_000
WINDOW_S = WINDOW_MS // 1000


@dataclass
class Rig:
    """The app under test, its client, the store and clock behind it, and the calls served."""

    app: FastAPI
    client: TestClient
    store: SwitchableHotState
    clock: MillisClock
    served: list[str] = field(default_factory=list)


@pytest.fixture
def rig() -> Rig:
    clock = MillisClock()
    store = SwitchableHotState(MemoryHotState(now_ms=clock))
    app = FastAPI()
    app.add_middleware(
        RateLimitMiddleware, hot_state=store, requests_per_window=LIMIT, window_ms=WINDOW_MS
    )
    authenticate_everything(app, store, prefix="/v1/")
    rig = Rig(app, TestClient(app), store, clock)

    @app.get("/v1/fares")
    async def fares() -> dict[str, int]:
        rig.served.append("fares")
        return {"served": len(rig.served)}

    @app.get("/timetable")
    async def timetable() -> dict[str, int]:
        rig.served.append("timetable")
        return {"served": len(rig.served)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        rig.served.append("healthz")
        return {"status": "ok"}

    return rig


def test_requests_within_the_limit_carry_the_remaining_count(rig: Rig) -> None:
    responses = [rig.client.get("/v1/fares", headers=ALICE) for _ in range(LIMIT)]
    assert [response.status_code for response in responses] == [200] * LIMIT
    assert {response.headers["x-ratelimit-limit"] for response in responses} == {str(LIMIT)}
    assert [response.headers["x-ratelimit-remaining"] for response in responses] == ["2", "1", "0"]
    assert len(rig.served) == LIMIT


def test_request_over_the_limit_is_refused_with_a_problem(rig: Rig) -> None:
    for _ in range(LIMIT):
        rig.client.get("/v1/fares", headers=ALICE)
    refused = rig.client.get("/v1/fares", headers=ALICE)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["retry-after"] == str(WINDOW_S)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert len(rig.served) == LIMIT


def test_retry_after_counts_down_with_the_window(rig: Rig) -> None:
    for _ in range(LIMIT):
        rig.client.get("/v1/fares", headers=ALICE)
    rig.clock.advance(WINDOW_MS - 1500)
    refused = rig.client.get("/v1/fares", headers=ALICE)
    # 1.5 s left rounds up, so the client never comes back before the window opens.
    assert refused.headers["retry-after"] == "2"


def test_retry_after_is_at_least_one_second(rig: Rig) -> None:
    for _ in range(LIMIT):
        rig.client.get("/v1/fares", headers=ALICE)
    rig.clock.advance(WINDOW_MS - 1)
    refused = rig.client.get("/v1/fares", headers=ALICE)
    assert refused.headers["retry-after"] == "1"


def test_new_window_lets_requests_through_again(rig: Rig) -> None:
    for _ in range(LIMIT + 1):
        rig.client.get("/v1/fares", headers=ALICE)
    rig.clock.advance(WINDOW_MS)
    again = rig.client.get("/v1/fares", headers=ALICE)
    assert again.status_code == 200
    assert again.headers["x-ratelimit-remaining"] == str(LIMIT - 1)


def test_each_token_has_its_own_bucket(rig: Rig) -> None:
    for _ in range(LIMIT + 1):
        rig.client.get("/v1/fares", headers=ALICE)
    bob = rig.client.get("/v1/fares", headers=BOB)
    assert bob.status_code == 200
    assert bob.headers["x-ratelimit-remaining"] == str(LIMIT - 1)


def test_bearer_scheme_is_case_insensitive(rig: Rig) -> None:
    rig.client.get("/v1/fares", headers={"Authorization": "Bearer alice-token"})
    second = rig.client.get("/v1/fares", headers={"Authorization": "bearer alice-token"})
    assert second.headers["x-ratelimit-remaining"] == str(LIMIT - 2)


def test_anonymous_callers_are_limited_by_address(rig: Rig) -> None:
    here = TestClient(rig.app, client=("203.0.113.7", 50000))
    there = TestClient(rig.app, client=("198.51.100.9", 50000))
    for _ in range(LIMIT):
        here.get("/timetable")
    assert here.get("/timetable").status_code == 429
    assert there.get("/timetable").status_code == 200


def test_token_and_anonymous_buckets_are_apart(rig: Rig) -> None:
    for _ in range(LIMIT + 1):
        rig.client.get("/timetable")
    assert rig.client.get("/v1/fares", headers=ALICE).status_code == 200


def test_exempt_path_is_never_limited(rig: Rig) -> None:
    responses = [rig.client.get("/healthz", headers=ALICE) for _ in range(LIMIT + 2)]
    assert all(response.status_code == 200 for response in responses)
    assert "x-ratelimit-limit" not in responses[-1].headers
    assert rig.client.get("/v1/fares", headers=ALICE).headers["x-ratelimit-remaining"] == "2"


def test_unavailable_hot_state_lets_requests_through(rig: Rig) -> None:
    rig.store.down = True
    responses = [rig.client.get("/v1/fares", headers=ALICE) for _ in range(LIMIT + 1)]
    assert all(response.status_code == 200 for response in responses)
    assert "x-ratelimit-limit" not in responses[-1].headers
    assert len(rig.served) == LIMIT + 1


@pytest.mark.parametrize("requests_per_window", [0, -1, RATE_LIMIT_REQUESTS_MAX + 1])
def test_limit_outside_its_bounds_is_a_programmer_error(requests_per_window: int) -> None:
    with pytest.raises(InvariantViolated):
        RateLimitMiddleware(
            FastAPI(),
            hot_state=MemoryHotState(),
            requests_per_window=requests_per_window,
            window_ms=WINDOW_MS,
        )


def test_empty_window_is_a_usage_error() -> None:
    with pytest.raises(HotStateUsageError):
        RateLimitMiddleware(
            FastAPI(), hot_state=MemoryHotState(), requests_per_window=LIMIT, window_ms=0
        )


class CountingHotState(SwitchableHotState):
    """Counts the calls that reach the shared counter."""

    def __init__(self, inner: MemoryHotState) -> None:
        super().__init__(inner)
        self.hit_calls = 0

    def hit(self, key: str, *, window_ms: int, hits: int = 1) -> int:
        self.hit_calls += 1
        return super().hit(key, window_ms=window_ms, hits=hits)


def batched_rig(limit: int, *, workers: int = 1) -> tuple[list[TestClient], CountingHotState]:
    """`workers` apps sharing one store, as the server's worker processes do; time stands
    still for the middleware, so only the share of the limit makes a worker tell."""
    clock = MillisClock()
    store = CountingHotState(MemoryHotState(now_ms=clock))
    clients = []
    for _ in range(workers):
        app = FastAPI()
        app.add_middleware(
            RateLimitMiddleware,
            hot_state=store,
            requests_per_window=limit,
            window_ms=WINDOW_MS,
            monotonic_ms=lambda: 0.0,
        )

        @app.get("/fares")
        async def fares() -> dict[str, str]:
            return {"fare": "7000"}

        clients.append(TestClient(app))
    return clients, store


def test_a_worker_tells_the_shared_count_once_per_share_of_the_limit() -> None:
    (client,), store = batched_rig(1000)  # a share of 10 hits
    responses = [client.get("/fares", headers=ALICE) for _ in range(25)]
    assert all(r.status_code == 200 for r in responses)
    # The first request, then every 10th: requests 1, 11 and 21.
    assert store.hit_calls == 3
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in responses]
    assert remaining == [1000 - n for n in range(1, 26)]


def test_batched_counting_lets_a_caller_exceed_its_limit_by_at_most_a_share_per_worker() -> None:
    limit, workers = 200, 2  # a share of 2 hits per worker
    clients, _ = batched_rig(limit, workers=workers)
    statuses = [clients[i % workers].get("/fares", headers=ALICE).status_code for i in range(300)]
    served = statuses.count(200)
    assert limit <= served <= limit + workers * (limit // 100)
    assert statuses[-50:] == [429] * 50


class BlockingHotState(CountingHotState):
    """Holds every `hit` until released, as a slow shared counter under load does."""

    def __init__(self, inner: MemoryHotState) -> None:
        super().__init__(inner)
        self.entered = threading.Event()
        self.release = threading.Event()

    def hit(self, key: str, *, window_ms: int, hits: int = 1) -> int:
        self.entered.set()
        self.release.wait(timeout=10)
        return super().hit(key, window_ms=window_ms, hits=hits)


def test_requests_arriving_while_the_count_is_being_told_count_locally() -> None:
    store = BlockingHotState(MemoryHotState(now_ms=MillisClock()))
    middleware = RateLimitMiddleware(
        FastAPI(), hot_state=store, requests_per_window=LIMIT, window_ms=WINDOW_MS
    )

    async def burst() -> list[int]:
        first = asyncio.ensure_future(middleware.limiter._count("alice"))
        await asyncio.to_thread(store.entered.wait, 10)
        meanwhile = [await middleware.limiter._count("alice") for _ in range(5)]
        store.release.set()
        return [await first, *meanwhile]

    counts = asyncio.run(burst())
    assert store.hit_calls == 1  # only the first request told the shared count
    assert counts == [6, 2, 3, 4, 5, 6]  # each counting the hit on its way
