"""The purse a verified card tap left, as the journey follower collects it per section, and the
payment its session proves.

The tap's session transcript (spec/CARD.md) shows the purse after the session: a DECREASE answers
the new value, a re-tap after a tear reads it. The card's MAC over the transcript was verified
before the tap was accepted, so the value is the card's own. The session's transaction counter
only goes down, so of the sessions one card shows in a section the newest is the one with the
lowest counter; only that one is worth recording (`SmartCard.see_validation` would refuse the
others as older). Recording is keyed by that counter: the same tap applied again, or an older
session uploaded late, records nothing.

What a tap's session proves the purse paid (`card_payment`) is named by the card's serial and the
event record the paying session wrote: the event log's record is what the card's MAC proves
about that session both in the session itself (its APPEND) and in a re-tap after a tear (the
unratified card's first event, read back and closed with no change). So the torn tap and its
re-tap, at whichever validator, name one payment. The re-tap's own counter only bounds the torn
session's (an OPEN at a validator that then gave up also takes a number), so the event names it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hardware.tlc1.constants import Ins, Sfi, Sw
from hardware.tlc1.records import CONTRACT_PURSE, Event, RecordError, is_blank
from hardware.tlc1.transcript import HEADER_BYTES, Transcript, parse_transcript
from ticketing.shared.domain.ids import url_uuid5

log = logging.getLogger(__name__)

# The device's reason for a re-tap after a tear (validators.card_validation.Outcome).
RETAP_AFTER_TEAR = "retap_after_tear"
EVENT_APPEND_P2 = Sfi.EVENT_LOG << 3  # APPEND RECORD's P2 names the cyclic file this way
EVENT_READ_P2 = (Sfi.EVENT_LOG << 3) | 4  # READ RECORD's P2 names a file this way
NEWEST_EVENT = 1  # the cyclic log's record 1 is the newest
# A session that proves an earlier one changes nothing on the card.
CHANGES = frozenset({Ins.UPDATE_RECORD, Ins.APPEND_RECORD, Ins.DECREASE, Ins.INCREASE})


@dataclass(frozen=True)
class RecoveredTap:
    """The tap a re-tap after a tear recovers, as the card's event says it happened."""

    at: datetime
    validator_id: int


@dataclass(frozen=True)
class CardPayment:
    """What a verified card session proves the purse paid, and which session paid it."""

    amount_vnd: int
    # Names the paying session (serial and its event); None when the session wrote no event.
    proof: str | None
    # On a re-tap after a tear: the torn tap, whose session this one proves again.
    recovered: RecoveredTap | None = None


@dataclass(frozen=True)
class PurseObservation:
    """The purse one verified session left on one card."""

    serial: str
    purse_vnd: int
    transaction_counter: int

    def is_newer_than(self, other: PurseObservation) -> bool:
        return self.transaction_counter < other.transaction_counter


def _accepted_transcript(tap: Any) -> Transcript | None:
    """The session transcript of an accepted card tap; None when it has none or it is unreadable."""
    if tap.medium != "card" or tap.verification != "accepted" or tap.transcript is None:
        return None
    try:
        return parse_transcript(bytes.fromhex(tap.transcript))
    except ValueError as error:  # bad hex, or a TranscriptError
        # Verified by its MAC, so this is a validator bug worth a warning, never a crash.
        log.warning("tap %s/%s: unreadable transcript: %s", tap.validator_id, tap.seq, error)
        return None


def purse_observation(tap: Any) -> PurseObservation | None:
    """The purse an accepted card tap's session left; None when the tap shows none."""
    if tap.serial is None or tap.transaction_counter is None:
        return None
    transcript = _accepted_transcript(tap)
    if transcript is None or transcript.purse_after_vnd is None:
        return None  # no session, or one that never showed the purse (a pass covered the ride)
    return PurseObservation(tap.serial, transcript.purse_after_vnd, tap.transaction_counter)


def card_payment(tap: Any) -> CardPayment | None:
    """What an accepted card tap's session proves the purse paid: what it took itself, or, for
    a re-tap after a tear, what the torn session took (the event the re-tap read back). None
    when it proves no payment, nor any session that made one."""
    transcript = _accepted_transcript(tap)
    if transcript is None or tap.serial is None:
        return None
    if tap.device_reason == RETAP_AFTER_TEAR:
        return _recovered_payment(tap, transcript)
    written = [
        e.apdu[HEADER_BYTES + 1 :]
        for e in transcript.exchanges
        if e.ins == Ins.APPEND_RECORD and e.apdu[3] == EVENT_APPEND_P2 and e.sw == Sw.OK
    ]
    taken_vnd = transcript.purse_decreased_vnd
    if not written:
        return CardPayment(taken_vnd, None) if taken_vnd else None
    return CardPayment(taken_vnd, _proof(tap.serial, written[-1]))


def _recovered_payment(tap: Any, transcript: Transcript) -> CardPayment | None:
    """The torn session's payment a re-tap proves: the card was unratified, and the session read
    its newest event and changed nothing. A re-tap whose session shows less proves nothing."""
    changed = any(e.ins in CHANGES and e.sw == Sw.OK for e in transcript.exchanges)
    read = [
        e.data
        for e in transcript.exchanges
        if e.ins == Ins.READ_RECORD
        and (e.apdu[2], e.apdu[3]) == (NEWEST_EVENT, EVENT_READ_P2)
        and e.sw == Sw.OK
    ]
    if transcript.ratified or changed or not read or is_blank(read[0]):
        log.warning("tap %s/%s: a re-tap that proves no torn session", tap.validator_id, tap.seq)
        return None
    try:
        event = Event.decode(read[0])
    except RecordError as error:
        log.warning("tap %s/%s: unreadable event: %s", tap.validator_id, tap.seq, error)
        return None
    paid_vnd = event.amount if event.contract == CONTRACT_PURSE else 0
    recovered = RecoveredTap(datetime.fromtimestamp(event.at, UTC), event.validator)
    return CardPayment(paid_vnd, _proof(tap.serial, read[0]), recovered)


def _proof(serial: str, event_record: bytes) -> str:
    return str(url_uuid5(f"/tapledger/card-events/{serial.lower()}/{event_record.hex()}"))


class SectionPurses:
    """Per card, the newest purse the taps of one section showed. A section that is thrown
    away (the ledger refused one of its taps) throws its collector away with it."""

    def __init__(self) -> None:
        self._newest: dict[str, PurseObservation] = {}

    def __len__(self) -> int:
        return len(self._newest)

    def see(self, tap: Any) -> None:
        observation = purse_observation(tap)
        if observation is None:
            return
        known = self._newest.get(observation.serial)
        if known is None or observation.is_newer_than(known):
            self._newest[observation.serial] = observation

    def newest(self) -> list[PurseObservation]:
        """One observation per card, in the order the cards first appeared."""
        return list(self._newest.values())
