"""The one settings class, read from `TAPLEDGER_*` environment variables (and `.env`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from ticketing.accounts.domain.limits import OVERDRAFT_MAX_VND
from ticketing.fares.loader import HANOI_FEED_DIR
from ticketing.shared.adapters.event_recorders import EVENT_RECORDER_TOPIC

# Usable only in local mode, so a laptop demo needs no set-up; refused everywhere else.
LOCAL_ADMIN_TOKEN = "tlk_local_admin_do_not_use_in_production"  # noqa: S105
# The local key-encryption key for issuer private keys: fine for a laptop, refused elsewhere.
LOCAL_KEY_ENCRYPTION_KEY = base64.b64encode(
    hashlib.sha256(b"tapledger local only").digest()
).decode()
SECRET_MIN_CHARS = 32
KEK_BYTES = 32
SQLITE_LOCK_TIMEOUT_S = 15
# PostgreSQL connections. Each process holds one pool per event-store application and one for
# the read models; a pool keeps POSTGRES_POOL_MIN open, opens up to POSTGRES_POOL_MAX under load
# and closes those again when idle. Clearing's store, used by one run a day, keeps none open and
# opens at most CLEARING_POOL_MAX. At their busiest, two API workers and the followers process
# stay under PostgreSQL's default max_connections (100): 3 x (5 x 5 + 5 + 2) = 96; idle, a
# process holds about six. Waiting for a pooled connection beats a refused one.
EVENT_STORE_APPLICATIONS = 5  # the ledger, cards, taps, journeys and parking
POSTGRES_POOL_MIN = 1
POSTGRES_POOL_MAX = 5
CLEARING_POOL_MAX = 2
POSTGRES_MAX_CONNECTIONS = 100  # PostgreSQL's default
# The read models' pool keeps this many of its POSTGRES_POOL_MAX once opened (SQLAlchemy closes
# the rest as they come back), so a burst of reads does not connect anew for each.
READ_MODEL_POOL_KEPT = 3


# A follower applies thousands of notifications a second: 10,000 behind is seconds of catching
# up after a burst, more is a follower stuck or far too slow. The bound is at most a day of taps.
HEALTH_LAG_MAX_DEFAULT = 10_000
HEALTH_LAG_MAX_LIMIT = 100_000_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAPLEDGER_", env_file=".env", extra="ignore")

    environment: Literal["local", "production"] = "local"
    data_dir: Path = Path("var")
    database_url: str | None = Field(default=None, description="postgresql://user:pw@host/db")
    redis_url: str | None = Field(default=None, description="redis://host:6379/0")
    admin_token: SecretStr | None = None
    key_encryption_key: SecretStr | None = Field(
        default=None, description="base64 of 32 random bytes; seals issuer private keys"
    )
    virtual_cards_active_max: int = Field(default=1, ge=1, le=5)
    sam_key_file: Path | None = Field(
        default=None, description="TLC1 master keys (CARD.md key file) for the software SAM"
    )
    sam_key_file_sealed: bool | None = Field(
        default=None,
        description="unset: the key file's form is read from it; true: it must be sealed with "
        "the key-encryption key; false: it is plain (local mode only)",
    )
    overdraft_default_vnd: int = Field(default=0, ge=0, le=OVERDRAFT_MAX_VND)
    fare_feed_dir: Path = Field(
        default=HANOI_FEED_DIR,
        description="a GTFS-Fares v2 feed directory; checked whole when a process starts",
    )
    rate_limit_requests: int = Field(default=1200, ge=1, le=1_000_000)
    rate_limit_window_s: int = Field(default=60, ge=1, le=3600)
    auth_failures_per_window: int = Field(
        default=60,
        ge=1,
        le=1_000_000,
        description="failed authentications one client address may make per rate-limit window",
    )
    follow_in_process: bool = True
    health_lag_max: int = Field(
        default=HEALTH_LAG_MAX_DEFAULT,
        ge=0,
        le=HEALTH_LAG_MAX_LIMIT,
        description="notifications a follower may trail the log by before /healthz is degraded",
    )
    access_log: bool = Field(
        default=False, description="a line per request (off: a gate's taps would flood it)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.environment == "local":
            return self
        token = self.admin_token.get_secret_value() if self.admin_token else ""
        if token == LOCAL_ADMIN_TOKEN or len(token) < SECRET_MIN_CHARS:
            raise ValueError(
                f"TAPLEDGER_ADMIN_TOKEN must be set to a secret of at least {SECRET_MIN_CHARS} "
                "characters outside local mode"
            )
        kek = self.key_encryption_key.get_secret_value() if self.key_encryption_key else ""
        if kek in ("", LOCAL_KEY_ENCRYPTION_KEY) or len(_b64(kek)) != KEK_BYTES:
            raise ValueError(
                f"TAPLEDGER_KEY_ENCRYPTION_KEY must be the base64 of {KEK_BYTES} random bytes "
                "outside local mode"
            )
        if self.database_url is None:
            raise ValueError("TAPLEDGER_DATABASE_URL is required outside local mode")
        if self.sam_key_file is not None and self.sam_key_file_sealed is False:
            raise ValueError(
                "a plain SAM key file is for local mode only: seal it (`tapledger card "
                "seal-keys`) and unset TAPLEDGER_SAM_KEY_FILE_SEALED"
            )
        return self

    @property
    def key_encryption_key_bytes(self) -> bytes:
        kek = self.key_encryption_key.get_secret_value() if self.key_encryption_key else ""
        return _b64(kek or LOCAL_KEY_ENCRYPTION_KEY)

    @property
    def bootstrap_admin_token(self) -> str:
        return self.admin_token.get_secret_value() if self.admin_token else LOCAL_ADMIN_TOKEN

    @property
    def postgres_url(self) -> str | None:
        """The database URL when it names PostgreSQL; None means the embedded SQLite file."""
        url = self.database_url
        return url if url is not None and url.startswith("postgres") else None

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "tapledger.db"

    def event_store_env(self, *, create_tables: bool = True) -> dict[str, str]:
        """The `eventsourcing` environment for the configured store."""
        env = {"CREATE_TABLE": "y" if create_tables else "n"}
        if self.postgres_url is None:
            return env | {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
            }
        url = make_url(self.postgres_url)
        return env | {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": EVENT_RECORDER_TOPIC,
            "POSTGRES_DBNAME": url.database or "tapledger",
            "POSTGRES_HOST": url.host or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_POOL_SIZE": str(POSTGRES_POOL_MIN),
            "POSTGRES_MAX_OVERFLOW": str(POSTGRES_POOL_MAX - POSTGRES_POOL_MIN),
        }

    def read_model_url(self) -> str:
        """The SQLAlchemy URL of the read models: the same database as the events."""
        if self.postgres_url is None:
            return f"sqlite:///{self.sqlite_path}"
        return (
            make_url(self.postgres_url)
            .set(drivername="postgresql+psycopg")
            .render_as_string(hide_password=False)
        )


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""
