"""One tap as a validator recorded it and the backend re-verified it: immutable, one event.

A tap's id is the `uuid5` of `(validator_id, epoch, seq)`, so a device re-sending a tap after a
lost acknowledgement meets the event store's uniqueness check instead of recording it twice; the
epoch (`domain.validator`) changes when a wiped device is enrolled again and numbers from 1
again. Epoch 0 keeps the id of `(validator_id, seq)` that taps had before epochs existed. A
re-sent tap is told from another tap that reuses its number by the fields the device uploaded
(`same_upload`): only the very same tap is a duplicate. A code
or a card session can be *used* once: the id of its use (`qr_code_use_id` of `(card_id,
generated_at, counter)`, spec/QR.md; `card_session_use_id` of `(serial, transaction counter)`,
spec/CARD.md) is claimed in the same transaction as the tap that uses it, so the same code
uploaded by two validators is one use. Refused taps are recorded too, with their reason; every
sighting of a genuine code or session claims its use, whatever the device decided.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require
from ticketing.taps.domain.tap_facts import TapFacts, facts_by_name
from ticketing.taps.domain.validator import FARE_ID_MAX_CHARS

TOPIC_PREFIX = "ticketing.Tap"
# A device's sequence starts at 1 and only grows; a u48 outlives any device at 10 taps a second.
SEQ_FIRST = 1
SEQ_MAX = 2**48 - 1
REASON_MAX_CHARS = 40
RECORDED_VERSION = 1  # a tap has one event
# What the device uploads of a tap, beyond its numbering: a re-sent tap repeats all of them.
DEVICE_FIELDS = (
    "tapped_at",
    "medium",
    "device_decision",
    "device_reason",
    "code_text",
    "serial",
    "key_level",
    "terminal_challenge",
    "card_challenge",
    "transaction_counter",
    "transcript",
    "card_mac",
    "stop_id",
)
REASON_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
# A stop id as a device names it: a fare feed id, printable and without spaces.
STOP_ID_MAX_CHARS = FARE_ID_MAX_CHARS
STOP_ID_REGEX = "^[!-~]+$"
STOP_ID_PATTERN = re.compile(STOP_ID_REGEX)


class Medium(StrEnum):
    QR = "qr"
    CARD = "card"


class Verdict(StrEnum):
    """The validator's decision at the gate, and the backend's on re-verification."""

    ACCEPTED = "accepted"
    REFUSED = "refused"


class CardRefusal(StrEnum):
    """Why the backend refuses a card tap's proof (QR taps use `tl1.verify.Decision`)."""

    NO_CARD_PROOF = "no_card_proof"  # the device never opened a session (e.g. denied at SELECT)
    SAM_UNAVAILABLE = "sam_unavailable"  # this backend holds no master keys
    UNKNOWN_CARD = "unknown_card"  # the serial was never issued
    CARD_DENIED = "card_denied"  # on the deny list before the tap
    KEY_LEVEL_NOT_HELD = "key_level_not_held"
    BAD_CARD_MAC = "bad_card_mac"  # the card did not take part in this session
    TRANSACTION_COUNTER_REPLAYED = "transaction_counter_replayed"  # the session was used already


MEDIA = frozenset(Medium)
VERDICTS = frozenset(Verdict)

# Verification reason of a QR code already used by another tap (spec/QR.md, step 12).
CODE_REPLAYED = "code_replayed"
# Verification reason of a tap whose device clock is too far from the server's (any medium).
DEVICE_CLOCK_SKEWED = "device_clock_skewed"


class RefusalReason(StrEnum):
    """Every reason the backend refuses a tap for, as its answers and the OpenAPI list them.

    The union of the TL1 verification's refusals (`ticketing.tl1.verify.Decision` but
    `accepted`: spec/QR.md's steps), the card proof's (`CardRefusal`) and `DEVICE_CLOCK_SKEWED`.
    Spelled out rather than derived, so the schema stays readable; a test holds it equal to
    that union.
    """

    MALFORMED = "malformed"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNKNOWN_ISSUER_KEY = "unknown_issuer_key"
    REVOKED_ISSUER_KEY = "revoked_issuer_key"
    BAD_ISSUER_SIGNATURE = "bad_issuer_signature"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CARD_DENIED = "card_denied"  # a virtual card's id, or a card's serial, on the deny list
    BAD_DEVICE_SIGNATURE = "bad_device_signature"
    CODE_STALE = "code_stale"
    CODE_FROM_FUTURE = "code_from_future"
    CODE_REPLAYED = "code_replayed"
    NO_CARD_PROOF = "no_card_proof"
    SAM_UNAVAILABLE = "sam_unavailable"
    UNKNOWN_CARD = "unknown_card"
    KEY_LEVEL_NOT_HELD = "key_level_not_held"
    BAD_CARD_MAC = "bad_card_mac"
    TRANSACTION_COUNTER_REPLAYED = "transaction_counter_replayed"
    DEVICE_CLOCK_SKEWED = "device_clock_skewed"


def tap_id(validator_id: int, seq: int, epoch: int = 0) -> UUID:
    if epoch == 0:
        return url_uuid5(f"/tapledger/taps/{validator_id}/{seq}")
    return url_uuid5(f"/tapledger/taps/{validator_id}/epochs/{epoch}/{seq}")


