"""Recorders of the Taps log that also *claim* what may be used once, in the same transaction.

A tap is one event. What makes a QR code or a card session single-use is a claim: a row keyed by
the use's id (`QrCodeUse.create_id`, `CardSessionUse.create_id`) naming the tap that used it,
inserted in the transaction that records the tap. A second claim of the same use fails the
store's uniqueness check like a second recording of the same tap does, so a code used at two
validators is refused at the second whatever process or retry uploads it.

Claims travel as the `claims` keyword of `Application.save`, which the library hands to its
recorder's `insert_events`; each store's recorder writes them first, before its events:

* PostgreSQL: one statement inserts the claims (a data-modifying `WITH`) and the events, from
  typed arrays sent in binary, instead of the library's array of a composite type sent as text,
  which escapes every byte of every event's state with a regular expression.
* SQLite (the embedded default): an `executemany` in the same transaction.
* In memory (unit tests): checked and stored under the recorder's lock.

Each recorder also answers the two questions a repeated upload asks, one query for a whole
batch: which of these taps are recorded, and as what (the first event of each, so that a tap
sent again is told from another tap that reuses its number), and which of these uses are
claimed, and by which tap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.sql import SQL, Composed, Identifier

from ticketing.shared.adapters.event_recorders import Columns, PostgresEventRecorder, event_columns

# The keyword of `Application.save` that carries a batch's claims: (use id, tap id) pairs.
CLAIMS = "claims"
Claim = tuple[UUID, UUID]


def claims_of(kwargs: Mapping[str, Any]) -> Sequence[Claim]:
    claims: Sequence[Claim] = kwargs.get(CLAIMS) or ()
    return claims


class ClaimingRecorder(ApplicationRecorder):
    """The questions ingestion asks of its recorder beyond the library's."""

    def first_events_among(self, originator_ids: Iterable[UUID]) -> dict[UUID, StoredEvent]:
        """Originator id -> its first event, for those of `originator_ids` that have one."""
        raise NotImplementedError

    def claims_among(self, use_ids: Iterable[UUID]) -> dict[UUID, UUID]:
        """Use id -> the tap that claimed it, for those of `use_ids` already claimed."""
        raise NotImplementedError


class PostgresTapRecorder(PostgresEventRecorder, ClaimingRecorder):
    """The stores' recorder (`PostgresEventRecorder`: one pipeline, typed arrays in binary)
    with the claims inserted by the same statement as the events, under the same lock: a claim
    made twice is reported where the library looks for a repeated event, as an IntegrityError,
    and no claim can wait on a transaction that waits for the lock."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(datastore.schema)
        events = Identifier(events_table_name)
        claims = Identifier(f"{events_table_name}_claims")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{claims} ("
                "use_id uuid PRIMARY KEY, tap_id uuid NOT NULL)"
            ).format(schema=schema, claims=claims)
        )
        self._insert_claiming = SQL(" ").join(
            [
                SQL(
                    "WITH claimed AS (INSERT INTO {schema}.{claims} (use_id, tap_id) "
                    "SELECT * FROM unnest(%b::uuid[], %b::uuid[]))"
                ).format(schema=schema, claims=claims),
                self.insert_typed_statement,
            ]
        )
        self._select_first_events = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = ANY(%b::uuid[]) AND originator_version = 1"
        ).format(schema=schema, events=events)
        self._select_claims = SQL(
            "SELECT use_id, tap_id FROM {schema}.{claims} WHERE use_id = ANY(%b::uuid[])"
        ).format(schema=schema, claims=claims)

    def insert_statement(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> tuple[Composed, Columns]:
        events = event_columns(stored_events)
        claims = claims_of(kwargs)
        if not claims:
            return self.insert_typed_statement, events
        uses = ([use for use, _ in claims], [tap for _, tap in claims])
        return self._insert_claiming, (*uses, *events)

    def first_events_among(self, originator_ids: Iterable[UUID]) -> dict[UUID, StoredEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_first_events, (list(originator_ids),))
            return {row["originator_id"]: _stored(row) for row in curs.fetchall()}

    def claims_among(self, use_ids: Iterable[UUID]) -> dict[UUID, UUID]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_claims, (list(use_ids),))
            return {row["use_id"]: row["tap_id"] for row in curs.fetchall()}


class SQLiteTapRecorder(SQLiteApplicationRecorder, ClaimingRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.claims_table_name = f"{events_table_name}_claims"
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.claims_table_name} ("
            "use_id TEXT PRIMARY KEY, tap_id TEXT NOT NULL) WITHOUT ROWID",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        claims = claims_of(kwargs)
        if claims:
            c.executemany(
                f"INSERT INTO {self.claims_table_name} (use_id, tap_id) VALUES (?, ?)",  # noqa: S608
                [(use.hex, tap.hex) for use, tap in claims],
            )
        return super()._insert_events(c, stored_events, **kwargs)

    def first_events_among(self, originator_ids: Iterable[UUID]) -> dict[UUID, StoredEvent]:
        ids = [i.hex for i in originator_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT originator_id, originator_version, topic, state "  # noqa: S608
                f"FROM {self.events_table_name} "
                f"WHERE originator_id IN ({marks}) AND originator_version = 1",
                ids,
            )
            rows = [{**row, "originator_id": UUID(row["originator_id"])} for row in c.fetchall()]
            return {row["originator_id"]: _stored(row) for row in rows}

    def claims_among(self, use_ids: Iterable[UUID]) -> dict[UUID, UUID]:
        ids = [i.hex for i in use_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT use_id, tap_id FROM {self.claims_table_name} "  # noqa: S608
                f"WHERE use_id IN ({marks})",
                ids,
            )
            return {UUID(row["use_id"]): UUID(row["tap_id"]) for row in c.fetchall()}


class MemoryTapRecorder(POPOApplicationRecorder, ClaimingRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._claims: dict[UUID, UUID] = {}

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        uses = [use for use, _ in claims_of(kwargs)]
        if len(set(uses)) < len(uses) or any(use in self._claims for use in uses):
            raise IntegrityError("a use is claimed twice")

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._claims.update(claims_of(kwargs))
        return super()._update_table(stored_events, **kwargs)

    def first_events_among(self, originator_ids: Iterable[UUID]) -> dict[UUID, StoredEvent]:
        with self._database_lock:
            found: dict[UUID, StoredEvent] = {}
            for originator_id in originator_ids:
                position = self._stored_events_index.get(str(originator_id), {}).get(1)
                if position is not None:
                    found[originator_id] = self._stored_events[position]
            return found

    def claims_among(self, use_ids: Iterable[UUID]) -> dict[UUID, UUID]:
        with self._database_lock:
            return {use: self._claims[use] for use in use_ids if use in self._claims}


def _stored(row: Mapping[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )
