"""Raw `eventsourcing` appends on a database: new aggregates saved `batch` at a time.

The yardstick for ingestion: the same store, the same parallelism as the server's workers, each
`save()` as large as an ingestion batch's, and an event about as big as a `TapRecorded` (the
same kinds of fields), but no HTTP, no parsing, no verification and no uniqueness checks beyond
the store's own. `run_taps.py` reports ingestion's taps/s as a fraction of this.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from tapledger.settings import Settings

WARMUP_S = 1.0
START_DELAY_S = 2.0


class RawTap(Aggregate):
    """A tap-sized aggregate with one event."""

    @event("Recorded")
    def __init__(
        self,
        *,
        validator_id: int,
        seq: int,
        tapped_at: datetime,
        recorded_at: datetime,
        medium: str,
        code_text: str,
        card_id: UUID,
        counter: int,
        verification: str,
    ) -> None:
        self.validator_id = validator_id
        self.seq = seq
        self.tapped_at = tapped_at
        self.recorded_at = recorded_at
        self.medium = medium
        self.code_text = code_text
        self.card_id = card_id
        self.counter = counter
        self.verification = verification


class RawBench(Application[UUID]):
    name = "RawBench"


@dataclass(frozen=True)
class RawResult:
    processes: int
    batch: int
    aggregates: int
    seconds: float
    save_p50_ms: float
    save_p99_ms: float

    @property
    def per_s(self) -> float:
        return self.aggregates / self.seconds


def _env(database_url: str, *, create: bool) -> dict[str, str]:
    settings = Settings(_env_file=None, environment="local", database_url=database_url)  # type: ignore[call-arg]
    return settings.event_store_env(create_tables=create)


def _worker(
    database_url: str, batch: int, start_at: float, end_at: float
) -> tuple[int, list[float]]:
    app = RawBench(env=_env(database_url, create=False))
    code = "TL1:" + "X" * 294
    now = datetime.now(UTC)
    seq = 0
    saved = 0
    durations: list[float] = []
    try:
        while time.time() < end_at:
            aggregates = []
            for _ in range(batch):
                seq += 1
                aggregates.append(
                    RawTap(
                        validator_id=1,
                        seq=seq,
                        tapped_at=now,
                        recorded_at=now,
                        medium="qr",
                        code_text=code,
                        card_id=uuid4(),
                        counter=seq & 0xFFFF,
                        verification="accepted",
                    )
                )
            began = time.perf_counter()
            app.save(*aggregates)
            finished = time.time()
            if finished >= start_at and finished < end_at:
                saved += batch
                durations.append(time.perf_counter() - began)
    finally:
        app.close()
    return saved, durations


def measure(database_url: str, *, processes: int, batch: int, seconds: float) -> RawResult:
    """Appends from `processes` processes at once for `seconds` after a warm-up."""
    RawBench(env=_env(database_url, create=True)).close()  # the tables, once, before the writers
    start_at = time.time() + START_DELAY_S + WARMUP_S
    end_at = start_at + seconds
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        outcomes = pool.starmap(_worker, [(database_url, batch, start_at, end_at)] * processes)
    durations = sorted(d for _, ds in outcomes for d in ds)
    p50 = durations[len(durations) // 2] if durations else 0.0
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))] if durations else 0.0
    return RawResult(
        processes=processes,
        batch=batch,
        aggregates=sum(saved for saved, _ in outcomes),
        seconds=seconds,
        save_p50_ms=p50 * 1e3,
        save_p99_ms=p99 * 1e3,
    )
