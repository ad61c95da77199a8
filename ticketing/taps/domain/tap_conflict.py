"""A tap whose `(validator_id, epoch, seq)` was already taken by another tap: kept for review.

A device whose state was wiped numbers its taps from 1 again, and until it is enrolled again
(`Validator.enrol`) its new taps meet the old ones' numbers. Such a tap is not the recorded one
(the device uploaded other content), so it is neither recorded as a tap, which would record two
taps under one number, nor dropped: it is kept here, with everything the device uploaded, for
staff to review, and the device is told `seq_conflict`. Its id comes from the number and a
digest of the content, so the same conflicting upload sent again is kept once.

It is not a `Tap.Recorded` on purpose: fares follow that topic, and a tap nobody has placed yet
must not be charged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.ids import url_uuid5
from ticketing.taps.domain.tap import DEVICE_FIELDS, check_aware

TOPIC_PREFIX = "ticketing.TapConflict"
# Device fields added since conflicts were first kept: in a digest only when set, so an upload
# that sets none of them keeps the id it always had.
FIELDS_ADDED = frozenset({"stop_id"})


def upload_digest(state: Mapping[str, Any]) -> str:
    """A digest of what the device uploaded of one tap, stable across processes."""
    content = {
        name: state.get(name)
        for name in DEVICE_FIELDS
        if name not in FIELDS_ADDED or state.get(name) is not None
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def tap_conflict_id(validator_id: int, epoch: int, seq: int, digest: str) -> UUID:
    return url_uuid5(f"/tapledger/tap-conflicts/{validator_id}/{epoch}/{seq}/{digest}")


class TapConflict(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Recorded(Created):
        TOPIC = f"{TOPIC_PREFIX}.Recorded"
        validator_id: int
        epoch: int
        seq: int
        conflicts_with: UUID  # the tap recorded under this number
        recorded_at: datetime  # the backend's clock
        # What the device uploaded, as a tap's event keeps it (`tap.DEVICE_FIELDS`).
        tapped_at: datetime
        medium: str
        device_decision: str
        device_reason: str
        code_text: str | None
        serial: str | None
        key_level: int | None
        terminal_challenge: str | None
        card_challenge: str | None
        transaction_counter: int | None
        transcript: str | None
        card_mac: str | None
        stop_id: str | None
        # Version 2 added the `stop_id` a bus validator says it is at: none before.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["stop_id"] = None

    @event(Recorded)
    def __init__(
        self,
        validator_id: int,
        epoch: int,
        seq: int,
        conflicts_with: UUID,
        recorded_at: datetime,
        tapped_at: datetime,
        medium: str,
        device_decision: str,
        device_reason: str,
        code_text: str | None,
        serial: str | None,
        key_level: int | None,
        terminal_challenge: str | None,
        card_challenge: str | None,
        transaction_counter: int | None,
        transcript: str | None,
        card_mac: str | None,
        stop_id: str | None,
    ) -> None:
        # Only what a reviewer lists by; the event keeps everything the device sent.
        self.validator_id = validator_id
        self.epoch = epoch
        self.seq = seq
        self.conflicts_with = conflicts_with
        self.recorded_at = recorded_at
        self.tapped_at = tapped_at
        self.medium = medium

    @classmethod
    def record(
        cls, state: Mapping[str, Any], *, conflicts_with: UUID, recorded_at: datetime
    ) -> TapConflict:
        """The conflict of the tap whose checked state (`tap.recorded_state`) is `state`."""
        check_aware(recorded_at)
        validator_id, epoch, seq = state["validator_id"], state["epoch"], state["seq"]
        # The id is of the content too, which `create_id` (given a few fields) cannot see.
        conflict: TapConflict = cls._create(
            cls.Recorded,
            id=tap_conflict_id(validator_id, epoch, seq, upload_digest(state)),
            validator_id=validator_id,
            epoch=epoch,
            seq=seq,
            conflicts_with=conflicts_with,
            recorded_at=recorded_at,
            **{name: state[name] for name in DEVICE_FIELDS},
        )
        return conflict
