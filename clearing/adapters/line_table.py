"""A cycle's lines in a SQL table (SQLAlchemy 2, SQLite or PostgreSQL): kept when the cycle
closes, read to write its files, searched by the operators' page.

The lines of a closed cycle are part of its record: the cycle's `Closed` event pins them by
their digest, and nothing but a new run of a cycle still open replaces them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from itertools import islice
from operator import attrgetter
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Engine,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    delete,
    func,
    insert,
    select,
)

from clearing.domain.cycle_lines import SUSPENSE_OPERATOR, CycleLine, line_key
from clearing.domain.errors import TooManyParts
from ticketing.shared.domain.invariants import InvariantViolated

# Lines inserted per statement: large enough to amortise a round trip, small in memory.
INSERT_BATCH = 5_000
# Lines read per fetch when a cycle's lines stream out.
READ_BATCH = 5_000

metadata = MetaData()

clearing_lines = Table(
    "clearing_lines",
    metadata,
    Column("business_day", Date, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("notification_id", BigInteger, nullable=False),
    Column("operator_id", String(64), nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("category", String(32), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("transaction_id", String(128), nullable=False),
    Column("reference", String(256), nullable=False),
    Column("suspense_code", String(64), nullable=False),
    Column("reason", String(512), nullable=False),
    Column("resolves", String(32), nullable=False),
    Index("clearing_lines_by_operator", "business_day", "operator_id", "line_no"),
    Index("clearing_lines_by_resolved", "resolves"),
    Index("clearing_lines_by_transaction", "transaction_id"),
)

_FIELDS = tuple(CycleLine.__slots__)  # the dataclass's fields, in order


class SqlLineStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    def replace_lines(self, day: date, lines: Iterable[CycleLine]) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(clearing_lines).where(clearing_lines.c.business_day == day))
            if connection.dialect.name == "postgresql":
                _copy_lines(connection, day, lines)
                return
            iterator = iter(lines)
            while batch := list(islice(iterator, INSERT_BATCH)):
                rows = [_row(day, line) for line in batch]
                connection.execute(insert(clearing_lines), rows)

    def lines(self, day: date, operator_id: str | None = None) -> Iterator[CycleLine]:
        query = select(*[clearing_lines.c[name] for name in _FIELDS]).where(
            clearing_lines.c.business_day == day
        )
        if operator_id is not None:
            query = query.where(clearing_lines.c.operator_id == operator_id)
        query = query.order_by(clearing_lines.c.line_no)
        with self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                yield from _fetched_lines(connection, query)
                return
            result = connection.execution_options(yield_per=READ_BATCH).execute(query)
            for row in result:
                yield CycleLine(*row)

    def line(self, day: date, line_no: int) -> CycleLine | None:
        columns = [clearing_lines.c[name] for name in _FIELDS]
        with self.engine.connect() as connection:
            row = connection.execute(
                select(*columns).where(
                    clearing_lines.c.business_day == day, clearing_lines.c.line_no == line_no
                )
            ).first()
        return None if row is None else CycleLine(*row)

    def open_suspense(self, before: date, most: int) -> list[tuple[date, CycleLine]]:
        """The suspense lines of cycles before `before` that no later line settles, oldest
        first: at most `most` (`TooManyParts` beyond: suspense that large is an incident)."""
        columns = [clearing_lines.c.business_day, *[clearing_lines.c[name] for name in _FIELDS]]
        with self.engine.connect() as connection:
            settled = set(
                connection.execute(
                    select(clearing_lines.c.resolves).where(clearing_lines.c.resolves != "")
                ).scalars()
            )
            rows = connection.execute(
                select(*columns)
                .where(
                    clearing_lines.c.business_day < before,
                    clearing_lines.c.operator_id == SUSPENSE_OPERATOR,
                    clearing_lines.c.resolves == "",
                )
                .order_by(clearing_lines.c.business_day, clearing_lines.c.line_no)
            ).all()
        found = [(row[0], CycleLine(*row[1:])) for row in rows]
        open_lines = [(d, line) for d, line in found if line_key(d, line.line_no) not in settled]
        if len(open_lines) > most:
            raise TooManyParts("open suspense lines", len(open_lines), most)
        return open_lines

    def search(
        self,
        day: date,
        *,
        operator_id: str | None,
        text: str = "",
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[CycleLine]]:
        """One page of a cycle's lines (of one operator, or all), whose transaction id or
        reference contains `text`; and how many match in all."""
        where = [clearing_lines.c.business_day == day]
        if operator_id is not None:
            where.append(clearing_lines.c.operator_id == operator_id)
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(
                clearing_lines.c.transaction_id.like(pattern, escape="\\")
                | clearing_lines.c.reference.like(pattern, escape="\\")
            )
        columns = [clearing_lines.c[name] for name in _FIELDS]
        with self.engine.connect() as connection:
            total = connection.execute(
                select(func.count()).select_from(clearing_lines).where(*where)
            ).scalar_one()
            rows = connection.execute(
                select(*columns)
                .where(*where)
                .order_by(clearing_lines.c.line_no)
                .offset(offset)
                .limit(limit)
            ).all()
        return int(total), [CycleLine(*row) for row in rows]


def _copy_lines(connection: Connection, day: date, lines: Iterable[CycleLine]) -> None:
    """Streams the lines into the table with PostgreSQL's COPY, in the connection's transaction:
    several times faster than inserts, and the rows are written as they come."""
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise InvariantViolated("PostgreSQL is reached through psycopg")
    columns = ", ".join(["business_day", *_FIELDS])
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY clearing_lines ({columns}) FROM STDIN") as copy,
    ):
        values = attrgetter(*_FIELDS)
        for line in lines:
            copy.write_row((day, *values(line)))


def _fetched_lines(connection: Connection, query: Select[Any]) -> Iterator[CycleLine]:
    """The query's lines through a server-side cursor of psycopg's, `READ_BATCH` rows a fetch as
    plain tuples: a cycle's files read a city day's lines, and SQLAlchemy's rows cost as much
    again as the lines made of them."""
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise InvariantViolated("PostgreSQL is reached through psycopg")
    compiled = query.compile(dialect=connection.dialect)
    statement = str(compiled)
    params = compiled.params
    with driver.cursor(name="clearing_lines_out", row_factory=tuple_row) as cursor:
        cursor.itersize = READ_BATCH
        cursor.execute(statement, params)
        for row in cursor:
            yield CycleLine(*row)


def _row(day: date, line: CycleLine) -> dict[str, Any]:
    return {"business_day": day, **{name: getattr(line, name) for name in _FIELDS}}
