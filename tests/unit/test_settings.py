"""Settings: the embedded default needs nothing; outside local mode no usable default secret."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hardware.sam import seal_key_file
from tapledger.sam_key_file import make_sam
from tapledger.settings import (
    CLEARING_POOL_MAX,
    EVENT_STORE_APPLICATIONS,
    LOCAL_ADMIN_TOKEN,
    LOCAL_KEY_ENCRYPTION_KEY,
    POSTGRES_MAX_CONNECTIONS,
    POSTGRES_POOL_MAX,
    Settings,
)
from tests.builders.settings import ExplicitSettings
from tests.vectors import CARD_VECTORS_PATH

GOOD_TOKEN = "x" * 40
GOOD_KEK = base64.b64encode(bytes(range(32))).decode()
PG_URL = "postgresql://app:secret@db.internal:6543/fares"


def settings(**values: Any) -> Settings:
    return ExplicitSettings(**values)


def test_local_mode_runs_on_sqlite_under_the_data_dir_with_the_local_token(tmp_path: Path) -> None:
    s = settings(data_dir=tmp_path)
    env = s.event_store_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(tmp_path / "tapledger.db")
    assert s.read_model_url() == f"sqlite:///{tmp_path / 'tapledger.db'}"
    assert s.bootstrap_admin_token == LOCAL_ADMIN_TOKEN


def test_a_postgres_url_puts_events_and_read_models_on_postgres() -> None:
    s = settings(database_url=PG_URL)
    env = s.event_store_env(create_tables=False)
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "db.internal",
        "6543",
        "fares",
    )
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("app", "secret")
    assert env["CREATE_TABLE"] == "n"
    # Bounded pools keep two workers and the followers under PostgreSQL's default connections.
    per_pool = int(env["POSTGRES_POOL_SIZE"]) + int(env["POSTGRES_MAX_OVERFLOW"])
    assert per_pool == POSTGRES_POOL_MAX
    busiest_process = (EVENT_STORE_APPLICATIONS + 1) * per_pool + CLEARING_POOL_MAX
    assert 3 * busiest_process <= POSTGRES_MAX_CONNECTIONS
    assert s.read_model_url() == "postgresql+psycopg://app:secret@db.internal:6543/fares"


@pytest.mark.parametrize(
    "admin_token", [None, LOCAL_ADMIN_TOKEN, "short-token"], ids=["unset", "local", "short"]
)
def test_production_refuses_a_missing_default_or_weak_admin_token(admin_token: str | None) -> None:
    with pytest.raises(ValidationError, match="TAPLEDGER_ADMIN_TOKEN"):
        settings(environment="production", database_url=PG_URL, admin_token=admin_token)


def test_production_refuses_the_embedded_store() -> None:
    with pytest.raises(ValidationError, match="TAPLEDGER_DATABASE_URL"):
        settings(environment="production", admin_token=GOOD_TOKEN, key_encryption_key=GOOD_KEK)


@pytest.mark.parametrize(
    "kek",
    [None, LOCAL_KEY_ENCRYPTION_KEY, "not base64!", base64.b64encode(b"short").decode()],
    ids=["unset", "local", "garbage", "short"],
)
def test_production_refuses_a_missing_local_or_malformed_key_encryption_key(
    kek: str | None,
) -> None:
    with pytest.raises(ValidationError, match="TAPLEDGER_KEY_ENCRYPTION_KEY"):
        settings(
            environment="production",
            admin_token=GOOD_TOKEN,
            database_url=PG_URL,
            key_encryption_key=kek,
        )


def test_production_accepts_strong_secrets_and_a_database() -> None:
    s = settings(
        environment="production",
        admin_token=GOOD_TOKEN,
        database_url=PG_URL,
        key_encryption_key=GOOD_KEK,
    )
    assert s.bootstrap_admin_token == GOOD_TOKEN
    assert s.key_encryption_key_bytes == bytes(range(32))


@pytest.mark.parametrize("overdraft_vnd", [-1, 100_001])
def test_default_overdraft_is_bounded(overdraft_vnd: int) -> None:
    with pytest.raises(ValidationError):
        settings(overdraft_default_vnd=overdraft_vnd)


def test_the_sam_loads_its_master_keys_from_a_sealed_key_file(tmp_path: Path) -> None:
    keys = json.loads(CARD_VECTORS_PATH.read_text())["master_keys"]
    s = settings(data_dir=tmp_path, sam_key_file=tmp_path / "sam.keys")
    sealed = seal_key_file(json.dumps(keys).encode(), kek=s.key_encryption_key_bytes)
    (tmp_path / "sam.keys").write_bytes(sealed)
    sam = make_sam(s)
    assert sam is not None
    assert "levels=[1, 2, 3]" in repr(sam)
    assert keys["1"] not in repr(sam)
    assert make_sam(settings(data_dir=tmp_path)) is None


def test_production_refuses_a_plain_sam_key_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="plain SAM key file"):
        settings(
            environment="production",
            admin_token=GOOD_TOKEN,
            database_url=PG_URL,
            key_encryption_key=GOOD_KEK,
            sam_key_file=tmp_path / "sam.json",
            sam_key_file_sealed=False,
        )
