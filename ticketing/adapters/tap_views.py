"""Each validator's sequence as the backend has received it: the highest seq and the gaps.

A device numbers its taps 1, 2, 3, ... and uploads them until acknowledged, so a number missing
below the highest one received is a tap still in an outbox, or one lost: it is reported, not
ignored. The count of missing numbers is exact (`highest_seq - taps_recorded`, since each seq is
recorded once); the list names only the most recent `VALIDATOR_GAPS_KEPT_MAX` of them.

A device enrolled again numbers from 1 in a new epoch, so the report is of the validator's
latest epoch: a tap of a newer epoch starts the report afresh, and a late one of an older epoch
no longer counts in it. Taps kept for review because their number was taken (`TapConflict`)
are listed for staff, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    insert,
    select,
    update,
)

from ticketing.adapters.follower import FOLLOW_SECTION_MAX, Follower, tracking
from ticketing.domain.tap import SEQ_FIRST, Tap
from ticketing.domain.tap_conflict import TapConflict

PROJECTION_NAME = "tap_sequences"
# Missing sequence numbers listed per validator; older ones are only counted.
VALIDATOR_GAPS_KEPT_MAX = 1_000
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
    )

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        for e in events:
            if isinstance(e, TapConflict.Recorded):
                self._keep_conflict(conn, e, position)
            elif self._in_latest_epoch(conn, e.validator_id, e.epoch):
                self._apply_one(conn, e.validator_id, e.seq)

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


class TapViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
