"""Latencies as the card benchmarks report them: count, p50, p99 and max of timed operations.

Kept apart from the PC/SC path (`loadtests/card_path.py`), so a measurement that needs no
pcscd (`loadtests/decision_path.py` with an in-process card) imports no pyscard.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

SAMPLES_MIN = 10
PERCENTILES = 100
PERCENTILE_P50, PERCENTILE_P99 = 50, 99
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class BenchError(Exception):
    """A measured transaction did not end as the benchmark needs (the figures would be wrong)."""

    code = "card_bench_failed"


@dataclass(frozen=True)
class Measurement:
    count: int
    elapsed_s: float  # wall time of the measured operations, reloads left out
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_s(self) -> float:
        return self.count / self.elapsed_s

    @classmethod
    def of(cls, latencies_ns: Sequence[int], elapsed_ns: int) -> Measurement:
        if len(latencies_ns) < SAMPLES_MIN:
            raise BenchError(f"{len(latencies_ns)} samples; too few for percentiles")
        cuts = statistics.quantiles(latencies_ns, n=PERCENTILES, method="inclusive")
        return cls(
            count=len(latencies_ns),
            elapsed_s=elapsed_ns / NS_PER_S,
            p50_ms=cuts[PERCENTILE_P50 - 1] / NS_PER_MS,
            p99_ms=cuts[PERCENTILE_P99 - 1] / NS_PER_MS,
            max_ms=max(latencies_ns) / NS_PER_MS,
        )
