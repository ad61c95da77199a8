"""The purse a verified card tap left, recorded on the backend's record of the card.

The tap's session transcript (spec/CARD.md) shows the purse after the session: a DECREASE answers
the new value, a re-tap after a tear reads it. The card's MAC over the transcript was verified
before the tap was accepted, so the value is the card's own. Recording is keyed by the session's
transaction counter, which only goes down: the same tap applied again, or an older session
uploaded late, records nothing (`SmartCard.see_validation`).
"""

from __future__ import annotations

import logging
from typing import Any

from hardware.tlc1.transcript import parse_transcript
from ticketing.domain.errors import LedgerError
from ticketing.smart_cards import SmartCards

log = logging.getLogger(__name__)


def record_purse(smart_cards: SmartCards, tap: Any) -> bool:
    """Records the purse of an accepted card tap; returns whether anything was recorded."""
    if tap.medium != "card" or tap.verification != "accepted":
        return False
    if tap.serial is None or tap.transcript is None or tap.transaction_counter is None:
        return False
    try:
        purse_vnd = parse_transcript(bytes.fromhex(tap.transcript)).purse_after_vnd
    except ValueError as error:  # bad hex, or a TranscriptError
        # Verified by its MAC, so this is a validator bug worth a warning, never a crash.
        log.warning("tap %s/%s: unreadable transcript: %s", tap.validator_id, tap.seq, error)
        return False
    if purse_vnd is None:
        return False  # a session that never showed the purse (a pass covered the ride)
    try:
        return smart_cards.record_validation(
            tap.serial, purse_vnd=purse_vnd, transaction_counter=tap.transaction_counter
        )
    except LedgerError as error:
        log.warning("tap %s/%s: purse not recorded: %s", tap.validator_id, tap.seq, error)
        return False
