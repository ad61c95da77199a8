"""Where the enforcement index lives (`parking.domain.enforcement_index`), chosen from the
settings."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from parking.adapters.enforcement_index_memory import MemoryEnforcementIndex
from parking.adapters.enforcement_index_redis import RedisEnforcementIndex
from parking.domain.enforcement_index import EnforcementIndex
from tapledger.settings import Settings

# Hex digits of the event store's name in the enforcement index's Redis keys.
INDEX_PREFIX_DIGEST_CHARS = 16
DATABASE_OID_SQL = "SELECT oid FROM pg_database WHERE datname = current_database()"


def make_enforcement_index(settings: Settings, engine: Engine) -> EnforcementIndex:
    """On Redis beside the other hot state, shared by every process; in process memory on
    the embedded default (one serving process, its followers in its threads)."""
    if settings.redis_url:
        prefix = enforcement_index_prefix(settings, engine)
        return RedisEnforcementIndex(settings.redis_url, prefix=prefix)
    return MemoryEnforcementIndex()


def enforcement_index_prefix(settings: Settings, engine: Engine) -> str:
    """The index's keys are named after the event store they copy: a Redis shared by two
    deployments (or test runs) must never show one of them the other's plates. On PostgreSQL
    the database's oid is part of the name, so a database dropped and created again under the
    same name (whose plates start again at version 1) starts an index of its own."""
    if settings.postgres_url is None:
        store = f"sqlite:{settings.sqlite_path.resolve()}"
    else:
        url = make_url(settings.postgres_url)
        with engine.connect() as conn:
            oid = conn.execute(text(DATABASE_OID_SQL)).scalar_one()
        store = f"postgresql:{url.host}:{url.port}/{url.database}/{oid}"
    digest = hashlib.sha256(store.encode()).hexdigest()[:INDEX_PREFIX_DIGEST_CHARS]
    return f"tapledger:enforcement:{digest}:"
