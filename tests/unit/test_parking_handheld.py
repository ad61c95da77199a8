"""The parking handheld against a fake parking backend: the outbox first, replay in order,
one effect for a request whose answer was lost, a restart that loses nothing, and refusals that
are verdicts rather than retries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.doubles import SecondsClock
from tests.parking_backend_fake import LOT, FakeParkingBackend
from validators.handheld import NO_OPEN_SESSION, Handheld
from validators.handheld_outbox import HandheldOutbox, HandheldOutboxFull

DEVICE = 7
PLATE = "29A-123.45"
OTHER_PLATE = "30E-678.90"
TWO_HOURS_MIN = 120
CODE_A = "TL1:CODE-A"
CODE_B = "TL1:CODE-B"


def handheld(backend: FakeParkingBackend, path: Path, clock: SecondsClock) -> Handheld:
    return Handheld(HandheldOutbox(path), backend, device_id=DEVICE, lot_id=LOT, clock=clock)


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "handheld.sqlite3"


def test_an_action_is_numbered_and_stored_before_anything_is_sent(outbox_path: Path) -> None:
    backend = FakeParkingBackend(failures_to_come=1)
    device = handheld(backend, outbox_path, SecondsClock())

    action = device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)
    replayed = device.replay()

    assert (action.seq, action.request_id) == (1, "handheld-7-1")
    assert replayed.error is not None
    assert (replayed.verdicts, replayed.pending) == ([], 1)
    assert backend.sessions == {}
    [stored] = device.outbox.pending(10)
    assert stored.fields["paid_until"] == "2027-01-15T10:00:00+00:00"  # now + 2 h, fixed once


def test_queued_actions_are_replayed_in_order_once_the_backend_answers(outbox_path: Path) -> None:
    backend = FakeParkingBackend(failures_to_come=3)
    device = handheld(backend, outbox_path, SecondsClock())
    device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)
    assert device.replay().pending == 1
    device.start(OTHER_PLATE, "motorbike", 60, CODE_B)
    assert device.replay().pending == 2
    device.end(PLATE)
    assert device.replay().pending == 3

    replayed = device.replay()

    assert replayed.error is None
    assert [(v.seq, v.action, v.status) for v in replayed.verdicts] == [
        (1, "start", "started"),
        (2, "start", "started"),
        (3, "end", "ended"),
    ]
    assert backend.calls == [
        ("start", "handheld-7-1"),
        ("start", "handheld-7-2"),
        ("enforcement", PLATE),
        ("end", "handheld-7-3"),
    ]
    assert backend.keys == ["handheld-7-1", "handheld-7-2", "handheld-7-3"]
    assert device.outbox.pending_count() == 0


def test_a_start_whose_answer_was_lost_is_sent_again_and_applied_once(outbox_path: Path) -> None:
    backend = FakeParkingBackend(lose_answers=1)
    device = handheld(backend, outbox_path, SecondsClock())
    device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)

    lost = device.replay()
    again = device.replay()

    assert (lost.error is not None, lost.pending) == (True, 1)
    assert [(v.status, v.request_id) for v in again.verdicts] == [("started", "handheld-7-1")]
    assert backend.calls == [("start", "handheld-7-1"), ("start", "handheld-7-1")]
    assert len(backend.sessions) == 1
    assert again.verdicts[0].session == next(iter(backend.sessions.values()))


def test_an_end_whose_answer_was_lost_ends_the_same_session_once(outbox_path: Path) -> None:
    backend = FakeParkingBackend()
    device = handheld(backend, outbox_path, SecondsClock())
    device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)
    device.replay()
    device.end(PLATE)
    backend.lose_answers = 1

    lost = device.replay()
    # The plate has no open session any more: only the session remembered before the post
    # lets the retry end it with the same id, and answer what the first attempt did.
    again = device.replay()

    assert lost.pending == 1
    [ended] = again.verdicts
    assert ended.status == "ended"
    assert ended.session is not None
    assert ended.record == backend.records[ended.session["session_id"]]
    assert ended.session["state"] == "ended"
    assert [call for call in backend.calls if call[0] != "start"] == [
        ("enforcement", PLATE),
        ("end", "handheld-7-2"),
        ("end", "handheld-7-2"),
    ]
    assert len(backend.records) == 1


def test_queued_actions_and_the_sequence_survive_a_restart(outbox_path: Path) -> None:
    backend = FakeParkingBackend(failures_to_come=2)
    clock = SecondsClock()
    first = handheld(backend, outbox_path, clock)
    first.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)
    first.replay()
    first.end(PLATE)
    first.replay()
    first.outbox.close()

    restarted = handheld(backend, outbox_path, clock)
    replayed = restarted.replay()
    later = restarted.start(OTHER_PLATE, "car", 60, CODE_B)

    assert [(v.seq, v.status) for v in replayed.verdicts] == [(1, "started"), (2, "ended")]
    assert (later.seq, later.request_id) == (3, "handheld-7-3")
    assert len(backend.records) == 1


def test_the_sequence_never_goes_back_when_finished_actions_are_pruned(outbox_path: Path) -> None:
    device = handheld(FakeParkingBackend(), outbox_path, SecondsClock())
    device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)
    device.replay()
    device.outbox.close()
    with sqlite3.connect(outbox_path) as db:
        db.execute("DELETE FROM actions")

    reopened = HandheldOutbox(outbox_path)
    action = reopened.append("end", {"lot_id": LOT, "plate": PLATE}, device_id=DEVICE, at=0)

    assert (action.seq, reopened.last_seq()) == (2, 2)


def test_a_refusal_is_the_actions_verdict_and_is_not_sent_again(outbox_path: Path) -> None:
    backend = FakeParkingBackend(refused_codes={CODE_B: "expired"})
    device = handheld(backend, outbox_path, SecondsClock())
    device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)
    device.start(OTHER_PLATE, "car", TWO_HOURS_MIN, CODE_A)  # the same code again
    device.start(OTHER_PLATE, "car", TWO_HOURS_MIN, CODE_B)

    replayed = device.replay()
    after = device.replay()

    assert [(v.status, v.code, v.http_status) for v in replayed.verdicts] == [
        ("started", None, None),
        ("refused", "code_already_used", 409),
        ("refused", "code_expired", 422),
    ]
    assert (replayed.pending, after.verdicts, len(backend.calls)) == (0, [], 3)
    stored = device.outbox.get(2)
    assert stored is not None
    assert stored.verdict is not None
    assert stored.verdict["code"] == "code_already_used"


def test_ending_a_plate_without_an_open_session_is_refused(outbox_path: Path) -> None:
    backend = FakeParkingBackend()
    device = handheld(backend, outbox_path, SecondsClock())
    device.end(PLATE)

    [verdict] = device.replay().verdicts

    assert (verdict.status, verdict.code) == ("refused", NO_OPEN_SESSION)
    assert backend.calls == [("enforcement", PLATE)]


def test_a_refused_token_keeps_the_actions_queued_in_order(outbox_path: Path) -> None:
    backend = FakeParkingBackend(token_revoked=True)
    device = handheld(backend, outbox_path, SecondsClock())
    device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)
    device.end(PLATE)

    refused = device.replay()
    backend.token_revoked = False
    fixed = device.replay()

    assert (refused.setup_refused, refused.verdicts, refused.pending) == (True, [], 2)
    assert [v.status for v in fixed.verdicts] == ["started", "ended"]


def test_a_full_outbox_takes_no_more_actions(outbox_path: Path) -> None:
    outbox = HandheldOutbox(outbox_path, actions_max=2)
    device = Handheld(
        outbox, FakeParkingBackend(), device_id=DEVICE, lot_id=LOT, clock=SecondsClock()
    )
    device.end(PLATE)
    device.end(OTHER_PLATE)

    with pytest.raises(HandheldOutboxFull):
        device.end(PLATE)
    assert outbox.last_seq() == 2


def test_a_request_still_in_progress_upstream_is_sent_again_not_refused(
    outbox_path: Path,
) -> None:
    backend = FakeParkingBackend(in_progress_to_come=1)
    device = handheld(backend, outbox_path, SecondsClock())
    device.start(PLATE, "car", TWO_HOURS_MIN, CODE_A)

    waiting = device.replay()
    started = device.replay()

    assert (waiting.setup_refused, waiting.verdicts, waiting.pending) == (False, [], 1)
    assert [v.status for v in started.verdicts] == ["started"]
