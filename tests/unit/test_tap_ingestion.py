"""Tap ingestion on the in-memory store: re-verification, exactly-once recording, code reuse."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

import pytest
from eventsourcing.persistence import JSONTranscoder, Mapper

from tests.builders.taps import (
    BUS_17,
    BUS_18,
    START,
    World,
    build,
    card_tap,
    issue_smart_card,
    qr_tap,
    recorded_taps,
    statuses,
    unix,
    world,
)
from tests.tap_media import CARD_SERIAL, bus_ride, personalised_card
from ticketing.shared.access import Forbidden, NotThisDevice, Principal, Role, check_can_upload_taps
from ticketing.shared.observed import LOG_SECTION_MAX
from ticketing.taps.application.ingestion import (
    TAP_BATCH_MAX,
    CardTap,
    QrTap,
    TapResult,
    TapStatus,
)
from ticketing.taps.domain.tap import (
    CODE_REPLAYED,
    TapBatchTooLarge,
    card_session_use_id,
    qr_code_use_id,
    tap_id,
)
from ticketing.taps.domain.validator import ValidatorAlreadyRegistered, ValidatorNotFound

__all__ = ["world"]  # the fixture, shared with the sequence-number tests


def test_a_genuine_qr_tap_is_accepted_and_recorded_with_what_its_code_says(world: World) -> None:
    results = world.taps.ingest_batch(BUS_17, [qr_tap(world, 1)])
    assert statuses(results) == ["accepted"]
    (event,) = recorded_taps(world.taps)
    assert (event.validator_id, event.seq, event.medium) == (BUS_17, 1, "qr")
    assert (event.card_id, event.counter, event.generated_at) == (world.card_id, 1, unix(START) - 2)
    assert event.code_text.startswith("TL1:")
    assert (event.verification, event.refusal_reason) == ("accepted", None)
    assert (event.validator_kind, event.network_id, event.location) == ("bus", 1, 32)
    assert event.tapped_at == START
    assert world.taps.claimed_by(qr_code_use_id(world.card_id, unix(START) - 2, 1)) == tap_id(
        BUS_17, 1
    )


def test_an_invalid_qr_code_is_refused_with_the_verifiers_reason_and_still_recorded(
    world: World,
) -> None:
    stale = QrTap(1, START, "accepted", "accepted", world.phone.code(unix(START) - 600, 1))
    garbage = QrTap(2, START, "refused", "malformed", "TL1:not a code")
    tampered_text = world.phone.code(unix(START), 3)
    tampered = QrTap(3, START, "accepted", "accepted", tampered_text[:-2] + "00")
    results = world.taps.ingest_batch(BUS_17, [stale, garbage, tampered])
    assert [(r.status.value, r.reason) for r in results] == [
        ("refused", "code_stale"),
        ("refused", "malformed"),
        ("refused", "bad_device_signature"),
    ]
    events = recorded_taps(world.taps)
    assert [(e.seq, e.verification, e.refusal_reason) for e in events] == [
        (1, "refused", "code_stale"),
        (2, "refused", "malformed"),
        (3, "refused", "bad_device_signature"),
    ]
    assert (events[1].card_id, events[1].code_text) == (None, "TL1:not a code")


def test_a_card_denied_before_the_tap_is_refused_but_one_denied_after_is_not(
    world: World,
) -> None:
    world.deny.add(world.card_id, listed_at=START + timedelta(seconds=30))
    before = qr_tap(world, 1)
    after = qr_tap(world, 2, after_s=60)
    world.clock.now = START + timedelta(seconds=90)  # uploaded after both taps
    results = world.taps.ingest_batch(BUS_17, [before, after])
    assert [(r.status.value, r.reason) for r in results] == [
        ("accepted", None),
        ("refused", "card_denied"),
    ]


def test_the_same_batch_uploaded_three_times_records_each_tap_once(world: World) -> None:
    batch = [qr_tap(world, seq) for seq in range(1, 6)]
    assert statuses(world.taps.ingest_batch(BUS_17, batch)) == ["accepted"] * 5
    for _ in range(2):
        assert statuses(world.taps.ingest_batch(BUS_17, batch)) == ["duplicate"] * 5
    assert sorted(e.seq for e in recorded_taps(world.taps)) == [1, 2, 3, 4, 5]


def test_a_batch_holding_old_and_new_taps_records_only_the_new_ones(world: World) -> None:
    # The same taps sent again: a code's signature differs each time it is made.
    old = [qr_tap(world, 1), qr_tap(world, 2)]
    world.taps.ingest_batch(BUS_17, old)
    results = world.taps.ingest_batch(BUS_17, [*old, qr_tap(world, 3)])
    assert statuses(results) == ["duplicate", "duplicate", "accepted"]
    assert len(recorded_taps(world.taps)) == 3


def test_the_same_qr_code_at_two_validators_is_one_use_and_one_refused_tap(world: World) -> None:
    code = world.phone.code(unix(START) - 1, 7)
    first = world.taps.ingest_batch(BUS_17, [QrTap(40, START, "accepted", "accepted", code)])
    second = world.taps.ingest_batch(BUS_18, [QrTap(9, START, "accepted", "accepted", code)])
    assert [(r.status.value, r.reason) for r in first + second] == [
        ("accepted", None),
        ("refused", CODE_REPLAYED),
    ]
    events = recorded_taps(world.taps)
    assert [(e.validator_id, e.verification) for e in events] == [
        (BUS_17, "accepted"),
        (BUS_18, "refused"),
    ]
    use = qr_code_use_id(world.card_id, unix(START) - 1, 7)
    assert world.taps.claimed_by(use) == tap_id(BUS_17, 40)
    again = world.taps.ingest_batch(BUS_18, [QrTap(9, START, "accepted", "accepted", code)])
    assert statuses(again) == ["duplicate"]


def test_the_same_code_twice_in_one_batch_is_accepted_once(world: World) -> None:
    code = world.phone.code(unix(START), 3)
    batch = [QrTap(seq, START, "accepted", "accepted", code) for seq in (1, 2)]
    results = world.taps.ingest_batch(BUS_17, [*batch, qr_tap(world, 5)])
    assert [(r.status.value, r.reason) for r in results] == [
        ("accepted", None),
        ("refused", CODE_REPLAYED),
        ("accepted", None),
    ]


def test_a_code_the_device_refused_is_used_up_by_that_sighting(world: World) -> None:
    code = world.phone.code(unix(START), 4)
    (seen,) = world.taps.ingest_batch(BUS_17, [QrTap(1, START, "refused", "passback", code)])
    (next_gate,) = world.taps.ingest_batch(BUS_18, [QrTap(1, START, "accepted", "accepted", code)])
    assert (seen.status.value, seen.reason, seen.code_consumed) == ("accepted", None, True)
    assert (next_gate.status.value, next_gate.reason) == ("refused", CODE_REPLAYED)
    assert not next_gate.code_consumed
    assert world.taps.claimed_by(qr_code_use_id(world.card_id, unix(START), 4)) == tap_id(BUS_17, 1)


def test_a_code_sent_refused_twice_is_refused_as_a_replay_the_third_time(world: World) -> None:
    code = world.phone.code(unix(START), 5)
    sent = [(BUS_17, 1, "refused"), (BUS_17, 2, "refused"), (BUS_18, 1, "accepted")]
    results = [
        world.taps.ingest_one(validator, QrTap(seq, START, decision, "sent", code))
        for validator, seq, decision in sent
    ]
    assert [(r.status.value, r.reason, r.code_consumed) for r in results] == [
        ("accepted", None, True),
        ("refused", CODE_REPLAYED, False),
        ("refused", CODE_REPLAYED, False),
    ]


def test_an_honest_resend_of_a_refused_sighting_is_a_duplicate_not_a_replay(
    world: World,
) -> None:
    code = world.phone.code(unix(START), 6)
    batch = [QrTap(3, START, "refused", "passback", code), qr_tap(world, 4)]
    first = world.taps.ingest_batch(BUS_17, batch)
    again = world.taps.ingest_batch(BUS_17, batch)
    online_again = world.taps.ingest_one(BUS_17, batch[0])
    assert [(r.status.value, r.code_consumed) for r in first] == [("accepted", True)] * 2
    assert [(r.status.value, r.code_consumed) for r in again] == [("duplicate", True)] * 2
    assert (online_again.status.value, online_again.code_consumed) == ("duplicate", True)


def test_a_forged_code_uses_up_nothing(world: World) -> None:
    code = world.phone.code(unix(START), 8)
    forged = code[:-4] + ("AAAA" if not code.endswith("AAAA") else "BBBB")
    (refused,) = world.taps.ingest_batch(BUS_17, [QrTap(1, START, "refused", "x", forged)])
    (genuine,) = world.taps.ingest_batch(BUS_18, [QrTap(1, START, "accepted", "ok", code)])
    assert (refused.status.value, refused.code_consumed) == ("refused", False)
    assert (genuine.status.value, genuine.code_consumed) == ("accepted", True)


def test_interleaved_batches_from_two_validators_are_each_recorded_once(world: World) -> None:
    def batch(validator: int, seqs: range) -> list[QrTap]:
        # Each validator sees other riders' codes: counters apart by validator.
        return [qr_tap(world, seq, counter=validator * 1000 + seq) for seq in seqs]

    a1, b1 = batch(BUS_17, range(1, 4)), batch(BUS_18, range(1, 3))
    a2, b2 = batch(BUS_17, range(3, 6)), batch(BUS_18, range(2, 5))
    for validator, upload in ((BUS_17, a1), (BUS_18, b1), (BUS_17, a2), (BUS_18, b2)):
        world.taps.ingest_batch(validator, upload)
    recorded = sorted((e.validator_id, e.seq) for e in recorded_taps(world.taps))
    assert recorded == [(BUS_17, s) for s in range(1, 6)] + [(BUS_18, s) for s in range(1, 5)]


def test_a_crash_between_save_and_acknowledgement_is_repaired_by_re_sending(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [qr_tap(world, seq) for seq in range(1, 4)]
    insert = world.taps.recorder.insert_events

    def record_then_crash(*args: Any, **kwargs: Any) -> Any:
        insert(*args, **kwargs)
        raise ConnectionResetError("the acknowledgement never left")

    monkeypatch.setattr(world.taps.recorder, "insert_events", record_then_crash)
    with pytest.raises(ConnectionResetError):
        world.taps.ingest_batch(BUS_17, batch)
    monkeypatch.undo()
    assert statuses(world.taps.ingest_batch(BUS_17, batch)) == ["duplicate"] * 3
    assert sorted(e.seq for e in recorded_taps(world.taps)) == [1, 2, 3]


def test_a_card_tap_whose_mac_the_sam_recomputes_is_accepted(world: World) -> None:
    issue_smart_card(world)
    proof = bus_ride(personalised_card(world.account_id), at=unix(START), validator=BUS_17)
    results = world.taps.ingest_batch(BUS_17, [card_tap(1, proof)])
    assert statuses(results) == ["accepted"]
    (event,) = recorded_taps(world.taps)
    assert (event.medium, event.serial, event.transaction_counter) == (
        "card",
        CARD_SERIAL.hex(),
        proof.counter,
    )
    assert (event.transcript, event.card_mac) == (proof.transcript.hex(), proof.card_mac.hex())
    assert (event.key_level, event.device_reason) == (3, "charged")
    use = card_session_use_id(CARD_SERIAL.hex(), proof.counter)
    assert world.taps.claimed_by(use) == event.originator_id


def test_a_card_tap_with_a_tampered_transcript_is_refused_and_recorded(world: World) -> None:
    issue_smart_card(world)
    proof = bus_ride(personalised_card(world.account_id), at=unix(START), validator=BUS_17)
    transcript = bytearray(proof.transcript)
    transcript[-3] ^= 0x01  # the fare the DECREASE took, say
    tampered = dataclasses.replace(proof, transcript=bytes(transcript))
    results = world.taps.ingest_batch(BUS_17, [card_tap(1, tampered)])
    assert [(r.status.value, r.reason) for r in results] == [("refused", "bad_card_mac")]
    assert recorded_taps(world.taps)[0].transcript == bytes(transcript).hex()


def test_the_same_card_session_uploaded_by_two_validators_is_refused_the_second_time(
    world: World,
) -> None:
    issue_smart_card(world)
    proof = bus_ride(personalised_card(world.account_id), at=unix(START), validator=BUS_17)
    world.taps.ingest_batch(BUS_17, [card_tap(1, proof)])
    results = world.taps.ingest_batch(BUS_18, [card_tap(1, proof)])
    assert [(r.status.value, r.reason) for r in results] == [
        ("refused", "transaction_counter_replayed")
    ]


def test_a_card_tap_of_an_unknown_serial_is_refused_not_a_crash(world: World) -> None:
    proof = bus_ride(personalised_card(world.account_id), at=unix(START), validator=BUS_17)
    results = world.taps.ingest_batch(BUS_17, [card_tap(1, proof)])
    assert [(r.status.value, r.reason) for r in results] == [("refused", "unknown_card")]


def test_a_card_tap_without_a_sam_is_refused_not_a_crash() -> None:
    world = build(sam=None)
    issue_smart_card(world)
    proof = bus_ride(personalised_card(world.account_id), at=unix(START), validator=BUS_17)
    results = world.taps.ingest_batch(BUS_17, [card_tap(1, proof)])
    assert [(r.status.value, r.reason) for r in results] == [("refused", "sam_unavailable")]


def test_a_card_tap_without_a_session_is_recorded_as_refused(world: World) -> None:
    denied = CardTap(1, START, "refused", "card_denied", CARD_SERIAL.hex(), None)
    results = world.taps.ingest_batch(BUS_17, [denied])
    assert [(r.status.value, r.reason) for r in results] == [("refused", "no_card_proof")]
    assert recorded_taps(world.taps)[0].device_reason == "card_denied"


def test_a_batch_over_the_limit_is_refused_whole_with_a_typed_error(world: World) -> None:
    code = world.phone.code(unix(START), 1)
    batch = [QrTap(seq, START, "accepted", "accepted", code) for seq in range(1, TAP_BATCH_MAX + 2)]
    with pytest.raises(TapBatchTooLarge) as raised:
        world.taps.ingest_batch(BUS_17, batch)
    assert raised.value.code == "tap_batch_too_large"
    assert recorded_taps(world.taps) == []


def test_taps_of_an_unregistered_validator_are_refused(world: World) -> None:
    with pytest.raises(ValidatorNotFound):
        world.taps.ingest_batch(99, [qr_tap(world, 1)])


def test_a_validator_id_is_registered_once(world: World) -> None:
    with pytest.raises(ValidatorAlreadyRegistered):
        world.taps.register_validator(validator_id=BUS_17, kind="bus", network_id=1, location=9)


def test_the_online_check_answers_one_tap_with_the_backends_decision(world: World) -> None:
    tap = qr_tap(world, 1)
    assert world.taps.ingest_one(BUS_17, tap).status is TapStatus.ACCEPTED
    assert world.taps.ingest_one(BUS_17, tap).status is TapStatus.DUPLICATE


def test_online_checks_of_one_code_at_two_gates_at_once_accept_it_once(world: World) -> None:
    code = world.phone.code(unix(START) - 1, 900)
    gates = [(BUS_17, 70), (BUS_18, 70)]

    async def both() -> list[TapResult]:
        return list(
            await asyncio.gather(
                *(
                    world.taps.ingest_one_async(gate, QrTap(seq, START, "accepted", "ok", code))
                    for gate, seq in gates
                )
            )
        )

    results = asyncio.run(both())
    assert sorted((r.status.value, r.reason) for r in results) == [
        ("accepted", None),
        ("refused", CODE_REPLAYED),
    ]
    assert len(recorded_taps(world.taps)) == 2


def test_online_checks_from_many_threads_are_each_recorded_once(world: World) -> None:
    taps = [qr_tap(world, seq, counter=1000 + seq) for seq in range(1, 41)]
    results: list[TapResult] = []
    lock = threading.Lock()

    def check(tap: QrTap) -> None:
        result = world.taps.ingest_one(BUS_17, tap)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=check, args=(tap,)) for tap in taps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.seq for r in results) == list(range(1, 41))
    assert {r.status.value for r in results} == {"accepted"}
    again = world.taps.ingest_one(BUS_17, taps[0])
    assert again.status.value == "duplicate"
    assert len(recorded_taps(world.taps)) == 40


def test_a_device_uploads_only_as_its_own_validator() -> None:
    device = Principal(token_id="t", role=Role.VALIDATOR, device_id=BUS_17)
    check_can_upload_taps(device, BUS_17)
    with pytest.raises(NotThisDevice):
        check_can_upload_taps(device, BUS_18)
    with pytest.raises(Forbidden):
        check_can_upload_taps(Principal(token_id="a", role=Role.ADMIN), BUS_17)


def test_a_recorded_tap_is_stored_as_the_library_would_store_its_event(world: World) -> None:
    issue_smart_card(world)
    proof = bus_ride(personalised_card(world.account_id), at=unix(START), validator=BUS_17)
    world.taps.ingest_batch(BUS_17, [qr_tap(world, 1), card_tap(2, proof)])
    library: Mapper[UUID] = Mapper(JSONTranscoder())
    world.taps.register_transcodings(cast(JSONTranscoder, library.transcoder))
    notifications = world.taps.notification_log.select(start=1, limit=LOG_SECTION_MAX)
    stored = [n for n in notifications if n.topic.endswith("Tap.Recorded")]
    assert len(stored) == 2
    for written in stored:
        # Made anew by its class, so its state is in the order the class defines.
        event = world.taps.mapper.to_domain_event(written)
        again = library.to_stored_event(type(event)(**vars(event)))
        assert (again.originator_id, again.originator_version) == (
            written.originator_id,
            written.originator_version,
        )
        assert (again.topic, again.state) == (written.topic, written.state)
