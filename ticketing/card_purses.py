"""The purse a verified card tap left, as the journey follower collects it per section.

The tap's session transcript (spec/CARD.md) shows the purse after the session: a DECREASE answers
the new value, a re-tap after a tear reads it. The card's MAC over the transcript was verified
before the tap was accepted, so the value is the card's own. The session's transaction counter
only goes down, so of the sessions one card shows in a section the newest is the one with the
lowest counter; only that one is worth recording (`SmartCard.see_validation` would refuse the
others as older). Recording is keyed by that counter: the same tap applied again, or an older
session uploaded late, records nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hardware.tlc1.transcript import Transcript, parse_transcript

log = logging.getLogger(__name__)


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


def purse_paid_vnd(tap: Any) -> int:
    """What an accepted card tap's session took from the purse; 0 when it took nothing."""
    transcript = _accepted_transcript(tap)
    return 0 if transcript is None else transcript.purse_decreased_vnd


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