def same_upload(recorded: Mapping[str, Any], uploaded: Mapping[str, Any]) -> bool:
    """Whether two tap states hold what one upload of one tap holds (numbering aside)."""
    return all(recorded.get(name) == uploaded.get(name) for name in DEVICE_FIELDS)


class Tap(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Recorded(TapFacts, Created):
        """The tap's facts (`TapFacts`, which declares them) as the tap's one event."""

        TOPIC = f"{TOPIC_PREFIX}.Recorded"
        # Version 2 added `epoch`: a version 1 event (stored before) is of epoch 0. Version 3
        # added the `stop_id` a bus validator says it is at: none before.
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["epoch"] = 0

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["stop_id"] = None

    @staticmethod
    def create_id(validator_id: int, seq: int, epoch: int = 0) -> UUID:
        return tap_id(validator_id, seq, epoch)

    @event(Recorded)
    def __init__(
        self,
        validator_id: int,
        epoch: int,
        seq: int,
        tapped_at: datetime,
        medium: str,
        verification: str,
        refusal_reason: str | None,
    ) -> None:
        # Only what readers of one tap ask for; the event keeps everything.
        self.validator_id = validator_id
        self.epoch = epoch
        self.seq = seq
        self.tapped_at = tapped_at
        self.medium_code = medium
        self.verification_code = verification
        self.refusal_reason = refusal_reason

    @property
    def medium(self) -> Medium:
        return Medium(self.medium_code)

    @property
    def verification(self) -> Verdict:
        return Verdict(self.verification_code)


# The name the design and the fare engine give this event.
TapRecorded = Tap.Recorded


def recorded_state(facts: TapFacts) -> dict[str, Any]:
    """The checked state of a tap's `Recorded` event, keyed and ordered as the library keeps
    an event's state (its fields less the originator's id and version), so that the tap path
    can write it without making the event object first."""
    check_seq(facts.seq)
    epoch = facts.epoch
    require(type(epoch) is int and epoch >= 0, "an epoch was checked against the validator")
    check_aware(facts.tapped_at)
    check_aware(facts.recorded_at)
    check_reason("device_reason", facts.device_reason)
    medium = facts.medium
    if medium not in MEDIA:
        raise InvalidTap(f"medium {medium[:20]!r} is neither qr nor card")
    check_decision(facts.device_decision)
    check_stop(facts.stop_id)
    check_decision(facts.verification)
    refusal_reason = facts.refusal_reason
    if (facts.verification == Verdict.REFUSED) != (refusal_reason is not None):
        raise InvalidTap("a refused tap, and only a refused tap, carries a refusal reason")
    if refusal_reason is not None:
        check_reason("refusal_reason", refusal_reason)
    return {
        "timestamp": Tap.Recorded.create_timestamp(),
        "originator_topic": TOPIC_PREFIX,
        **facts_by_name(facts),
        "class_version": Tap.Recorded.class_version,
    }


def qr_code_use_id(card_id: UUID, generated_at: int, counter: int) -> UUID:
    """What one TL1 code is known by across validators (spec/QR.md, step 12)."""
    return url_uuid5(f"/tapledger/qr-code-uses/{card_id}/{generated_at}/{counter}")


def card_session_use_id(serial: str, transaction_counter: int) -> UUID:
    """What one secure session of a physical card is known by (spec/CARD.md)."""
    return url_uuid5(f"/tapledger/card-sessions/{serial.lower()}/{transaction_counter}")


def check_seq(seq: int) -> None:
    if type(seq) is not int or not SEQ_FIRST <= seq <= SEQ_MAX:
        raise InvalidTap(f"sequence number {seq!r} is not in {SEQ_FIRST}..{SEQ_MAX}")


def check_decision(decision: str) -> None:
    if decision not in VERDICTS:
        raise InvalidTap(f"decision {decision[:20]!r} is neither accepted nor refused")


def check_reason(field: str, reason: str) -> None:
    if not 1 <= len(reason) <= REASON_MAX_CHARS or not set(reason) <= REASON_CHARS:
        raise InvalidTap(f"{field} must be 1..{REASON_MAX_CHARS} characters of a-z, 0-9 and _")


def check_stop(stop_id: str | None) -> None:
    """A stop a device names is a fare feed id: 1..`STOP_ID_MAX_CHARS` printable ASCII
    characters without spaces (the feed's ids are never longer)."""
    if stop_id is None:
        return
    if not 1 <= len(stop_id) <= STOP_ID_MAX_CHARS or not STOP_ID_PATTERN.fullmatch(stop_id):
        raise InvalidTap(
            f"stop_id must be 1..{STOP_ID_MAX_CHARS} printable ASCII characters without spaces"
        )


def check_aware(at: datetime) -> None:
    require(at.tzinfo is not None, "tap times are timezone-aware")


class InvalidTap(DomainError):
    code = "invalid_tap"


class TapBatchTooLarge(DomainError):
    code = "tap_batch_too_large"

    def __init__(self, taps: int, taps_max: int) -> None:
        super().__init__(f"a batch holds at most {taps_max} taps, not {taps}")


class TapBatchBodyTooLarge(TapBatchTooLarge):
    """A batch's body past any honest batch's size: refused before it is parsed."""

    def __init__(self, size_bytes: int, size_bytes_max: int) -> None:
        DomainError.__init__(
            self, f"a batch's body is at most {size_bytes_max:,} bytes, not {size_bytes:,}"
        )
