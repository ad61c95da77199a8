"""Tap ingestion: validators upload what they decided offline; each tap is recorded exactly once.

A batch is re-verified tap by tap (`tap_verification`), then saved in one transaction: one
`Tap.Recorded` event per tap and one claim per genuine code or card session a tap shows
(`adapters.tap_recorders`). A tap's id comes from `(validator_id, epoch, seq)` and a use's id
from what makes it unique, so a repeat meets the store's uniqueness check and the whole
transaction is refused. Then two queries tell which taps are recorded already, and as what, and
which uses another tap claimed first (the tap is recorded refused, `code_replayed` or
`transaction_counter_replayed`), and the rest is saved again in one transaction; only an upload
racing another with the same taps falls back to saving them one by one. A tap recorded already
with the same content is a `duplicate`: a device that lost the acknowledgement re-sends the same
batch and learns that every tap landed. One with other content reuses a number another tap holds
(a wiped device numbering from 1 again, or one batch numbering two taps alike): it is kept as a
`TapConflict` for review and answered `seq_conflict`, never recorded twice and never dropped.
The happy path reads nothing: only a batch the store refused asks what is there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
)
from eventsourcing.popo import POPOFactory
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory

from hardware.tlc1.terminal import SessionProof
from ticketing.shared.domain.invariants import require
from ticketing.shared.group_commit import GroupCommit
from ticketing.taps.adapters.tap_recorders import (
    CLAIMS,
    ClaimingRecorder,
    MemoryTapRecorder,
    PostgresTapRecorder,
    SQLiteTapRecorder,
)
from ticketing.taps.application.tap_prepared import PreparedTap
from ticketing.taps.application.tap_prepared import TapResult as TapResult
from ticketing.taps.application.tap_prepared import TapStatus as TapStatus
from ticketing.taps.application.tap_verification import TapVerifier
from ticketing.taps.application.validator_registry import ValidatorRegistry
from ticketing.taps.domain.tap import (
    DEVICE_CLOCK_SKEWED,
    Medium,
    Tap,
    TapBatchTooLarge,
    Verdict,
    card_session_use_id,
    check_decision,
    check_reason,
    check_seq,
    qr_code_use_id,
    same_upload,
    tap_id,
)
from ticketing.taps.domain.tap_conflict import TapConflict
from ticketing.taps.domain.tap_facts import TapFacts
from ticketing.taps.domain.validator import Validator

# Taps in one upload; the device's outbox drains in batches of at most this many.
TAP_BATCH_MAX = 500
# A batch's body: `TAP_BATCH_MAX` taps at their largest (a card tap with the longest transcript,
# or a QR tap with the longest scan, about 4.5 KB each) fit; a bigger one is refused unparsed.
TAP_BATCH_BYTES_MAX = 2_500_000
# A TL1 text is 298 characters; anything longer is kept only this far, to record it malformed.
CODE_TEXT_MAX_CHARS = 400
# The most text any QR code holds (version 40, alphanumeric): a longer `code` is no scan.
SCANNED_TEXT_MAX_CHARS = 4296
# How far a device's clock may be from the server's. The online check judges a tap at the server's
# clock, and refuses one stamped further from it `device_clock_skewed`: a device's clock then
# decides nothing. Validators sync their clocks (NTP, GPS) to within a few seconds; the rest
# covers a link's latency and a clock drifting between syncs. An upload comes after its taps, so
# a batched tap stamped later than the upload by more than this is refused the same way.
DEVICE_CLOCK_SKEW_S_MAX = 30


@dataclass(frozen=True)
class QrTap:
    """A QR tap as the validator uploads it: the whole code text travels (spec/QR.md)."""

    seq: int
    tapped_at: datetime
    device_decision: str
    device_reason: str
    code_text: str
    stop_id: str | None = None  # a bus validator's stop at the tap; None: its registration's


@dataclass(frozen=True)
class CardTap:
    """A card tap; `proof` is the session's proof, absent when no session was opened."""

    seq: int
    tapped_at: datetime
    device_decision: str
    device_reason: str
    serial: str | None
    proof: SessionProof | None
    stop_id: str | None = None  # a bus validator's stop at the tap; None: its registration's


TapUpload = QrTap | CardTap


