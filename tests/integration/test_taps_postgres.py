"""Tap ingestion on PostgreSQL and Redis: concurrent uploads of one batch record each tap once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import eventsourcing.utils
import psycopg
import pytest

from hardware.sam import SoftwareSam
from tapledger.bootstrap import Container, bootstrap
from tapledger.settings import EVENT_STORE_APPLICATIONS, POSTGRES_POOL_MIN, READ_MODEL_POOL_KEPT
from tests.integration.conftest import settings_for
from tests.services import redis_url
from tests.tap_media import MASTER_KEYS, Phone
from ticketing.shared.observed import LOG_SECTION_MAX
from ticketing.taps.application.ingestion import QrTap, TapResult, TapStatus
from ticketing.taps.domain.tap import Tap

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

BUS = 17
ROUNDS = 4
TAPS_PER_BATCH = 60
JOIN_TIMEOUT_S = 120.0


@pytest.fixture
def workers(postgres_database_url: str, tmp_path: Path) -> Iterator[tuple[Container, Container]]:
    """Two containers on one database, as two API workers: the first creates the schema."""
    settings = settings_for(tmp_path, postgres_database_url).model_copy(
        update={"redis_url": redis_url()}
    )
    sam = SoftwareSam(MASTER_KEYS)
    first = bootstrap(settings, sam=sam)
    second = bootstrap(settings, sam=sam, create_schema=False)
    yield first, second
    second.close()
    first.close()


def rider_phone(container: Container) -> Phone:
    account = container.ledger.open_account(rider_category=0)
    phone = Phone.new()
    card = container.cards.issue_virtual_card(account.id, device_key=phone.public_key())
    phone.certify(card.certificate_b64)
    return phone


def upload_from_two_threads(
    workers: tuple[Container, Container], batch: list[QrTap], other: list[QrTap] | None = None
) -> list[list[TapResult]]:
    start = threading.Barrier(len(workers))
    results: list[list[TapResult]] = [[] for _ in workers]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait(JOIN_TIMEOUT_S)
            upload = batch if index == 0 or other is None else other
            results[index] = workers[index].taps.ingest_batch(BUS, upload)
        except BaseException as error:  # reported to the test thread below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not failures, f"an upload failed: {failures[0]!r}"
    return results


def recorded(container: Container) -> list[Any]:
    taps = container.taps
    events: list[Any] = []
    start = 1
    while notifications := taps.notification_log.select(start=start, limit=LOG_SECTION_MAX):
        events += [taps.mapper.to_domain_event(n) for n in notifications]
        start = notifications[-1].id + 1
    return [e for e in events if isinstance(e, Tap.Recorded)]


def test_the_same_batch_uploaded_concurrently_by_two_workers_is_recorded_once(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    first.taps.register_validator(validator_id=BUS, kind="bus", network_id=1, location=32)
    phone = rider_phone(first)
    now = int(time.time())
    at = datetime.fromtimestamp(now, UTC)
    seq = 0
    for _ in range(ROUNDS):
        batch = []
        for _ in range(TAPS_PER_BATCH):
            seq += 1
            code = phone.code(now - 1, seq)
            batch.append(QrTap(seq, at, "accepted", "accepted", code))
        one, other = upload_from_two_threads(workers, batch)
        for mine, theirs in zip(one, other, strict=True):
            # One upload recorded the tap; the other found it there.
            assert Counter([mine.status, theirs.status]) == Counter(
                [TapStatus.ACCEPTED, TapStatus.DUPLICATE]
            ), (mine, theirs)
    events = recorded(second)
    assert sorted(e.seq for e in events) == list(range(1, seq + 1))
    assert {e.verification for e in events} == {"accepted"}
    first.catch_up()
    report = first.tap_views.sequence_report(BUS)
    assert (report.highest_seq, report.taps_recorded, report.missing_count) == (seq, seq, 0)


def test_overlapping_batches_from_two_workers_record_every_tap_once(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    first.taps.register_validator(validator_id=BUS, kind="bus", network_id=1, location=32)
    phone = rider_phone(first)
    now = int(time.time())
    at = datetime.fromtimestamp(now, UTC)
    taps = [QrTap(s, at, "accepted", "accepted", phone.code(now - 1, s)) for s in range(1, 91)]
    one, other = upload_from_two_threads(workers, taps[:60], taps[30:])
    by_seq: dict[int, list[TapStatus]] = {}
    for result in one + other:
        by_seq.setdefault(result.seq, []).append(result.status)
    for seq, seen in by_seq.items():
        # Every tap landed once: exactly one upload recorded it, any other found it there.
        assert seen.count(TapStatus.ACCEPTED) == 1, (seq, seen)
        assert set(seen) <= {TapStatus.ACCEPTED, TapStatus.DUPLICATE}
    assert sorted(e.seq for e in recorded(second)) == list(range(1, 91))


def test_the_same_codes_uploaded_concurrently_by_two_validators_are_each_used_once(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    for validator_id in (BUS, BUS + 1):
        first.taps.register_validator(
            validator_id=validator_id, kind="bus", network_id=1, location=32
        )
    phone = rider_phone(first)
    now = int(time.time())
    at = datetime.fromtimestamp(now, UTC)
    codes = [phone.code(now - 1, counter) for counter in range(1, ROUNDS * TAPS_PER_BATCH + 1)]
    results: list[list[TapResult]] = [[], []]
    failures: list[BaseException] = []

    def upload(index: int, container: Container) -> None:
        try:
            for start in range(0, len(codes), TAPS_PER_BATCH):
                batch = [
                    QrTap(start + i + 1, at, "accepted", "accepted", code)
                    for i, code in enumerate(codes[start : start + TAPS_PER_BATCH])
                ]
                results[index] += container.taps.ingest_batch(BUS + index, batch)
        except BaseException as error:  # reported to the test thread below
            failures.append(error)

    threads = [threading.Thread(target=upload, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not failures, f"an upload failed: {failures[0]!r}"
    for mine, theirs in zip(*results, strict=True):
        # Two different taps of one code: the first to commit used it, the other is refused.
        assert sorted([(mine.status, mine.reason), (theirs.status, theirs.reason)]) == [
            (TapStatus.ACCEPTED, None),
            (TapStatus.REFUSED, "code_replayed"),
        ], (mine, theirs)
    assert len(recorded(second)) == 2 * len(codes)


def test_a_re_sent_batch_is_told_duplicate_at_once_never_retried_by_the_store(
    workers: tuple[Container, Container], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = workers
    first.taps.register_validator(validator_id=BUS, kind="bus", network_id=1, location=32)
    phone = rider_phone(first)
    now = int(time.time())
    at = datetime.fromtimestamp(now, UTC)
    batch = [QrTap(s, at, "accepted", "accepted", phone.code(now - 1, s)) for s in range(1, 41)]
    assert {r.status for r in first.taps.ingest_batch(BUS, batch)} == {TapStatus.ACCEPTED}

    def no_retry(_: float) -> None:
        raise AssertionError("the event store retried an insert")

    # The library sleeps before each retry of an insert; a repeat must never get that far.
    monkeypatch.setattr(eventsourcing.utils, "sleep", no_retry)
    for _ in range(8):  # past psycopg's threshold for preparing a statement on the server
        assert {r.status for r in first.taps.ingest_batch(BUS, batch)} == {TapStatus.DUPLICATE}
    other = [QrTap(100 + i, at, "accepted", "accepted", t.code_text) for i, t in enumerate(batch)]
    answers = first.taps.ingest_batch(BUS, other)
    assert {(r.status, r.reason) for r in answers} == {(TapStatus.REFUSED, "code_replayed")}


def test_an_idle_worker_holds_a_few_connections_not_a_pool_per_application(
    workers: tuple[Container, Container], postgres_database_url: str
) -> None:
    workers[0].taps.register_validator(validator_id=BUS, kind="bus", network_id=1, location=32)
    for container in workers:
        container.taps.get_validator(BUS)  # the taps' store and the read models, used once
        container.tap_views.sequence_report(BUS)
    # A pool asked for a connection before its first is open opens one more; connections
    # beyond the minimum close again once idle.
    per_worker = EVENT_STORE_APPLICATIONS * (POSTGRES_POOL_MIN + 1) + READ_MODEL_POOL_KEPT
    with psycopg.connect(postgres_database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    assert 0 < row[0] <= len(workers) * per_worker


def test_two_workers_given_one_seq_with_other_content_record_one_tap_and_keep_the_other(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    first.taps.register_validator(validator_id=BUS, kind="bus", network_id=1, location=32)
    phone = rider_phone(first)
    now = int(time.time())
    at = datetime.fromtimestamp(now, UTC)
    seqs = range(1, 31)
    old = [QrTap(s, at, "accepted", "accepted", phone.code(now - 1, s)) for s in seqs]
    wiped = [QrTap(s, at, "accepted", "accepted", phone.code(now - 1, 100 + s)) for s in seqs]
    one, other = upload_from_two_threads(workers, old, wiped)
    for mine, theirs in zip(one, other, strict=True):
        assert Counter([mine.status, theirs.status]) == Counter(
            [TapStatus.ACCEPTED, TapStatus.SEQ_CONFLICT]
        ), (mine, theirs)
    assert sorted(e.seq for e in recorded(second)) == list(seqs)
    first.tap_follower.catch_up()
    kept = first.tap_views.seq_conflicts(BUS)
    assert sorted(c.seq for c in kept) == list(seqs)
    assert statuses_of(second.taps.ingest_batch(BUS, wiped + old)) == {
        TapStatus.DUPLICATE,
        TapStatus.SEQ_CONFLICT,
    }

    second.taps.get_validator(BUS)  # the second worker remembers epoch 0
    assert first.taps.enrol_validator(BUS).epoch == 1
    # The taps kept for review go again in the new epoch, as a device enrolled again sends them.
    kept_taps = old if one[0].status is TapStatus.SEQ_CONFLICT else wiped
    results = second.taps.ingest_batch(BUS, kept_taps, epoch=1)
    assert statuses_of(results) == {TapStatus.ACCEPTED}
    first.tap_follower.catch_up()
    report = first.tap_views.sequence_report(BUS)
    assert (report.epoch, report.highest_seq, report.missing_count) == (1, 30, 0)


def statuses_of(results: list[TapResult]) -> set[TapStatus]:
    return {r.status for r in results}
