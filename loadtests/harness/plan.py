"""How big each part of the tap benchmark is: devices, riders, rates, connections and durations,
and from them how many taps each part needs, so that no body is ever sent twice."""

from __future__ import annotations

import math
from dataclasses import dataclass

BATCH = 100
PHONES = 300
CARDS = 200
LOCUST_VALIDATORS = 24
LOCUST_GATES = 8
LOCUST_TAPS_PER_VALIDATOR_S = 80  # an upper bound of what a ValidatorUser sends
LOCUST_GATE_TAPS_PER_S = 6
WRK_VALIDATORS = 8
# Sizing: each wrk pool holds this many seconds at these rates, so no body is sent twice.
QR_POOL_RATE = 15_000
CARD_POOL_RATE = 26_000
SINGLE_POOL_RATE = 4_000
PACED_RATE = 500
PACED_CONNECTIONS = 50
BATCH_CONNECTIONS = 8
SINGLE_CONNECTIONS = 50
# The paced pool holds this much more than PACED_RATE, for a run that goes a little faster.
PACED_POOL_MARGIN = 1.3
FORGED_SHARE = 0.005
QR_SHARE_BUS = 0.6
QR_SHARE_METRO = 0.5
# Every mixed tap is QR or card; sizing both pools for this share of the mix covers either.
MIXED_SHARE_SIZED = 0.6
# Codes and proofs beyond the sum, and batches for the check before timing.
TAPS_SPARE = 1000
CHECK_BATCHES = 2
RAW_SECONDS = 8.0
PROFILE_SECONDS = 15
# Batched QR taps sent before the ceilings and not counted: the server's pools, caches and
# threads are then as a running server's are, not as a just-started one's.
WARMUP_SECONDS = 3


@dataclass(frozen=True)
class PoolSizes:
    """How many bodies each part sends at most, and the codes and card proofs they need."""

    qr_batches: int
    card_batches: int
    single_count: int
    paced_count: int
    profile_batches: int
    warmup_batches: int
    qr_needed: int
    card_needed: int


def pool_sizes(*, locust_s: int, wrk_s: int, profile: bool) -> PoolSizes:
    """How many taps each part needs, with a margin, so no body is sent twice."""
    locust_batched = LOCUST_VALIDATORS * LOCUST_TAPS_PER_VALIDATOR_S * locust_s
    locust_single = LOCUST_GATES * LOCUST_GATE_TAPS_PER_S * locust_s
    qr_batches = math.ceil(QR_POOL_RATE * wrk_s / BATCH)
    card_batches = math.ceil(CARD_POOL_RATE * wrk_s / BATCH)
    single_count = SINGLE_POOL_RATE * wrk_s
    paced_count = int(PACED_RATE * PACED_POOL_MARGIN * wrk_s)
    profile_batches = math.ceil(QR_POOL_RATE * PROFILE_SECONDS / BATCH) if profile else 0
    mixed = locust_batched + locust_single + single_count + paced_count
    warmup_batches = math.ceil(QR_POOL_RATE * WARMUP_SECONDS / BATCH)
    mixed_sized = int(mixed * MIXED_SHARE_SIZED)
    qr_needed = (
        (qr_batches + profile_batches + warmup_batches + CHECK_BATCHES) * BATCH
        + mixed_sized
        + TAPS_SPARE
    )
    card_needed = (card_batches + CHECK_BATCHES) * BATCH + mixed_sized + TAPS_SPARE
    return PoolSizes(
        qr_batches=qr_batches,
        card_batches=card_batches,
        single_count=single_count,
        paced_count=paced_count,
        profile_batches=profile_batches,
        warmup_batches=warmup_batches,
        qr_needed=qr_needed,
        card_needed=card_needed,
    )
