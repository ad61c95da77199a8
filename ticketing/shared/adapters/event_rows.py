"""A statement on an application's events table, its rows as plain tuples in PostgreSQL's
binary format: the store's own connections make a dict of every row (a cost per event), and
in text a state comes as hex to decode here."""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier


def events_statement(recorder: PostgresAggregateRecorder, text: str) -> Composed:
    """`text` with `{events}` standing for the recorder's events table."""
    table = SQL("{}.{}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )
    return SQL(text).format(events=table)


def event_rows(
    recorder: PostgresAggregateRecorder, statement: Composed, params: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    with (
        recorder.datastore.get_connection() as conn,
        conn.cursor(row_factory=tuple_row) as cursor,
    ):
        cursor.execute(statement, params, prepare=True, binary=True)
        return cursor.fetchall()
