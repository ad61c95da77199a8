"""Tap ingestion: validators upload what they decided offline; each tap is recorded exactly once.

A batch is re-verified tap by tap (`tap_verification`), then saved in one transaction. A tap's id
comes from `(validator_id, seq)` and a code's or a card session's use from what makes it unique,
so a repeat meets the store's uniqueness check: the whole batch is refused, and the fallback saves
the taps one by one, reporting each repeat as `duplicate` and recording a second use of a code as
a tap refused `code_replayed`. A device that lost the acknowledgement re-sends the same batch and
learns that every tap landed; nothing is ever recorded twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from hardware.tlc1.terminal import SessionProof
from ticketing.domain.tap import (
    CODE_REPLAYED,
    CardRefusal,
    CardSessionUse,
    Medium,
    QrCodeUse,
    Tap,
    TapBatchTooLarge,
    Verdict,
    check_decision,
    check_reason,
    check_seq,
    tap_id,
)
from ticketing.domain.validator import (
    Validator,
    ValidatorAlreadyRegistered,
    ValidatorNotFound,
    check_validator_id,
)
from ticketing.observed import ObservedApplication
from ticketing.tap_verification import TapVerifier

# Taps in one upload; the device's outbox drains in batches of at most this many.
TAP_BATCH_MAX = 500
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


@dataclass
class _Prepared:
    """A verified tap, ready to be turned into aggregates as often as a save needs."""

    facts: dict[str, Any]
    use: tuple[Callable[..., Aggregate], dict[str, Any]] | None
    result: TapResult = field(init=False)

    def __post_init__(self) -> None:
        refused = self.facts["verification"] == Verdict.REFUSED.value
        self.result = TapResult(
            seq=self.facts["seq"],
            status=TapStatus.REFUSED if refused else TapStatus.ACCEPTED,
            tap_id=tap_id(self.facts["validator_id"], self.facts["seq"]),
            reason=self.facts["refusal_reason"],
        )

    def aggregates(self) -> list[Aggregate]:
        tap = Tap.record(**self.facts)
        if self.use is None:
            return [tap]
        use_class, use_fields = self.use
        return [tap, use_class(**use_fields, tap_id=tap.id)]

    def used_twice(self) -> _Prepared:
        """The same tap refused because another tap already used its code or card session."""
        reason = (
            CODE_REPLAYED
            if self.facts["medium"] == Medium.QR.value
            else CardRefusal.TRANSACTION_COUNTER_REPLAYED.value
        )
        facts = self.facts | {"verification": Verdict.REFUSED.value, "refusal_reason": reason}
        return _Prepared(facts, None)


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
        check_validator_id(validator_id)
        try:
            validator: object = self.repository.get(Validator.create_id(validator_id))
        except AggregateNotFoundError:
            raise ValidatorNotFound(validator_id) from None
        if not isinstance(validator, Validator):
            raise ValidatorNotFound(validator_id)
        return validator

    # Taps

    def ingest_batch(self, validator_id: int, taps: Sequence[TapUpload]) -> list[TapResult]:
        """Records every tap once, in the order given; one result per tap."""
        if len(taps) > TAP_BATCH_MAX:
            raise TapBatchTooLarge(len(taps), TAP_BATCH_MAX)
        validator = self.get_validator(validator_id)
        recorded_at = self.now()
        prepared = [self._prepare(validator, tap, recorded_at) for tap in taps]
        if not prepared:
            return []
        try:
            self.save(*(a for p in prepared for a in p.aggregates()))
        except IntegrityError:
            # One repeat refuses the whole transaction; find out which, one tap at a time.
            return [self._save_alone(p) for p in prepared]
        return [p.result for p in prepared]

    def ingest_one(self, validator_id: int, tap: TapUpload) -> TapResult:
        """The online check of a gate with a link: records the tap and returns the decision."""
        return self.ingest_batch(validator_id, [tap])[0]

    def get_tap(self, validator_id: int, seq: int) -> Tap | None:
        try:
            tap: object = self.repository.get(tap_id(validator_id, seq))
        except AggregateNotFoundError:
            return None
        return tap if isinstance(tap, Tap) else None

    def _save_alone(self, prepared: _Prepared) -> TapResult:
        try:
            self.save(*prepared.aggregates())
        except IntegrityError:
            pass
        else:
            return prepared.result
        duplicate = TapResult(prepared.result.seq, TapStatus.DUPLICATE, prepared.result.tap_id)
        if prepared.use is None or prepared.result.tap_id in self.repository:
            return duplicate
        # The tap is new, so its code (or card session) was used by another tap first.
        refused = prepared.used_twice()
        try:
            self.save(*refused.aggregates())
        except IntegrityError:
            return duplicate  # a concurrent upload of the same tap landed meanwhile
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
        use = None
        if claims and verdict.refusal_reason is None:
            use = (
                QrCodeUse,
                {
                    "card_id": verdict.card_id,
                    "generated_at": verdict.generated_at,
                    "counter": verdict.counter,
                },
            )
        return _Prepared(facts, use)

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
        use = None
        if claims and reason is None and proof is not None and serial is not None:
            use = (CardSessionUse, {"serial": serial, "transaction_counter": proof.counter})
        return _Prepared(facts, use)


def _verification(refusal_reason: str | None) -> dict[str, Any]:
    verdict = Verdict.ACCEPTED if refusal_reason is None else Verdict.REFUSED
    return {"verification": verdict.value, "refusal_reason": refusal_reason}
