"""A PostgreSQL database per run: created empty for a day to be written into, or copied from a
database holding a written day (`CREATE DATABASE ... TEMPLATE`), so one generated day can be
cleared several times, each time from the same state."""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

SERVER_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 5


def database_url(server_url: str, name: str) -> str:
    """The server's URL naming database `name` (a plain libpq URL)."""
    url = make_url(server_url).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Creates `name` (dropping one of that name first), empty or as a copy of `template`."""
    with _maintenance(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with _maintenance(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _maintenance(server_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        database_url(server_url, "postgres"), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
    )
