"""Tap ingestion: validators upload what they decided offline; each tap is recorded exactly once.

A batch is re-verified tap by tap (`tap_verification`), then saved in one transaction: one
`Tap.Recorded` event per tap and one claim per code or card session an accepted tap uses
(`adapters.tap_recorders`). A tap's id comes from `(validator_id, seq)` and a use's id from what
makes it unique, so a repeat meets the store's uniqueness check and the whole transaction is
refused. Then two queries tell which taps are recorded already (`duplicate`) and which uses
another tap claimed first (the tap is recorded refused, `code_replayed` or
`transaction_counter_replayed`), and the rest is saved again in one transaction; only an upload
racing another with the same taps falls back to saving them one by one. A device that lost the
acknowledgement re-sends the same batch and learns that every tap landed; nothing is ever
recorded twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent, Transcoder
from eventsourcing.popo import POPOFactory
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import get_topic

from hardware.tlc1.terminal import SessionProof
from ticketing.adapters.flat_transcoder import FlatJSONTranscoder
from ticketing.adapters.tap_recorders import (
    CLAIMS,
    ClaimingRecorder,
    MemoryTapRecorder,
    PostgresTapRecorder,
    SQLiteTapRecorder,
)
from ticketing.domain.invariants import require
from ticketing.domain.tap import (
    CODE_REPLAYED,
    RECORDED_VERSION,
    CardRefusal,
    Medium,
    Tap,
    TapBatchTooLarge,
    Verdict,
    card_session_use_id,
    check_decision,
    check_reason,
    check_seq,
    qr_code_use_id,
    recorded_state,
    tap_id,
)
from ticketing.domain.validator import (
    Validator,
    ValidatorAlreadyRegistered,
    ValidatorNotFound,
    check_validator_id,
)
from ticketing.group_commit import GroupCommit
from ticketing.observed import ObservedApplication
from ticketing.tap_verification import TapVerifier

# Taps in one upload; the device's outbox drains in batches of at most this many.
TAP_BATCH_MAX = 500
# Registrations remembered per process (a registration never changes); cleared when full.
VALIDATORS_REMEMBERED_MAX = 100_000
# A TL1 text is 298 characters; anything longer is kept only this far, to record it malformed.
CODE_TEXT_MAX_CHARS = 400


@dataclass(frozen=True)
class QrTap:
    """A QR tap as the validator uploads it: the whole code text travels (spec/QR.md)."""

    seq: int
    tapped_at: datetime
    device_decision: str
    device_reason: str
    code_text: str


@dataclass(frozen=True)
class CardTap:
    """A card tap; `proof` is the session's proof, absent when no session was opened."""

    seq: int
    tapped_at: datetime
    device_decision: str
    device_reason: str
    serial: str | None
    proof: SessionProof | None


TapUpload = QrTap | CardTap


class TapStatus(StrEnum):
    ACCEPTED = "accepted"  # recorded, and the backend verified it
    REFUSED = "refused"  # recorded, with the reason the backend refused it
    DUPLICATE = "duplicate"  # recorded before: this upload changed nothing


@dataclass(frozen=True)
class TapResult:
    seq: int
    status: TapStatus
    tap_id: UUID
    reason: str | None = None  # why the backend refused it


