"""The validator device against a fake backend: outbox durability, offline QR decisions, upload."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.doubles import SecondsClock
from tests.validator_fakes import NOW, FakeBackend, phone
from ticketing.taps.application.ingestion import CODE_TEXT_MAX_CHARS, TAP_BATCH_MAX
from ticketing.taps.domain.tap import SEQ_MAX as BACKEND_SEQ_MAX
from validators import outbox as outbox_module
from validators.backend import BackendUnavailable
from validators.device import OUTBOX_FILE, Device, Drained
from validators.gate import QR_TEXT_MAX_CHARS, Gate
from validators.outbox import Acknowledgement, Outbox
from validators.trust import Trust, TrustStore
from validators.uploader import BACKOFF_INITIAL_S, UPLOAD_BATCH_MAX

SYNC_INTERVAL_S = 60
# A monotonic timer starts anywhere; far from zero, so no wait is confused with none.
MONOTONIC_START_S = 1000.0


def device(
    backend: FakeBackend,
    state_dir: Path,
    clock: SecondsClock,
    monotonic: SecondsClock | None = None,
) -> Device:
    return Device(
        backend,
        state_dir,
        validator_id=backend.validator_id,
        sync_interval_s=SYNC_INTERVAL_S,
        clock=clock,
        monotonic=monotonic or SecondsClock(MONOTONIC_START_S),
    )


def test_the_device_limits_agree_with_the_backend() -> None:
    assert QR_TEXT_MAX_CHARS == CODE_TEXT_MAX_CHARS
    assert UPLOAD_BATCH_MAX <= TAP_BATCH_MAX
    assert outbox_module.SEQ_MAX == BACKEND_SEQ_MAX


def test_seq_grows_by_one_and_never_goes_back_across_restarts_and_pruning(
    tmp_path: Path,
) -> None:
    path = tmp_path / OUTBOX_FILE
    outbox = Outbox(path)
    seqs = [
        outbox.append(
            medium="qr",
            tapped_at=NOW,
            decision="refused",
            reason="malformed",
            upload_fields={"code": "x"},
        )
        for _ in range(3)
    ]
    assert seqs == [1, 2, 3]
    outbox.acknowledge([Acknowledgement(s, "refused", "malformed") for s in seqs], at=NOW)
    outbox.close()
    # Every acknowledged tap is pruned behind the outbox's back: numbers must not come back.
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM taps")
    reopened = Outbox(path)
    again = reopened.append(
        medium="qr",
        tapped_at=NOW,
        decision="refused",
        reason="malformed",
        upload_fields={"code": "y"},
    )
    assert (again, reopened.last_seq(), reopened.pending_count()) == (4, 4, 1)


def test_a_tap_recorded_before_a_crash_is_uploaded_after_restart_and_recorded_once(
    tmp_path: Path,
) -> None:
    backend, clock = FakeBackend(), SecondsClock()
    first = device(backend, tmp_path, clock)
    assert first.sync()
    decision = first.gate.present_qr(phone("lan").code(NOW - 1))
    assert (decision.accepted, decision.seq) == (True, 1)
    backend.lose_answers = 1  # the backend records the tap, the answer never arrives
    assert first.uploader.step().error is not None
    first.close()  # the device dies before learning the tap landed

    second = device(backend, tmp_path, clock)
    assert second.outbox.pending_count() == 1
    drained = second.drain(sleep=lambda _s: None)
    assert (drained.acknowledged, drained.pending) == (1, 0)
    assert backend.uploads == [[1], [1]]  # the same seq, sent again
    assert list(backend.recorded) == [1]  # and recorded once
    stored = second.outbox.get(1)
    assert stored is not None
    assert (stored.backend_status, stored.decision, stored.reason) == (
        "duplicate",
        "accepted",
        "accepted",
    )


def test_offline_qr_decisions_use_the_synced_keys_replay_window_and_deny_list(
    tmp_path: Path,
) -> None:
    backend, clock = FakeBackend(), SecondsClock()
    lan, hoa = phone("lan"), phone("hoa")
    before_sync = device(backend, tmp_path / "fresh", clock)
    assert before_sync.gate.present_qr(lan.code(NOW)).reason == "unknown_issuer_key"

    gate = device(backend, tmp_path / "synced", clock)
    backend.deny(hoa.card_id)
    assert gate.sync()
    code = lan.code(NOW - 1)
    shown = [gate.gate.present_qr(text) for text in (code, code, hoa.code(NOW), "TL1:??")]
    assert [(d.accepted, d.reason, d.seq) for d in shown] == [
        (True, "accepted", 1),
        (False, "code_replayed", 2),
        (False, "card_denied", 3),
        (False, "malformed", 4),
    ]
    stored = gate.gate.trust
    assert stored.deny_version == 1


def test_an_accepted_code_shown_again_after_a_restart_is_still_refused(tmp_path: Path) -> None:
    backend, clock = FakeBackend(), SecondsClock()
    first = device(backend, tmp_path, clock)
    first.sync()
    code = phone("lan").code(NOW - 1)
    assert first.gate.present_qr(code).accepted
    first.close()
    clock.advance(5)
    backend.failures_to_come = 99  # and the restart is offline
    second = device(backend, tmp_path, clock)
    assert not second.sync()
    replayed = second.gate.present_qr(code)
    assert (replayed.accepted, replayed.reason, replayed.seq) == (False, "code_replayed", 2)


def test_a_restart_without_network_decides_with_the_trust_kept_in_the_state_dir(
    tmp_path: Path,
) -> None:
    backend, clock = FakeBackend(), SecondsClock()
    hoa = phone("hoa")
    backend.deny(hoa.card_id)
    first = device(backend, tmp_path, clock)
    assert first.sync()
    first.close()
    offline = FakeBackend(failures_to_come=99)
    second = device(offline, tmp_path, clock)
    assert not second.sync()
    assert second.gate.present_qr(phone("lan").code(NOW)).accepted
    assert second.gate.present_qr(hoa.code(NOW)).reason == "card_denied"


def test_a_deny_list_entry_stops_refusing_once_it_has_ended(tmp_path: Path) -> None:
    backend, clock = FakeBackend(), SecondsClock()
    hoa = phone("hoa")
    backend.deny(hoa.card_id, until=NOW + 10)
    gate = device(backend, tmp_path, clock)
    gate.sync()
    assert gate.gate.present_qr(hoa.code(NOW)).reason == "card_denied"
    clock.advance(11)
    assert gate.gate.present_qr(hoa.code(NOW + 11)).accepted


def test_a_failed_sync_keeps_the_last_good_trust(tmp_path: Path) -> None:
    backend, clock = FakeBackend(), SecondsClock()
    gate = device(backend, tmp_path, clock)
    gate.sync()
    saved = TrustStore(tmp_path).load()
    backend.deny(phone("hoa").card_id)
    backend.deny_list_down = True  # keys and config answer, then the deny list fails
    assert not gate.sync()
    assert TrustStore(tmp_path).load() == saved
    assert gate.trust.deny_version == 0


def test_a_failed_upload_is_retried_with_the_same_seqs_after_a_growing_backoff(
    tmp_path: Path,
) -> None:
    backend, clock, monotonic = FakeBackend(), SecondsClock(), SecondsClock(MONOTONIC_START_S)
    gate = device(backend, tmp_path, clock, monotonic)
    gate.sync()
    lan = phone("lan")
    for at in (NOW - 3, NOW - 2):
        gate.gate.present_qr(lan.code(at))
    backend.failures_to_come = 2
    first = gate.uploader.step()
    assert isinstance(first.error, BackendUnavailable)
    assert gate.uploader.step().waiting  # too soon: nothing is sent
    first_wait_s = gate.uploader.retry_in_s
    assert BACKOFF_INITIAL_S / 2 <= first_wait_s <= BACKOFF_INITIAL_S
    monotonic.advance(first_wait_s)
    assert gate.uploader.step().error is not None
    assert gate.uploader.retry_in_s > first_wait_s / 2
    monotonic.advance(gate.uploader.retry_in_s)
    assert gate.uploader.step().acknowledged == 2
    assert backend.uploads == [[1, 2]]  # the failed attempts never reached the fake's record
    assert gate.outbox.pending_count() == 0


def test_a_tap_the_backend_refuses_is_acknowledged_with_the_backends_reason(
    tmp_path: Path,
) -> None:
    backend, clock = FakeBackend(refused_reasons={1: "bad_device_signature"}), SecondsClock()
    gate = device(backend, tmp_path, clock)
    gate.sync()
    gate.gate.present_qr(phone("lan").code(NOW))
    assert gate.drain(sleep=lambda _s: None).pending == 0
    stored = gate.outbox.get(1)
    assert stored is not None
    assert (stored.decision, stored.backend_status, stored.backend_reason) == (
        "accepted",
        "refused",
        "bad_device_signature",
    )


def test_the_outbox_drains_in_bounded_batches(tmp_path: Path) -> None:
    backend, clock = FakeBackend(), SecondsClock()
    gate = device(backend, tmp_path, clock)
    for _ in range(UPLOAD_BATCH_MAX * 2 + 5):
        gate.gate.present_qr("not a code")
    drained = gate.drain(sleep=lambda _s: None)
    assert [len(batch) for batch in backend.uploads] == [UPLOAD_BATCH_MAX, UPLOAD_BATCH_MAX, 5]
    assert (drained.acknowledged, drained.pending) == (UPLOAD_BATCH_MAX * 2 + 5, 0)


def test_drain_gives_up_after_its_attempts_and_keeps_every_tap(tmp_path: Path) -> None:
    backend, clock, monotonic = (
        FakeBackend(failures_to_come=99),
        SecondsClock(),
        SecondsClock(MONOTONIC_START_S),
    )
    gate = device(backend, tmp_path, clock, monotonic)
    gate.gate.present_qr("TL1:")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        monotonic.advance(seconds)

    drained = gate.drain(attempts_max=3, sleep=sleep)
    assert (drained.acknowledged, drained.pending) == (0, 1)
    assert isinstance(drained.last_error, BackendUnavailable)
    assert len(slept) == 2  # a backoff between each of the three attempts


def test_a_full_outbox_refuses_the_tap_and_records_nothing(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / OUTBOX_FILE, taps_max=1)
    gate = Gate(outbox, Trust(), clock=SecondsClock())
    assert gate.present_qr("TL1:").seq == 1
    full = gate.present_qr("TL1:")
    assert (full.accepted, full.reason, full.seq) == (False, "outbox_full", None)
    assert outbox.last_seq() == 1


def test_a_blank_scanner_line_is_a_caller_bug(tmp_path: Path) -> None:
    gate = Gate(Outbox(tmp_path / OUTBOX_FILE), Trust(), clock=SecondsClock())
    with pytest.raises(AssertionError):
        gate.present_qr("  \r\n")


def upload_all(gate: Device, steps_max: int = 10) -> int:
    """Uploads batch after batch while taps wait to be sent; bounded, so it cannot spin."""
    acknowledged = 0
    for _ in range(steps_max):
        if not gate.outbox.pending_count():
            break
        acknowledged += gate.uploader.step().acknowledged
    return acknowledged


def test_a_wiped_device_numbering_from_1_again_loses_no_tap(tmp_path: Path) -> None:
    backend, clock, lan = FakeBackend(), SecondsClock(), phone("lan")
    before = device(backend, tmp_path / "before-wipe", clock)
    assert before.sync()
    for at in (NOW - 3, NOW - 2, NOW - 1):
        before.gate.present_qr(lan.code(at))
    assert upload_all(before) == 3
    before.close()

    clock.advance(600)
    errors: list[Exception] = []
    wiped = Device(  # a fresh state dir: the outbox numbers from 1 again
        backend,
        tmp_path / "after-wipe",
        validator_id=backend.validator_id,
        sync_interval_s=SYNC_INTERVAL_S,
        clock=clock,
        monotonic=SecondsClock(MONOTONIC_START_S),
        on_error=lambda _what, error: errors.append(error),
    )
    assert wiped.sync()
    codes = [lan.code(int(clock.now_s) - 1) for _ in range(3)]
    assert [wiped.gate.present_qr(code).seq for code in codes] == [1, 2, 3]
    wiped.step()
    # Answered seq_conflict: kept (not acknowledged, never pruned), and no longer sent.
    assert wiped.outbox.pending_count() == 0
    assert [(t.seq, t.backend_status) for t in wiped.outbox.held()] == [
        (1, "seq_conflict"),
        (2, "seq_conflict"),
        (3, "seq_conflict"),
    ]
    assert [tap["code"] for _, tap in backend.conflicts] == codes
    assert [type(e).__name__ for e in errors] == ["SeqConflictsHeld"]
    assert upload_all(wiped) == 0
    assert wiped.drain(sleep=lambda _s: None) == Drained(0, 0, None, held=3)
    assert backend.uploads[-1] == [1, 2, 3]  # sent once

    backend.epoch = 1  # staff enrol the validator again; the device learns it from its config
    assert wiped.sync()
    assert (wiped.outbox.epoch(), wiped.outbox.pending_count()) == (1, 3)
    assert upload_all(wiped) == 3
    assert [tap["code"] for tap in backend.by_epoch[1].values()] == codes
    assert wiped.outbox.held() == []
    assert wiped.gate.present_qr(lan.code(int(clock.now_s))).seq == 4
    assert upload_all(wiped) == 1
    assert sorted(backend.by_epoch[1]) == [1, 2, 3, 4]


def test_a_conflict_answered_for_an_older_epoch_goes_again_in_the_devices_epoch(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / OUTBOX_FILE)
    seq = outbox.append(
        medium="qr", tapped_at=NOW, decision="refused", reason="malformed", upload_fields={}
    )
    assert outbox.enrol(2) == 0  # enrolled while the tap waited: it keeps its epoch
    assert [t.epoch for t in outbox.pending(10)] == [0]
    outbox.acknowledge([Acknowledgement(seq, "seq_conflict", None)], at=NOW)
    assert ([t.epoch for t in outbox.pending(10)], outbox.held()) == ([2], [])
    assert outbox.enrol(1) == 0  # an older epoch changes nothing
    assert outbox.epoch() == 2


def test_an_outbox_written_before_epochs_opens_with_its_taps_in_epoch_0(tmp_path: Path) -> None:
    path = tmp_path / OUTBOX_FILE
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sequence (id INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL)")
        db.execute("INSERT INTO sequence VALUES (1, 1)")
        db.execute(
            "CREATE TABLE taps (seq INTEGER PRIMARY KEY, medium TEXT NOT NULL,"
            " tapped_at INTEGER NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL,"
            " payload TEXT NOT NULL, acked_at INTEGER, backend_status TEXT, backend_reason TEXT)"
        )
        db.execute(
            "INSERT INTO taps VALUES (1, 'qr', ?, 'refused', 'malformed', '{}', NULL, NULL, NULL)",
            (NOW,),
        )
    outbox = Outbox(path)
    assert [(t.seq, t.epoch) for t in outbox.pending(10)] == [(1, 0)]
    assert outbox.epoch() == 0
