"""The parking day benchmark (`loadtests.bench_parking_day`), small: applied by two worker
processes at once on one PostgreSQL database, every session's money as the tariff prices it."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.bench_parking_day import DAY
from loadtests.parking_day_drive import (
    LOTS,
    SteppedClock,
    build,
    check_money,
    day_start,
    open_riders,
    register_lots,
)
from loadtests.parking_day_plan import DayShape, plan_day, shares, steps_of, uploads
from loadtests.parking_day_workers import run_workers

pytestmark = pytest.mark.postgres

SESSIONS = 300
UPLOAD_ACTIONS = 20
WORKERS = 2


def test_two_workers_apply_a_day_of_sessions_and_every_one_is_paid_once(
    postgres_database_url: str, tmp_path: Path
) -> None:
    shape = DayShape(SESSIONS, tuple(LOTS), 0.3, seed=7)
    planned = plan_day(shape, DAY)
    day_uploads = uploads(steps_of(planned), UPLOAD_ACTIONS)
    start = day_start(planned)
    container = build(postgres_database_url, tmp_path, SteppedClock(start))
    try:
        register_lots(container)
        accounts = open_riders(container, shape.riders, start)
    finally:
        container.close()
    applied: list[int] = []
    run = run_workers(
        postgres_database_url,
        tmp_path,
        shares(day_uploads, tuple(LOTS), WORKERS),
        accounts,
        start,
        applied.append,
    )
    assert run.actions == sum(applied) == sum(len(upload) for upload in day_uploads)
    assert len(run.ended) == SESSIONS
    container = build(postgres_database_url, tmp_path, SteppedClock(start))
    try:
        assert check_money(container, planned, run, accounts) == []
    finally:
        container.close()


def test_every_lot_goes_to_one_worker_and_every_upload_to_a_worker() -> None:
    shape = DayShape(SESSIONS, tuple(LOTS), 0.3, seed=7)
    day_uploads = uploads(steps_of(plan_day(shape, DAY)), UPLOAD_ACTIONS)
    share = shares(day_uploads, tuple(LOTS), WORKERS)
    lots_of = [{step.session.lot_id for upload in part for step in upload} for part in share]
    assert lots_of[0].isdisjoint(lots_of[1])
    assert sum(len(part) for part in share) == len(day_uploads)
    assert all(len({step.session.lot_id for step in upload}) == 1 for upload in day_uploads)