Encode = Callable[[dict[str, Any]], bytes]
RECORDED_TOPIC = get_topic(Tap.Recorded)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A verified tap: its event as the store keeps it, the use it claims (if any) and what the
    device is told. The event is written from its checked state (`recorded_state`), the bytes
    the library's mapper would write for the `Tap.Recorded` object, without making the object."""

    state: dict[str, Any]
    stored: StoredEvent
    use_id: UUID | None
    result: TapResult

    @classmethod
    def of(cls, facts: dict[str, Any], use_id: UUID | None, encode: Encode) -> _Prepared:
        state = recorded_state(**facts)
        tap = tap_id(state["validator_id"], state["seq"])
        stored = StoredEvent(
            originator_id=tap,
            originator_version=RECORDED_VERSION,
            topic=RECORDED_TOPIC,
            state=encode(state),
        )
        refused = state["verification"] == Verdict.REFUSED.value
        result = TapResult(
            seq=state["seq"],
            status=TapStatus.REFUSED if refused else TapStatus.ACCEPTED,
            tap_id=tap,
            reason=state["refusal_reason"],
        )
        return cls(state, stored, use_id, result)

    @property
    def tap_id(self) -> UUID:
        return self.result.tap_id

    def duplicate(self) -> TapResult:
        return TapResult(self.result.seq, TapStatus.DUPLICATE, self.tap_id)

    def used_twice(self, encode: Encode) -> _Prepared:
        """The same tap refused because another tap already used its code or card session."""
        reason = (
            CODE_REPLAYED
            if self.state["medium"] == Medium.QR.value
            else CardRefusal.TRANSACTION_COUNTER_REPLAYED.value
        )
        facts = self.state | {"verification": Verdict.REFUSED.value, "refusal_reason": reason}
        del facts["timestamp"], facts["originator_topic"]
        return _Prepared.of(facts, None, encode)


