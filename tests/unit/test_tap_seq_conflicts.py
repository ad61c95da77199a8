"""A reused sequence number: the same tap is a duplicate, another tap is kept for review; a
re-enrolled device numbers its taps in a new epoch, and taps stored before epochs still load."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from tests.builders.taps import (
    BUS_17,
    BUS_18,
    World,
    build,
    qr_tap,
    recorded_taps,
    statuses,
    world,
)
from ticketing.shared.observed import LOG_SECTION_MAX
from ticketing.taps.application.ingestion import QrTap, TapIngestion
from ticketing.taps.domain.tap import Tap, tap_id
from ticketing.taps.domain.tap_conflict import TapConflict, upload_digest
from ticketing.taps.domain.validator import EpochNotEnrolled

__all__ = ["world"]  # the fixture, shared with the ingestion tests


def kept_conflicts(taps: TapIngestion) -> list[Any]:
    notifications = taps.notification_log.select(start=1, limit=LOG_SECTION_MAX)
    events = [taps.mapper.to_domain_event(n) for n in notifications]
    return [e for e in events if isinstance(e, TapConflict.Recorded)]


def test_a_wiped_device_numbering_from_1_again_is_told_seq_conflict_and_nothing_is_lost(
    world: World,
) -> None:
    before_wipe = [qr_tap(world, seq) for seq in (1, 2, 3)]
    world.taps.ingest_batch(BUS_17, before_wipe)
    after_wipe = [qr_tap(world, seq, counter=100 + seq, after_s=600) for seq in (1, 2, 3)]
    results = world.taps.ingest_batch(BUS_17, after_wipe)
    assert statuses(results) == ["seq_conflict"] * 3
    assert [e.code_text for e in recorded_taps(world.taps)] == [t.code_text for t in before_wipe]
    for tap, result in zip(after_wipe, results, strict=True):
        conflict = world.taps.get_conflict(result.tap_id)
        assert conflict is not None
        assert (conflict.validator_id, conflict.epoch, conflict.seq) == (BUS_17, 0, tap.seq)
        assert conflict.conflicts_with == result.conflicts_with == tap_id(BUS_17, tap.seq)
        assert conflict.tapped_at == tap.tapped_at
    assert [e.code_text for e in kept_conflicts(world.taps)] == [t.code_text for t in after_wipe]


def test_a_conflicting_tap_sent_again_is_answered_the_same_and_kept_once(world: World) -> None:
    world.taps.ingest_batch(BUS_17, [qr_tap(world, 1), qr_tap(world, 2)])
    conflicting = [qr_tap(world, 1, counter=50), qr_tap(world, 3)]
    first = world.taps.ingest_batch(BUS_17, conflicting)
    again = world.taps.ingest_batch(BUS_17, conflicting)
    assert statuses(first) == ["seq_conflict", "accepted"]
    assert statuses(again) == ["seq_conflict", "duplicate"]
    assert [r.tap_id for r in again] == [r.tap_id for r in first]
    assert len(kept_conflicts(world.taps)) == 1


def test_two_taps_numbered_alike_in_one_batch_record_the_first_and_keep_the_second(
    world: World,
) -> None:
    first, other = qr_tap(world, 4), qr_tap(world, 4, counter=40)
    results = world.taps.ingest_batch(BUS_17, [first, other, first, qr_tap(world, 5)])
    assert statuses(results) == ["accepted", "seq_conflict", "duplicate", "accepted"]
    assert [e.code_text for e in recorded_taps(world.taps) if e.seq == 4] == [first.code_text]
    assert [e.code_text for e in kept_conflicts(world.taps)] == [other.code_text]


def test_the_online_check_of_a_reused_seq_is_a_seq_conflict(world: World) -> None:
    world.taps.ingest_one(BUS_17, qr_tap(world, 1))
    assert world.taps.ingest_one(BUS_17, qr_tap(world, 1, counter=9)).status == "seq_conflict"


def test_a_re_enrolled_device_records_its_taps_numbered_from_1_in_its_new_epoch(
    world: World,
) -> None:
    old = qr_tap(world, 1)
    world.taps.ingest_batch(BUS_17, [old])
    assert world.taps.enrol_validator(BUS_17).epoch == 1
    renumbered = [qr_tap(world, seq, counter=200 + seq) for seq in (1, 2)]
    results = world.taps.ingest_batch(BUS_17, renumbered, epoch=1)
    assert statuses(results) == ["accepted", "accepted"]
    assert results[0].tap_id == tap_id(BUS_17, 1, epoch=1) != tap_id(BUS_17, 1)
    assert statuses(world.taps.ingest_batch(BUS_17, renumbered, epoch=1)) == ["duplicate"] * 2
    # A late upload of the old epoch is still told apart from the new one.
    assert statuses(world.taps.ingest_batch(BUS_17, [old])) == ["duplicate"]
    new_tap = world.taps.get_tap(BUS_17, 1, epoch=1)
    assert new_tap is not None
    assert new_tap.epoch == 1
    assert sorted((e.epoch, e.seq) for e in recorded_taps(world.taps)) == [(0, 1), (1, 1), (1, 2)]


def test_an_upload_naming_an_epoch_never_given_is_refused_whole(world: World) -> None:
    with pytest.raises(EpochNotEnrolled) as refused:
        world.taps.ingest_batch(BUS_17, [qr_tap(world, 1)], epoch=1)
    assert refused.value.code == "epoch_not_enrolled"
    with pytest.raises(EpochNotEnrolled):
        world.taps.ingest_one(BUS_17, qr_tap(world, 1), epoch=-1)
    assert recorded_taps(world.taps) == []


def test_an_enrolment_this_process_did_not_see_is_read_when_an_upload_names_it(
    world: World,
) -> None:
    world.taps.get_validator(BUS_18)  # remembered at epoch 0
    elsewhere = world.taps.get_validator(BUS_18, fresh=True)
    elsewhere.enrol(at=world.clock())
    world.taps.save(elsewhere)  # as another process would, behind this one's memory
    assert statuses(world.taps.ingest_batch(BUS_18, [qr_tap(world, 1)], epoch=1)) == ["accepted"]


def test_a_fresh_batch_reads_nothing_from_the_store(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_reads(*_args: object) -> dict[UUID, StoredEvent]:
        raise AssertionError("the happy path must not read the store")

    monkeypatch.setattr(world.taps.claiming_recorder, "first_events_among", no_reads)
    taps = [qr_tap(world, seq) for seq in range(1, 6)]
    assert statuses(world.taps.ingest_batch(BUS_17, taps)) == ["accepted"] * 5


def old_shaped(stored: StoredEvent) -> StoredEvent:
    """The event as stored before taps had an epoch (class version 1)."""
    state = json.loads(stored.state)
    del state["epoch"], state["class_version"]
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state, separators=(",", ":")).encode(),
    )


def test_a_tap_stored_before_epochs_still_loads_as_epoch_0_and_dedupes_its_repeat() -> None:
    then, now = build(sam=None), build(sam=None)
    tap = QrTap(7, then.clock(), "refused", "malformed", "TL1:not a code")
    then.taps.ingest_batch(BUS_17, [tap])
    (stored,) = [
        n
        for n in then.taps.notification_log.select(start=1, limit=LOG_SECTION_MAX)
        if n.topic == Tap.Recorded.TOPIC
    ]
    now.taps.recorder.insert_events([old_shaped(stored)])
    (event,) = recorded_taps(now.taps)
    assert (event.epoch, event.seq, event.code_text) == (0, 7, "TL1:not a code")
    loaded = now.taps.get_tap(BUS_17, 7)
    assert loaded is not None
    assert (loaded.epoch, loaded.refusal_reason) == (0, "malformed")
    assert statuses(now.taps.ingest_batch(BUS_17, [tap])) == ["duplicate"]
    other = QrTap(7, then.clock(), "refused", "malformed", "TL1:another")
    assert statuses(now.taps.ingest_batch(BUS_17, [other])) == ["seq_conflict"]


def test_a_conflicts_digest_is_the_one_earlier_releases_gave_unless_the_upload_names_a_stop() -> (
    None
):
    """A conflict sent again after an upgrade is still the same conflict: the digest of an
    upload without the fields added since (a bus's `stop_id`) is what the release before gave
    (the value below was computed by that release)."""
    state = {
        "tapped_at": datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
        "medium": "qr",
        "device_decision": "accepted",
        "device_reason": "accepted",
        "code_text": "TL1:example",
        **dict.fromkeys(
            (
                "serial",
                "key_level",
                "terminal_challenge",
                "card_challenge",
                "transaction_counter",
                "transcript",
                "card_mac",
            )
        ),
    }
    earlier = "be4027775128e0d8a532428f4e91ccdd398e479fdc8b6458cf86310cd453a5c2"
    assert upload_digest(state) == earlier
    assert upload_digest(state | {"stop_id": None}) == earlier
    assert upload_digest(state | {"stop_id": "bus-nhon"}) != earlier
