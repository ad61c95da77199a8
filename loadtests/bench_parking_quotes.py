"""Quotes per second of the parking tariff core, on one core, for typical stays.

    .venv/bin/python -m loadtests.bench_parking_quotes [--seconds 5]

Typical stays: cars on both Hanoi tables and motorbikes, starting at random minutes of a week,
lasting 15 minutes to 6 hours (a few overnight); every quote is built in full (segments and
all). The figure is for planning, not a promise; no test asserts on it.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from parking.adapters.tariff_files import load_rate_tables
from parking.domain.pricing import quote
from parking.domain.tariff import VehicleClass

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
STAYS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    seconds = parser.parse_args().seconds
    tables = load_rate_tables()
    # A fixed seed, so every run prices the same stays; nothing here is a secret.
    rng = random.Random(14)
    monday = datetime(2025, 6, 2, tzinfo=HANOI)
    stays = []
    for _ in range(STAYS):
        table = tables[rng.choice(["hanoi-iparking", "hanoi-dong-da"])]
        vehicle = rng.choice([VehicleClass.CAR, VehicleClass.CAR, VehicleClass.MOTORBIKE])
        start = monday + timedelta(minutes=rng.randrange(7 * 24 * 60))
        minutes = rng.randrange(15, 6 * 60) if rng.random() < 0.95 else rng.randrange(600, 1440)
        stays.append((table, vehicle, start, start + timedelta(minutes=minutes)))
    count = 0
    segments = 0
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        for table, vehicle, start, end in stays:
            segments += len(quote(table, vehicle, start, end).segments)
        count += len(stays)
    elapsed = time.perf_counter() - began
    print(
        f"{count:,} quotes in {elapsed:.2f} s: {count / elapsed:,.0f} quotes/s on one core "
        f"({segments / count:.2f} segments per quote)"
    )


if __name__ == "__main__":
    main()