class TapIngestion(ObservedApplication):
    """Validators and their taps: register, upload a batch, check one tap online."""

    # No aggregate cache: taps are written once and rarely read, and would evict the rest.
    name = "Taps"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        verifier: TapVerifier,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(env)
        self.verifier = verifier
        self.clock = clock
        self._validators: dict[int, Validator] = {}
        # Online checks, from the event loop or from threads, committed together.
        self._online: GroupCommit[_Prepared, TapResult] = GroupCommit(
            self._record_taps, group_max=TAP_BATCH_MAX, name="tap-group-commit"
        )

    def close(self) -> None:
        self._online.close()
        super().close()

    def _encode(self, state: dict[str, Any]) -> bytes:
        """An event's state as the mapper stores it: transcoded, then compressed and enciphered
        when the store is configured to."""
        mapper = self.mapper
        data = mapper.transcoder.encode(state)
        if mapper.compressor is not None:
            data = mapper.compressor.compress(data)
        if mapper.cipher is not None:
            data = mapper.cipher.encrypt(data)
        return data

    def construct_transcoder(self) -> Transcoder:
        transcoder = FlatJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_recorder(self) -> ApplicationRecorder:
        """The store's own recorder, made able to claim a code's or a card session's use."""
        factory = self.factory
        recorder: ClaimingRecorder
        if isinstance(factory, PostgresFactory):
            recorder = PostgresTapRecorder(
                factory.datastore, events_table_name=f"{factory.env.name.lower()}_events"
            )
        elif isinstance(factory, SQLiteFactory):
            recorder = SQLiteTapRecorder(factory.datastore)
        else:
            require(isinstance(factory, POPOFactory), "taps are stored in a known store")
            return MemoryTapRecorder()
        if factory.env_create_table():
            recorder.create_table()
        return recorder

    @property
    def claiming_recorder(self) -> ClaimingRecorder:
        recorder = self.recorder
        require(isinstance(recorder, ClaimingRecorder), "the recorder claims uses")
        return cast(ClaimingRecorder, recorder)

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    # Validators

    def register_validator(
        self,
        *,
        validator_id: int,
        kind: str,
        network_id: int,
        location: int,
        stop_id: str = "",
        route_id: str = "",
        direction: str = "",
    ) -> Validator:
        """Registers a validator; `stop_id`, `route_id` and a metro gate's `direction` say
        where it stands in fare terms, so its taps can be priced."""
        validator = Validator.register(
            validator_id=validator_id,
            kind=kind,
            network_id=network_id,
            location=location,
            at=self.now(),
            stop_id=stop_id,
            route_id=route_id,
            direction=direction,
        )
        try:
            self.save(validator)
        except IntegrityError:
            raise ValidatorAlreadyRegistered(validator_id) from None
        return validator

    def get_validator(self, validator_id: int) -> Validator:
        known = self._validators.get(validator_id)
        if known is not None:
            return known
        check_validator_id(validator_id)
        try:
            validator: object = self.repository.get(Validator.create_id(validator_id))
        except AggregateNotFoundError:
            raise ValidatorNotFound(validator_id) from None
        if not isinstance(validator, Validator):
            raise ValidatorNotFound(validator_id)
        if len(self._validators) >= VALIDATORS_REMEMBERED_MAX:
            self._validators.clear()
        self._validators[validator_id] = validator
        return validator

    # Taps

    def ingest_batch(self, validator_id: int, taps: Sequence[TapUpload]) -> list[TapResult]:
        """Records every tap once, in the order given; one result per tap."""
        if len(taps) > TAP_BATCH_MAX:
            raise TapBatchTooLarge(len(taps), TAP_BATCH_MAX)
        validator = self.get_validator(validator_id)
        recorded_at = self.now()
        return self._record_taps([self._prepare(validator, tap, recorded_at) for tap in taps])

    def ingest_one(self, validator_id: int, tap: TapUpload) -> TapResult:
        """The online check of a gate with a link: records the tap and returns the decision.

        The tap is verified in the caller's thread and committed with the other online checks
        waiting at that moment (`GroupCommit`), so a burst of gates costs a few transactions."""
        validator = self.get_validator(validator_id)
        return self._online.submit(self._prepare(validator, tap, self.now()))

    async def ingest_one_async(self, validator_id: int, tap: TapUpload) -> TapResult:
        """`ingest_one` for an event loop: verifying a tap is CPU work done in the loop (a
        thread would only add a hand-off), and the loop serves others while the group commits."""
        validator = self._validators.get(validator_id)
        if validator is None:
            validator = await asyncio.to_thread(self.get_validator, validator_id)
        return await self._online.submit_async(self._prepare(validator, tap, self.now()))

    def get_tap(self, validator_id: int, seq: int) -> Tap | None:
        try:
            tap: object = self.repository.get(tap_id(validator_id, seq))
        except AggregateNotFoundError:
            return None
        return tap if isinstance(tap, Tap) else None

    def claimed_by(self, use_id: UUID) -> UUID | None:
        """The tap that used a code or a card session (`qr_code_use_id`, `card_session_use_id`)."""
        return self.claiming_recorder.claims_among([use_id]).get(use_id)

    def _record_taps(self, prepared: Sequence[_Prepared]) -> list[TapResult]:
        if not prepared:
            return []
        try:
            self._save_taps(prepared)
        except IntegrityError:
            # Some tap is recorded already, or some use claimed: find which, then try again.
            return self._save_repeated(prepared)
        return [p.result for p in prepared]

    def _save_taps(self, prepared: Sequence[_Prepared]) -> None:
        # Straight to the recorder: `save` would check each object against the library's
        # runtime protocols (slow on Python 3.11) and map it, and these are stored events.
        claims = [(p.use_id, p.tap_id) for p in prepared if p.use_id is not None]
        self.recorder.insert_events([p.stored for p in prepared], **{CLAIMS: claims})
        self._notify([])

    def _save_repeated(self, prepared: Sequence[_Prepared]) -> list[TapResult]:
        recorder = self.claiming_recorder
        recorded = recorder.recorded_among(p.tap_id for p in prepared)
        claimed = recorder.claims_among(p.use_id for p in prepared if p.use_id is not None)
        results: list[TapResult] = []
        fresh: list[tuple[int, _Prepared]] = []  # (its place in results, the tap)
        seen_taps: set[UUID] = set()
        for p in prepared:
            if p.tap_id in recorded or p.tap_id in seen_taps:
                results.append(p.duplicate())
                continue
            seen_taps.add(p.tap_id)
            if p.use_id is not None and claimed.setdefault(p.use_id, p.tap_id) != p.tap_id:
                p = p.used_twice(self._encode)
            fresh.append((len(results), p))
            results.append(p.result)
        if not fresh:
            return results
        try:
            self._save_taps([p for _, p in fresh])
        except IntegrityError:
            # Another upload of some of these taps or uses landed meanwhile: one at a time.
            for place, p in fresh:
                results[place] = self._save_alone(p)
        return results

    def _save_alone(self, prepared: _Prepared) -> TapResult:
        try:
            self._save_taps([prepared])
        except IntegrityError:
            pass
        else:
            return prepared.result
        if prepared.use_id is None or self.claiming_recorder.recorded_among([prepared.tap_id]):
            return prepared.duplicate()
        # The tap is new, so its code (or card session) was used by another tap first.
        refused = prepared.used_twice(self._encode)
        try:
            self._save_taps([refused])
        except IntegrityError:
            return prepared.duplicate()  # a concurrent upload of the same tap landed meanwhile
        return refused.result

    def _prepare(self, validator: Validator, tap: TapUpload, recorded_at: datetime) -> _Prepared:
        check_seq(tap.seq)
        check_decision(tap.device_decision)
        check_reason("device_reason", tap.device_reason)
        facts: dict[str, Any] = {
            "validator_id": validator.validator_id,
            "seq": tap.seq,
            "tapped_at": tap.tapped_at.astimezone(UTC),
            "recorded_at": recorded_at,
            "validator_kind": validator.kind_code,
            "network_id": validator.network_id,
            "location": validator.location,
            "device_decision": tap.device_decision,
            "device_reason": tap.device_reason,
        }
        # Only a tap the device let through and the backend verified claims its code or
        # session: a forged code must not use up the real one, nor a refusal at one gate
        # keep the same code from opening the next.
        claims = tap.device_decision == Verdict.ACCEPTED.value
        if isinstance(tap, QrTap):
            return self._prepare_qr(tap, facts, claims)
        return self._prepare_card(tap, facts, claims)

    def _prepare_qr(self, tap: QrTap, facts: dict[str, Any], claims: bool) -> _Prepared:
        text = tap.code_text[:CODE_TEXT_MAX_CHARS]
        verdict = self.verifier.verify_qr(text, facts["tapped_at"])
        facts |= {
            "medium": Medium.QR.value,
            "code_text": text,
            "card_id": verdict.card_id,
            "generated_at": verdict.generated_at,
            "counter": verdict.counter,
            **_verification(verdict.refusal_reason),
        }
        use_id = None
        if claims and verdict.refusal_reason is None:
            require(verdict.card_id is not None, "an accepted code names its card")
            use_id = qr_code_use_id(
                cast(UUID, verdict.card_id),
                cast(int, verdict.generated_at),
                cast(int, verdict.counter),
            )
        return _Prepared.of(facts, use_id, self._encode)

    def _prepare_card(self, tap: CardTap, facts: dict[str, Any], claims: bool) -> _Prepared:
        serial = tap.serial.lower() if tap.serial is not None else None
        reason = self.verifier.verify_card(serial, tap.proof, facts["tapped_at"])
        proof = tap.proof
        facts |= {
            "medium": Medium.CARD.value,
            "serial": serial,
            **_verification(reason),
        }
        if proof is not None:
            facts |= {
                "key_level": int(proof.level),
                "terminal_challenge": proof.terminal_challenge.hex(),
                "card_challenge": proof.card_challenge.hex(),
                "transaction_counter": proof.counter,
                "transcript": proof.transcript.hex(),
                "card_mac": proof.card_mac.hex(),
            }
        use_id = None
        if claims and reason is None and proof is not None and serial is not None:
            use_id = card_session_use_id(serial, proof.counter)
        return _Prepared.of(facts, use_id, self._encode)


def _verification(refusal_reason: str | None) -> dict[str, Any]:
    verdict = Verdict.ACCEPTED if refusal_reason is None else Verdict.REFUSED
    return {"verification": verdict.value, "refusal_reason": refusal_reason}
