"""Each validator's sequence as the backend has received it: the highest seq and the gaps.

A device numbers its taps 1, 2, 3, ... and uploads them until acknowledged, so a number missing
below the highest one received is a tap still in an outbox, or one lost: it is reported, not
ignored. The count of missing numbers is exact (`highest_seq - taps_recorded`, since each seq is
recorded once); the list names only the most recent `VALIDATOR_GAPS_KEPT_MAX` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    delete,
    insert,
    select,
    update,
)

from ticketing.adapters.follower import FOLLOW_SECTION_MAX, Follower, tracking
from ticketing.domain.tap import SEQ_FIRST, Tap

PROJECTION_NAME = "tap_sequences"
# Missing sequence numbers listed per validator; older ones are only counted.
VALIDATOR_GAPS_KEPT_MAX = 1_000

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


class TapSequenceProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = (Tap.Recorded.TOPIC,)
    tables: tuple[Table, ...] = (validator_sequences, validator_gaps)

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:  # noqa: ARG002
        for e in events:
            self._apply_one(conn, e.validator_id, e.seq)

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
class SequenceReport:
    highest_seq: int | None  # None: no tap recorded yet
    taps_recorded: int
    missing_count: int  # exact
    missing_seqs: list[int]  # the most recent ones, ascending
    as_of: int  # the position in the log the report is built to


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
        if row is None:
            return SequenceReport(None, 0, 0, [], int(as_of or 0))
        highest, recorded = int(row.highest_seq), int(row.taps_recorded)
        return SequenceReport(
            highest_seq=highest,
            taps_recorded=recorded,
            missing_count=highest - (SEQ_FIRST - 1) - recorded,
            missing_seqs=missing,
            as_of=int(as_of or 0),
        )
