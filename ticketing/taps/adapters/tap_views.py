"""Each validator's sequence as the backend has received it (the highest seq and the gaps), and
the taps on which the device and the backend disagreed.

A device numbers its taps 1, 2, 3, ... and uploads them until acknowledged, so a number missing
below the highest one received is a tap still in an outbox, or one lost: it is reported, not
ignored. The count of missing numbers is exact (`highest_seq - taps_recorded`, since each seq is
recorded once); the list names only the most recent `VALIDATOR_GAPS_KEPT_MAX` of them.

A disagreement is a tap the device accepted and the backend could not verify (the rider went
through and is not charged: a forged or replayed code, a stale deny list, a device fault), or
one the device refused and the backend verified (the rider was turned away with a good medium:
a gate fault or stale data on the device). A card whose MAC either side rejected is listed too,
as a suspected clone, even when both refused it. None moves money; staff review them. They are rows
of this projection rather than a projection of their own because they are read from the same
`Tap.Recorded` events by the same follower. A database made before the table existed lists only
later disagreements until `tapledger projections rebuild`.

A device enrolled again numbers from 1 in a new epoch, so the report is of the validator's
latest epoch: a tap of a newer epoch starts the report afresh, and a late one of an older epoch
no longer counts in it. Taps kept for review because their number was taken (`TapConflict`)
are listed for staff, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    insert,
    select,
    update,
)

from ticketing.shared.adapters.follower import FOLLOW_SECTION_MAX, Follower, tracking
from ticketing.taps.domain.tap import REASON_MAX_CHARS, SEQ_FIRST, CardRefusal, Tap, Verdict
from ticketing.taps.domain.tap_conflict import TapConflict

PROJECTION_NAME = "tap_sequences"
# Missing sequence numbers listed per validator; older ones are only counted.
VALIDATOR_GAPS_KEPT_MAX = 1_000
# Disagreements listed per request, newest first (as journeys are).
DISAGREEMENTS_PAGE_MAX = 100

# The device accepted what the backend refused (a ride nobody is charged for), or refused a
# medium the backend verified (a rider turned away who could have paid).
DisagreementKind = Literal["let_through_unverified", "turned_away_verified", "suspected_clone"]
# A card whose MAC the validator's SAM or the backend's rejected: a card with a genuine serial and
# other keys, listed for staff even when both sides refused it.
CLONE_DEVICE_REASON = "card_not_genuine"

# Taps kept for review listed in one answer, newest first.
SEQ_CONFLICTS_LISTED_MAX = 200
MEDIUM_MAX_CHARS = 8

metadata = MetaData()

validator_sequences = Table(
    "validator_sequences",
    metadata,
    Column("validator_id", BigInteger, primary_key=True),
    Column("highest_seq", BigInteger, nullable=False),
    Column("taps_recorded", BigInteger, nullable=False),
)

validator_gaps = Table(
    "validator_gaps",
    metadata,
    Column("validator_id", BigInteger, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
)

tap_disagreements = Table(
    "tap_disagreements",
    metadata,
    Column("tap_id", String(32), primary_key=True),
    Column("validator_id", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("tapped_at", String(32), nullable=False),  # ISO 8601, the device's clock
    Column("medium", String(8), nullable=False),
    Column("device_decision", String(8), nullable=False),
    Column("device_reason", String(REASON_MAX_CHARS), nullable=False),
    Column("verification", String(8), nullable=False),
    Column("refusal_reason", String(REASON_MAX_CHARS), nullable=True),
    Column("position", BigInteger, nullable=False),
    Index("ix_tap_disagreements_position", "position"),
    Index("ix_tap_disagreements_validator", "validator_id", "position"),
)


# The epoch the two tables above are of; a validator without a row is in epoch 0.
validator_epochs = Table(
    "validator_epochs",
    metadata,
    Column("validator_id", BigInteger, primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)

tap_seq_conflicts = Table(
    "tap_seq_conflicts",
    metadata,
    Column("conflict_id", Uuid, primary_key=True),
    Column("validator_id", BigInteger, nullable=False, index=True),
    Column("epoch", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("conflicts_with", Uuid, nullable=False),
    Column("medium", String(MEDIUM_MAX_CHARS), nullable=False),
    Column("tapped_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("position", BigInteger, nullable=False),
)


class TapSequenceProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = (Tap.Recorded.TOPIC, TapConflict.Recorded.TOPIC)
    tables: tuple[Table, ...] = (
        validator_sequences,
        validator_gaps,
        validator_epochs,
        tap_seq_conflicts,
        tap_disagreements,
    )

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        for e in events:
            if isinstance(e, TapConflict.Recorded):
                self._keep_conflict(conn, e, position)
                continue
            if self._in_latest_epoch(conn, e.validator_id, e.epoch):
                self._apply_one(conn, e.validator_id, e.seq)
            if e.device_decision != e.verification or _suspected_clone(
                e.device_reason, e.refusal_reason
            ):
                conn.execute(
                    insert(tap_disagreements).values(
                        tap_id=e.originator_id.hex,
                        validator_id=e.validator_id,
                        seq=e.seq,
                        tapped_at=e.tapped_at.isoformat(),
                        medium=e.medium,
                        device_decision=e.device_decision,
                        device_reason=e.device_reason,
                        verification=e.verification,
                        refusal_reason=e.refusal_reason,
                        position=position,
                    )
                )

    @staticmethod
    def _in_latest_epoch(conn: Connection, validator_id: int, epoch: int) -> bool:
        """Whether a tap of `epoch` counts in the report; a newer epoch starts it afresh."""
        row = conn.execute(
            select(validator_epochs.c.epoch).where(validator_epochs.c.validator_id == validator_id)
        ).first()
        latest = 0 if row is None else int(row.epoch)
        if epoch <= latest:
            return epoch == latest
        for table in (validator_sequences, validator_gaps):
            conn.execute(delete(table).where(table.c.validator_id == validator_id))
        if row is None:
            conn.execute(insert(validator_epochs).values(validator_id=validator_id, epoch=epoch))
        else:
            conn.execute(
                update(validator_epochs)
                .where(validator_epochs.c.validator_id == validator_id)
                .values(epoch=epoch)
            )
        return True

    @staticmethod
    def _keep_conflict(conn: Connection, e: Any, position: int) -> None:
        conn.execute(
            insert(tap_seq_conflicts).values(
                conflict_id=e.originator_id,
                validator_id=e.validator_id,
                epoch=e.epoch,
                seq=e.seq,
                conflicts_with=e.conflicts_with,
                medium=e.medium,
                tapped_at=e.tapped_at,
                recorded_at=e.recorded_at,
                position=position,
            )
        )

    def _apply_one(self, conn: Connection, validator_id: int, seq: int) -> None:
        row = conn.execute(
            select(validator_sequences.c.highest_seq).where(
                validator_sequences.c.validator_id == validator_id
            )
        ).first()
        highest = SEQ_FIRST - 1 if row is None else int(row.highest_seq)
        if row is None:
            conn.execute(
                insert(validator_sequences).values(
                    validator_id=validator_id, highest_seq=seq, taps_recorded=1
                )
            )
        else:
            conn.execute(
                update(validator_sequences)
                .where(validator_sequences.c.validator_id == validator_id)
                .values(
                    highest_seq=max(highest, seq),
                    taps_recorded=validator_sequences.c.taps_recorded + 1,
                )
            )
        if seq < highest:
            # A late tap fills its gap (a no-op when the gap was too old to be listed).
            conn.execute(
                delete(validator_gaps).where(
                    validator_gaps.c.validator_id == validator_id, validator_gaps.c.seq == seq
                )
            )
            return
        first_missing = max(highest + 1, seq - VALIDATOR_GAPS_KEPT_MAX)
        if first_missing < seq:
            conn.execute(
                insert(validator_gaps),
                [{"validator_id": validator_id, "seq": s} for s in range(first_missing, seq)],
            )
            self._forget_oldest(conn, validator_id)

    @staticmethod
    def _forget_oldest(conn: Connection, validator_id: int) -> None:
        oldest_kept = conn.execute(
            select(validator_gaps.c.seq)
            .where(validator_gaps.c.validator_id == validator_id)
            .order_by(validator_gaps.c.seq.desc())
            .offset(VALIDATOR_GAPS_KEPT_MAX - 1)
            .limit(1)
        ).scalar()
        if oldest_kept is not None:
            conn.execute(
                delete(validator_gaps).where(
                    validator_gaps.c.validator_id == validator_id,
                    validator_gaps.c.seq < oldest_kept,
                )
            )


class TapFollower(Follower):
    def __init__(self, app: Any, engine: Engine, *, section_size: int = FOLLOW_SECTION_MAX) -> None:
        super().__init__(app, engine, TapSequenceProjection(), section_size=section_size)


@dataclass(frozen=True)
class SeqConflictView:
    """A tap kept for review: another tap holds `(validator_id, epoch, seq)`."""

    conflict_id: UUID
    epoch: int
    seq: int
    conflicts_with: UUID
    medium: str
    tapped_at: datetime
    recorded_at: datetime


@dataclass(frozen=True)
class SequenceReport:
    highest_seq: int | None  # None: no tap recorded yet
    taps_recorded: int
    missing_count: int  # exact
    missing_seqs: list[int]  # the most recent ones, ascending
    as_of: int  # the position in the log the report is built to
    epoch: int = 0  # the epoch reported: the latest one a tap was recorded in


@dataclass(frozen=True)
class TapDisagreement:
    """A tap on which the device and the backend decided differently."""

    tap_id: UUID
    validator_id: int
    seq: int
    tapped_at: datetime
    medium: str
    device_decision: str
    device_reason: str
    verification: str
    refusal_reason: str | None  # the backend's reason, when it refused
    position: int  # where the section that recorded it ends in the taps' log

    @property
    def kind(self) -> DisagreementKind:
        if _suspected_clone(self.device_reason, self.refusal_reason):
            return "suspected_clone"
        if self.device_decision == Verdict.ACCEPTED:
            return "let_through_unverified"
        return "turned_away_verified"


class TapViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def disagreements(
        self,
        *,
        validator_id: int | None = None,
        limit: int = DISAGREEMENTS_PAGE_MAX,
    ) -> list[TapDisagreement]:
        """Taps the device and the backend decided differently, newest first: every
        validator's, or one validator's."""
        limit = max(1, min(limit, DISAGREEMENTS_PAGE_MAX))
        query = select(tap_disagreements)
        if validator_id is not None:
            query = query.where(tap_disagreements.c.validator_id == validator_id)
        # A section's taps share a position; within it, by the devices' clocks (ISO in UTC, as
        # recorded, so the text sorts as the times do), then each device's own order.
        order = (
            tap_disagreements.c.position.desc(),
            tap_disagreements.c.tapped_at.desc(),
            tap_disagreements.c.validator_id,
            tap_disagreements.c.seq.desc(),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(*order).limit(limit)).all()
        return [_disagreement(r) for r in rows]

    def sequence_report(self, validator_id: int) -> SequenceReport:
        with self.engine.connect() as conn:
            as_of = conn.execute(
                select(tracking.c.notification_id).where(tracking.c.projection == PROJECTION_NAME)
            ).scalar()
            row = conn.execute(
                select(validator_sequences).where(
                    validator_sequences.c.validator_id == validator_id
                )
            ).first()
            gaps = conn.execute(
                select(validator_gaps.c.seq)
                .where(validator_gaps.c.validator_id == validator_id)
                .order_by(validator_gaps.c.seq)
                .limit(VALIDATOR_GAPS_KEPT_MAX)
            ).scalars()
            missing = [int(s) for s in gaps]
            epoch = conn.execute(
                select(validator_epochs.c.epoch).where(
                    validator_epochs.c.validator_id == validator_id
                )
            ).scalar()
        if row is None:
            return SequenceReport(None, 0, 0, [], int(as_of or 0), int(epoch or 0))
        highest, recorded = int(row.highest_seq), int(row.taps_recorded)
        return SequenceReport(
            highest_seq=highest,
            taps_recorded=recorded,
            missing_count=highest - (SEQ_FIRST - 1) - recorded,
            missing_seqs=missing,
            as_of=int(as_of or 0),
            epoch=int(epoch or 0),
        )

    def seq_conflicts(
        self, validator_id: int, *, limit: int = SEQ_CONFLICTS_LISTED_MAX
    ) -> list[SeqConflictView]:
        """The validator's taps kept for review, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tap_seq_conflicts)
                .where(tap_seq_conflicts.c.validator_id == validator_id)
                .order_by(tap_seq_conflicts.c.position.desc(), tap_seq_conflicts.c.seq.desc())
                .limit(min(limit, SEQ_CONFLICTS_LISTED_MAX))
            ).all()
        return [
            SeqConflictView(
                conflict_id=row.conflict_id,
                epoch=int(row.epoch),
                seq=int(row.seq),
                conflicts_with=row.conflicts_with,
                medium=row.medium,
                tapped_at=row.tapped_at,
                recorded_at=row.recorded_at,
            )
            for row in rows
        ]


def _suspected_clone(device_reason: str, refusal_reason: str | None) -> bool:
    return device_reason == CLONE_DEVICE_REASON or refusal_reason == CardRefusal.BAD_CARD_MAC


def _disagreement(r: Any) -> TapDisagreement:
    return TapDisagreement(
        tap_id=UUID(hex=r.tap_id),
        validator_id=int(r.validator_id),
        seq=int(r.seq),
        tapped_at=datetime.fromisoformat(r.tapped_at),
        medium=r.medium,
        device_decision=r.device_decision,
        device_reason=r.device_reason,
        verification=r.verification,
        refusal_reason=r.refusal_reason,
        position=int(r.position),
    )