class TapIngestion(ValidatorRegistry):
    """Validators and their taps: register, upload a batch, check one tap online (the
    validators' own use cases are `ValidatorRegistry`'s)."""

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
        self._online: GroupCommit[PreparedTap, TapResult] = GroupCommit(
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

    # Taps

    def _enrolled(self, validator_id: int, epoch: int) -> Validator:
        """The validator, checked to have been given `epoch` (re-read once when it names an
        epoch newer than the one remembered: another process may have enrolled it) and not to
        be revoked (`ValidatorRevoked`)."""
        validator = self.get_validator(validator_id)
        if type(epoch) is int and epoch > validator.epoch:
            validator = self.get_validator(validator_id, fresh=True)
            self._validators[validator_id] = validator
        validator.check_epoch(epoch)
        validator.check_not_revoked()
        return validator

    def ingest_batch(
        self, validator_id: int, taps: Sequence[TapUpload], *, epoch: int = 0
    ) -> list[TapResult]:
        """Records every tap once, in the order given; one result per tap. `epoch` is the
        device's enrolment its taps were numbered in (0 until it is first re-enrolled)."""
        if len(taps) > TAP_BATCH_MAX:
            raise TapBatchTooLarge(len(taps), TAP_BATCH_MAX)
        validator = self._enrolled(validator_id, epoch)
        recorded_at = self.now()
        return self._record_taps(
            [self._prepare(validator, epoch, tap, recorded_at, online=False) for tap in taps]
        )

    def ingest_one(self, validator_id: int, tap: TapUpload, *, epoch: int = 0) -> TapResult:
        """The online check of a gate with a link: records the tap and returns the decision.

        The tap is verified in the caller's thread and committed with the other online checks
        waiting at that moment (`GroupCommit`), so a burst of gates costs a few transactions."""
        validator = self._enrolled(validator_id, epoch)
        return self._online.submit(self._prepare(validator, epoch, tap, self.now(), online=True))

    async def ingest_one_async(
        self, validator_id: int, tap: TapUpload, *, epoch: int = 0
    ) -> TapResult:
        """`ingest_one` for an event loop: verifying a tap is CPU work done in the loop (a
        thread would only add a hand-off), and the loop serves others while the group commits."""
        validator = self._validators.get(validator_id)
        if validator is None or not 0 <= epoch <= validator.epoch or validator.revoked:
            validator = await asyncio.to_thread(self._enrolled, validator_id, epoch)
        prepared = self._prepare(validator, epoch, tap, self.now(), online=True)
        return await self._online.submit_async(prepared)

    def get_tap(self, validator_id: int, seq: int, epoch: int = 0) -> Tap | None:
        try:
            tap: object = self.repository.get(tap_id(validator_id, seq, epoch))
        except AggregateNotFoundError:
            return None
        return tap if isinstance(tap, Tap) else None

    def get_conflict(self, conflict_id: UUID) -> TapConflict | None:
        """A tap kept for review because its number was taken (`TapResult.tap_id`)."""
        try:
            conflict: object = self.repository.get(conflict_id)
        except AggregateNotFoundError:
            return None
        return conflict if isinstance(conflict, TapConflict) else None

    def claimed_by(self, use_id: UUID) -> UUID | None:
        """The tap that used a code or a card session (`qr_code_use_id`, `card_session_use_id`)."""
        return self.claiming_recorder.claims_among([use_id]).get(use_id)

    def _record_taps(self, prepared: Sequence[PreparedTap]) -> list[TapResult]:
        if not prepared:
            return []
        try:
            self._save_taps(prepared)
        except IntegrityError:
            # Some tap is recorded already, or some use claimed: find which, then try again.
            return self._save_repeated(prepared)
        return [p.result for p in prepared]

    def _save_taps(self, prepared: Sequence[PreparedTap]) -> None:
        # Straight to the recorder: `save` would check each object against the library's
        # runtime protocols (slow on Python 3.11) and map it, and these are stored events.
        claims = [(p.use_id, p.tap_id) for p in prepared if p.use_id is not None]
        self.recorder.insert_events([p.stored for p in prepared], **{CLAIMS: claims})
        self._notify([])

    def _save_repeated(self, prepared: Sequence[PreparedTap]) -> list[TapResult]:
        recorder = self.claiming_recorder
        recorded = recorder.first_events_among(p.tap_id for p in prepared)
        claimed = recorder.claims_among(p.use_id for p in prepared if p.use_id is not None)
        results: list[TapResult] = []
        fresh: list[tuple[int, PreparedTap]] = []  # (its place in results, the tap)
        earlier: dict[UUID, dict[str, Any]] = {}  # taps of this batch, by id: their state
        for p in prepared:
            holder = earlier.get(p.tap_id)
            if holder is None and p.tap_id in recorded:
                holder = vars(self.mapper.to_domain_event(recorded[p.tap_id]))
            if holder is not None:
                if same_upload(holder, p.state):
                    results.append(p.duplicate(claimed))
                    continue
                p = p.conflict(p.tap_id, self.mapper)
            else:
                earlier[p.tap_id] = p.state
                if p.use_id is not None and claimed.setdefault(p.use_id, p.tap_id) != p.tap_id:
                    p = p.used_twice(self._encode)
            fresh.append((len(results), p))
            results.append(p.result)
        if not fresh:
            return results
        try:
            self._save_taps([p for _, p in fresh])
        except IntegrityError:
            # Another upload of some of these taps or uses landed meanwhile (or a conflict
            # kept already, sent again): one at a time.
            for place, p in fresh:
                results[place] = self._save_alone(p)
        return results

    def _save_alone(self, prepared: PreparedTap) -> TapResult:
        try:
            self._save_taps([prepared])
        except IntegrityError:
            pass
        else:
            return prepared.result
        if prepared.is_conflict:
            return prepared.result  # this conflict was kept already
        holder = self.claiming_recorder.first_events_among([prepared.tap_id]).get(prepared.tap_id)
        if holder is not None:
            if same_upload(vars(self.mapper.to_domain_event(holder)), prepared.state):
                uses = [] if prepared.use_id is None else [prepared.use_id]
                return prepared.duplicate(self.claiming_recorder.claims_among(uses))
            return self._save_alone(prepared.conflict(prepared.tap_id, self.mapper))
        # Neither its number nor (so) its use is taken: only a claim can have refused it. Never
        # answer `duplicate` here: the device would drop a tap recorded nowhere.
        require(prepared.use_id is not None, "a refused tap meets its number or its use")
        # The tap is new, so its code (or card session) was used by another tap first.
        refused = prepared.used_twice(self._encode)
        try:
            self._save_taps([refused])
        except IntegrityError:
            return self._save_alone(refused)  # a concurrent upload of this number landed
        return refused.result

    def _prepare(
        self,
        validator: Validator,
        epoch: int,
        tap: TapUpload,
        recorded_at: datetime,
        *,
        online: bool,
    ) -> PreparedTap:
        """The tap verified and its event made. Online, the tap happens now: it is judged at the
        server's clock. A batched tap is judged at its own time, as the device decided it."""
        check_seq(tap.seq)
        check_decision(tap.device_decision)
        check_reason("device_reason", tap.device_reason)
        tapped_at = tap.tapped_at.astimezone(UTC)
        ahead_s = (tapped_at - recorded_at).total_seconds()
        skewed = ahead_s > DEVICE_CLOCK_SKEW_S_MAX or (
            online and -ahead_s > DEVICE_CLOCK_SKEW_S_MAX
        )
        judged = _Judged(recorded_at if online else tapped_at, skewed)
        facts: dict[str, Any] = {
            "validator_id": validator.validator_id,
            "epoch": epoch,
            "seq": tap.seq,
            "tapped_at": tapped_at,
            "recorded_at": recorded_at,
            "validator_kind": validator.kind_code,
            "network_id": validator.network_id,
            "location": validator.location,
            "device_decision": tap.device_decision,
            "device_reason": tap.device_reason,
            "stop_id": tap.stop_id,
        }
        # Every sighting of a genuine code or card session claims it, whatever the device
        # decided: a code shown once is used up, and one refused at a gate cannot be sent again
        # and again until a device lets it through. A forged code claims nothing, so that it
        # cannot use up the real one.
        if isinstance(tap, QrTap):
            return self._prepare_qr(tap, facts, judged)
        return self._prepare_card(tap, facts, judged)

    def _prepare_qr(self, tap: QrTap, facts: dict[str, Any], judged: _Judged) -> PreparedTap:
        text = tap.code_text[:CODE_TEXT_MAX_CHARS]
        verdict = self.verifier.verify_qr(text, judged.at)
        facts |= {
            "medium": Medium.QR.value,
            "code_text": text,
            "card_id": verdict.card_id,
            "generated_at": verdict.generated_at,
            "counter": verdict.counter,
            **_verification(judged.reason(verdict.refusal_reason)),
        }
        use_id = None
        if verdict.signed:
            require(verdict.card_id is not None, "an accepted code names its card")
            use_id = qr_code_use_id(
                cast(UUID, verdict.card_id),
                cast(int, verdict.generated_at),
                cast(int, verdict.counter),
            )
        return PreparedTap.of(TapFacts(**facts), use_id, self._encode)

    def _prepare_card(self, tap: CardTap, facts: dict[str, Any], judged: _Judged) -> PreparedTap:
        serial = tap.serial.lower() if tap.serial is not None else None
        reason = self.verifier.verify_card(serial, tap.proof, judged.at)
        proof = tap.proof
        facts |= {
            "medium": Medium.CARD.value,
            "serial": serial,
            **_verification(judged.reason(reason)),
        }
        if proof is not None:
            # The event keeps the proof as uploaded, under its own names for two fields.
            facts |= {_PROOF_FACTS.get(k, k): v for k, v in proof.to_wire().items()}
        use_id = None
        if reason is None and proof is not None and serial is not None:
            use_id = card_session_use_id(serial, proof.counter)
        return PreparedTap.of(TapFacts(**facts), use_id, self._encode)


# A recorded tap's names for the proof's fields where they differ from the upload's.
_PROOF_FACTS = {"level": "key_level", "counter": "transaction_counter"}


@dataclass(frozen=True, slots=True)
class _Judged:
    """When a tap is judged, and whether the device's clock is too far off to be believed."""

    at: datetime
    skewed: bool

    def reason(self, refusal_reason: str | None) -> str | None:
        # A skewed clock comes first: nothing judged at the device's time can be trusted then.
        return DEVICE_CLOCK_SKEWED if self.skewed else refusal_reason


def _verification(refusal_reason: str | None) -> dict[str, Any]:
    verdict = Verdict.ACCEPTED if refusal_reason is None else Verdict.REFUSED
    return {"verification": verdict.value, "refusal_reason": refusal_reason}
