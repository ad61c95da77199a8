"""Sessions started and ended over HTTP as fast as a few clients can: each client its own
account and plate, a start (which holds the money) then its end (which posts the fee), again
and again for a bounded time; the rate of both and their latencies."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from loadtests.harness.parking_seed import open_account, plate, start_body
from loadtests.harness.seeding import ok

REQUEST_TIMEOUT_S = 30
# Each session costs 25,000 VND (its first hour on Dong Da's table); top-ups of at most
# 5,000,000 VND up to the 20,000,000 an account may hold leave this many sessions per client.
TOP_UPS = 4
SESSIONS_PER_CLIENT_MAX = 700
MS_PER_S = 1e3
PERCENT = 100


@dataclass(frozen=True)
class SessionsResult:
    clients: int
    seconds: float
    sessions: int  # started and ended
    start_ms: list[float]
    end_ms: list[float]

    @property
    def per_s(self) -> float:
        return self.sessions / self.seconds

    def quantile_ms(self, latencies: list[float], share: float) -> float:
        ordered = sorted(latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    def summary(self, latencies: list[float]) -> str:
        p50 = statistics.median(latencies) if latencies else 0.0
        p99 = self.quantile_ms(latencies, 0.99)
        return f"{p50:.1f} / {self.quantile_ms(latencies, 0.95):.1f} / {p99:.1f} ms"


def run_sessions(
    base_url: str, admin: dict[str, str], *, clients: int, seconds: float
) -> SessionsResult:
    """`clients` threads, each starting and ending sessions of its own plate for `seconds`."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        accounts = [open_account(client, admin, f"s{c}", top_ups=TOP_UPS) for c in range(clients)]
    start_ms: list[float] = []
    end_ms: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def drive(index: int) -> int:
        done = 0
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
            barrier.wait()
            while not stop.is_set() and done < SESSIONS_PER_CLIENT_MAX:
                body = start_body(f"s{index}-{done}", plate("C", index), accounts[index])
                began = time.perf_counter()
                session = ok(client.post("/v1/parking/sessions", json=body, headers=admin))
                started = time.perf_counter()
                path = f"/v1/parking/sessions/{session['session_id']}/end"
                ok(client.post(path, json={"end_id": "e"}, headers=admin))
                ended = time.perf_counter()
                with lock:
                    start_ms.append((started - began) * MS_PER_S)
                    end_ms.append((ended - started) * MS_PER_S)
                done += 1
        return done

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(drive, c) for c in range(clients)]
        barrier.wait()
        began = time.monotonic()
        stop.wait(seconds)
        stop.set()
        sessions = sum(f.result() for f in futures)
        elapsed = time.monotonic() - began
    return SessionsResult(clients, elapsed, sessions, start_ms, end_ms)
