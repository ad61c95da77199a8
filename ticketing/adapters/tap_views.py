"""Each validator's sequence as the backend has received it (the highest seq and the gaps), and
the taps on which the device and the backend disagreed.

A device numbers its taps 1, 2, 3, ... and uploads them until acknowledged, so a number missing
below the highest one received is a tap still in an outbox, or one lost: it is reported, not
ignored. The count of missing numbers is exact (`highest_seq - taps_recorded`, since each seq is
recorded once); the list names only the most recent `VALIDATOR_GAPS_KEPT_MAX` of them.

A disagreement is a tap the device accepted and the backend could not verify (the rider went
through and is not charged: a forged or replayed code, a stale deny list, a device fault), or
one the device refused and the backend verified (the rider was turned away with a good medium:
a gate fault or stale data on the device). Neither moves money; staff review both. They are rows
of this projection rather than a projection of their own because they are read from the same
`Tap.Recorded` events by the same follower. A database made before the table existed lists only
later disagreements until `tapledger projections rebuild`.
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
    Engine,
    Index,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from ticketing.adapters.follower import FOLLOW_SECTION_MAX, Follower, tracking
from ticketing.domain.tap import REASON_MAX_CHARS, SEQ_FIRST, Tap, Verdict

PROJECTION_NAME = "tap_sequences"
# Missing sequence numbers listed per validator; older ones are only counted.
VALIDATOR_GAPS_KEPT_MAX = 1_000
# Disagreements listed per request, newest first (as journeys are).
DISAGREEMENTS_PAGE_MAX = 100

# The device accepted what the backend refused (a ride nobody is charged for), or refused a
# medium the backend verified (a rider turned away who could have paid).
DisagreementKind = Literal["let_through_unverified", "turned_away_verified"]

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


class TapSequenceProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = (Tap.Recorded.TOPIC,)
    tables: tuple[Table, ...] = (validator_sequences, validator_gaps, tap_disagreements)

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        for e in events:
            self._apply_one(conn, e.validator_id, e.seq)
            if e.device_decision != e.verification:
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
