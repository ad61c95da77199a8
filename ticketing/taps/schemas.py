"""HTTP schemas of validators and taps, named by role; every field is bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from hardware.tlc1.terminal import SessionProof
from ticketing.cards.domain.smart_card import CARD_NETWORK_ID_DEFAULT, SERIAL_HEX_CHARS
from ticketing.shared.schemas import LabelField, PrintableText
from ticketing.taps.adapters.tap_views import (
    DisagreementKind,
    TapDisagreement,
)
from ticketing.taps.application.ingestion import (
    SCANNED_TEXT_MAX_CHARS,
    TAP_BATCH_MAX,
    CardTap,
    QrTap,
    TapResult,
)
from ticketing.taps.domain.tap import (
    REASON_MAX_CHARS,
    SEQ_FIRST,
    SEQ_MAX,
    STOP_ID_MAX_CHARS,
    STOP_ID_REGEX,
    RefusalReason,
)
from ticketing.taps.domain.validator import (
    EPOCH_MAX,
    FARE_ID_MAX_CHARS,
    LOCATION_MAX,
    NETWORK_ID_MAX,
    VALIDATOR_ID_MAX,
    Validator,
    ValidatorKind,
)

U32_MAX = 0xFFFF_FFFF
COUNTER_MAX = 0xFFFFFF  # the card's u24 transaction counter
CHALLENGE_HEX_CHARS = 16
MAC_HEX_CHARS = 16
# A validation session's transcript is a few hundred bytes (at most 6 changes of 29-byte records).
TRANSCRIPT_HEX_MAX_CHARS = 4096
HEX = "^[0-9A-Fa-f]*$"
HEX_BYTES = "^([0-9A-Fa-f]{2})*$"
REASON = "^[a-z0-9_]+$"
JSON_MEDIA_TYPE = "application/json"


ValidatorId = Annotated[int, Field(ge=1, le=VALIDATOR_ID_MAX)]
Hex = Annotated[str, Field(pattern=HEX)]
Epoch = Annotated[
    int,
    Field(
        ge=0,
        le=EPOCH_MAX,
        description="the enrolment the device numbered these taps in (0 until re-enrolled)",
    ),
]
SerialHex = Annotated[
    str, Field(min_length=SERIAL_HEX_CHARS, max_length=SERIAL_HEX_CHARS, pattern=HEX)
]
StopId = Annotated[str, Field(min_length=1, max_length=STOP_ID_MAX_CHARS, pattern=STOP_ID_REGEX)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValidatorCreate(_Body):
    validator_id: ValidatorId
    kind: ValidatorKind
    network_id: Annotated[int, Field(ge=0, le=NETWORK_ID_MAX)] = Field(
        default=CARD_NETWORK_ID_DEFAULT,
        description="the card network whose cards this validator takes, as cards carry it "
        "(default 0x0101 = 257, that of a card issued without one); the fare network comes "
        "from route_id",
    )
    location: Annotated[int, Field(ge=0, le=LOCATION_MAX, description="stop, station or lot id")]
    stop_id: Annotated[
        PrintableText, Field(max_length=FARE_ID_MAX_CHARS, description="fare feed stop")
    ] = ""
    route_id: Annotated[
        PrintableText, Field(max_length=FARE_ID_MAX_CHARS, description="fare feed route")
    ] = ""
    direction: Literal["", "entry", "exit"] = Field("", description="metro gates only")
    label: LabelField = ""  # the device token's label


class ValidatorPublic(BaseModel):
    validator_id: int
    kind: str
    network_id: int
    location: int
    stop_id: str
    route_id: str
    direction: str
    registered_at: datetime
    epoch: int = Field(description="the device's current enrolment; it numbers taps within it")
    revoked_at: datetime | None = Field(
        default=None, description="when staff revoked it; null while it may upload"
    )

    @classmethod
    def of(cls, validator: Validator) -> ValidatorPublic:
        return cls(
            validator_id=validator.validator_id,
            kind=validator.kind_code,
            network_id=validator.network_id,
            location=validator.location,
            stop_id=validator.stop_id,
            route_id=validator.route_id,
            direction=validator.direction_code,
            registered_at=validator.registered_at,
            epoch=validator.epoch,
            revoked_at=validator.revoked_at,
        )


class ValidatorRegistered(ValidatorPublic):
    token: str = Field(description="the device's bearer token, shown once")


class DeviceToken(BaseModel):
    validator_id: int
    token: str = Field(description="the device's new bearer token, shown once")


class ValidatorEnrolled(DeviceToken):
    epoch: int = Field(description="the new epoch: the device numbers its taps from 1 in it")


class SequenceReportPublic(BaseModel):
    epoch: int = Field(description="the epoch reported: the latest one a tap was recorded in")
    highest_seq: int | None
    taps_recorded: int
    missing_count: int
    missing_seqs: list[int] = Field(description="the most recent missing numbers, ascending")
    as_of: int = Field(description="the position in the event log this report is built to")


class ValidatorStatus(ValidatorPublic):
    sequence: SequenceReportPublic


class TapDisagreementPublic(BaseModel):
    tap_id: UUID
    validator_id: int
    seq: int
    tapped_at: datetime = Field(description="the device's clock")
    medium: str
    kind: DisagreementKind = Field(
        description="let_through_unverified: the device accepted what the backend refused (not "
        "charged); turned_away_verified: the device refused a medium the backend verified; "
        "suspected_clone: a card whose MAC the validator's SAM or the backend rejected (a "
        "genuine serial with other keys), listed even when both refused it"
    )
    device_decision: str
    device_reason: str
    verification: str = Field(description="the backend's decision")
    refusal_reason: RefusalReason | None = Field(description="why the backend refused, when it did")

    @classmethod
    def of(cls, row: TapDisagreement) -> TapDisagreementPublic:
        return cls(
            tap_id=row.tap_id,
            validator_id=row.validator_id,
            seq=row.seq,
            tapped_at=row.tapped_at,
            medium=row.medium,
            kind=row.kind,
            device_decision=row.device_decision,
            device_reason=row.device_reason,
            verification=row.verification,
            refusal_reason=_reason(row.refusal_reason),
        )


class SeqConflictPublic(BaseModel):
    conflict_id: UUID = Field(description="the review record, as the batch answer named it")
    epoch: int
    seq: int
    conflicts_with: UUID = Field(description="the tap recorded under this number")
    medium: str
    tapped_at: datetime
    recorded_at: datetime


class SeqConflictsPage(BaseModel):
    items: list[SeqConflictPublic] = Field(description="newest first, at most 200")


class _TapBase(_Body):
    seq: Annotated[int, Field(ge=SEQ_FIRST, le=SEQ_MAX)]
    tapped_at: Annotated[int, Field(ge=0, le=U32_MAX, description="the device's unix seconds")]
    device_decision: Literal["accepted", "refused"]
    device_reason: Annotated[str, Field(min_length=1, max_length=REASON_MAX_CHARS, pattern=REASON)]
    stop_id: StopId | None = Field(
        default=None,
        description="a bus validator's stop at the tap (its GPS or the driver's console), a fare "
        "feed stop id; absent: the stop it was registered at. Metro gates' stops are their own.",
    )

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.tapped_at, UTC)


class QrTapUpload(_TapBase):
    medium: Literal["qr"]
    # Whatever the scanner read, empty or too long, is the tap's: it is recorded refused
    # `malformed` (its first `CODE_TEXT_MAX_CHARS` kept) and the rest of the batch goes on.
    code: Annotated[str, Field(max_length=SCANNED_TEXT_MAX_CHARS)] = Field(
        description="the scanned text, whole: a TL1 code is 298 characters; any other text "
        "(empty, too long, not TL1) is recorded refused `malformed`"
    )

    def to_tap(self) -> QrTap:
        return QrTap(
            self.seq, self.at(), self.device_decision, self.device_reason, self.code, self.stop_id
        )


class CardProofUpload(_Body):
    level: Annotated[int, Field(ge=1, le=3)]
    terminal_challenge: Annotated[
        Hex, Field(min_length=CHALLENGE_HEX_CHARS, max_length=CHALLENGE_HEX_CHARS)
    ]
    card_challenge: Annotated[
        Hex, Field(min_length=CHALLENGE_HEX_CHARS, max_length=CHALLENGE_HEX_CHARS)
    ]
    counter: Annotated[int, Field(ge=0, le=COUNTER_MAX)]
    transcript: Annotated[str, Field(max_length=TRANSCRIPT_HEX_MAX_CHARS, pattern=HEX_BYTES)]
    card_mac: Annotated[Hex, Field(min_length=MAC_HEX_CHARS, max_length=MAC_HEX_CHARS)]


class CardTapUpload(_TapBase):
    medium: Literal["card"]
    serial: SerialHex | None = None
    proof: CardProofUpload | None = Field(
        default=None, description="the secure session's proof; absent when none was opened"
    )

    def to_tap(self) -> CardTap:
        proof = self.proof
        session = None
        if proof is not None and self.serial is not None:
            session = SessionProof.from_wire(bytes.fromhex(self.serial), proof.model_dump())
        return CardTap(
            self.seq,
            self.at(),
            self.device_decision,
            self.device_reason,
            self.serial,
            session,
            self.stop_id,
        )


TapBody = Annotated[QrTapUpload | CardTapUpload, Field(discriminator="medium")]


class TapBatchCreate(_Body):
    validator_id: ValidatorId
    epoch: Epoch = 0
    taps: Annotated[list[TapBody], Field(max_length=TAP_BATCH_MAX)]


class TapCreate(_Body):
    validator_id: ValidatorId
    epoch: Epoch = 0
    tap: TapBody


class TapResultPublic(BaseModel):
    seq: int
    status: Literal["accepted", "refused", "duplicate", "seq_conflict"] = Field(
        description="seq_conflict: another tap holds this seq; this one is kept for review"
    )
    reason: RefusalReason | None = Field(
        description="why the backend refused the tap (null unless status is refused)"
    )
    tap_id: UUID = Field(description="the tap, or for a seq_conflict the review record")
    code_consumed: bool = Field(
        description="this tap used up its QR code or card session, whatever either side "
        "decided: every sighting of a genuine code counts, and a later one is `code_replayed` "
        "(false for a forged or unreadable code, a replay, a seq_conflict)"
    )

    @classmethod
    def of(cls, result: TapResult) -> TapResultPublic:
        return cls(
            seq=result.seq,
            status=result.status.value,
            reason=_reason(result.reason),
            tap_id=result.tap_id,
            code_consumed=result.code_consumed,
        )


class TapBatchResults(BaseModel):
    results: list[TapResultPublic]


def _reason(reason: str | None) -> RefusalReason | None:
    return None if reason is None else RefusalReason(reason)
