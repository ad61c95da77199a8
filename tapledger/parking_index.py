"""Where the enforcement index lives (`parking.domain.enforcement_index`), chosen from the
settings."""

from __future__ import annotations

import hashlib

from sqlalchemy.engine import make_url

from parking.adapters.enforcement_index_memory import MemoryEnforcementIndex
from parking.adapters.enforcement_index_redis import RedisEnforcementIndex
from parking.domain.enforcement_index import EnforcementIndex
from tapledger.settings import Settings

# Hex digits of the event store's name in the enforcement index's Redis keys.
INDEX_PREFIX_DIGEST_CHARS = 16


def make_enforcement_index(settings: Settings) -> EnforcementIndex:
    """On Redis beside the other hot state, shared by every process; in process memory on
    the embedded default (one serving process, its followers in its threads)."""
    if settings.redis_url:
        return RedisEnforcementIndex(settings.redis_url, prefix=enforcement_index_prefix(settings))
    return MemoryEnforcementIndex()


def enforcement_index_prefix(settings: Settings) -> str:
    """The index's keys are named after the event store they copy: a Redis shared by two
    deployments (or test runs) must never show one of them the other's plates."""
    if settings.postgres_url is None:
        store = f"sqlite:{settings.sqlite_path.resolve()}"
    else:
        url = make_url(settings.postgres_url)
        store = f"postgresql:{url.host}:{url.port}/{url.database}"
    digest = hashlib.sha256(store.encode()).hexdigest()[:INDEX_PREFIX_DIGEST_CHARS]
    return f"tapledger:enforcement:{digest}:"
