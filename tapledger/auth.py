"""Bearer tokens: random, shown once, stored only as their SHA-256.

Tokens carry 256 random bits, so a fast hash is enough to make a stolen table useless; a slow
password hash would only slow every request down.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from ticketing.access import Principal, Role

TOKEN_PREFIX = "tlk_"  # noqa: S105 (a prefix, not a secret)
TOKEN_SECRET_BYTES = 32
TOKEN_MAX_CHARS = 256
TOKEN_LABEL_MAX_CHARS = 80

metadata = MetaData()

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("token_id", String(16), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("account_id", Uuid, nullable=True),
    Column("device_id", BigInteger, nullable=True),  # validator tokens: the validator's id
    Column("label", String(TOKEN_LABEL_MAX_CHARS), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown to its owner once, never stored
    principal: Principal


# A token's principal is remembered this long, so a busy device costs no query per request;
# revoking a token takes effect in every worker within this time.
PRINCIPAL_CACHE_TTL_S = 10.0
PRINCIPAL_CACHE_MAX = 50_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Issues and checks API tokens; implements `ticketing.access.Authenticator`."""

    def __init__(self, engine: Engine, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self._monotonic = monotonic
        # Token digest -> (when it was read, the principal); only tokens that exist.
        self._recent: dict[str, tuple[float, Principal]] = {}

    def create_tables(self) -> None:
        metadata.create_all(self.engine)
        # A database made before validator tokens existed lacks the device column.
        columns = {c["name"] for c in inspect(self.engine).get_columns(api_tokens.name)}
        if "device_id" not in columns:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE api_tokens ADD COLUMN device_id BIGINT"))

    def issue(
        self,
        role: Role,
        *,
        account_id: UUID | None = None,
        device_id: int | None = None,
        label: str = "",
    ) -> IssuedToken:
        if (role is Role.RIDER) != (account_id is not None):
            raise ValueError("a rider token names exactly one account; other tokens name none")
        if (role is Role.VALIDATOR) != (device_id is not None):
            raise ValueError("a validator token names exactly one device; other tokens name none")
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_SECRET_BYTES)
        return IssuedToken(token, self._store(token, role, account_id, label, device_id))

    def issue_device_token(self, device_id: int, *, label: str) -> str:
        """A validator's token (`ticketing.access.DeviceTokenIssuer`), shown once."""
        return self.issue(Role.VALIDATOR, device_id=device_id, label=label).token

    def ensure(self, token: str, role: Role, *, label: str) -> Principal:
        """Registers a token chosen by the operator (the bootstrap admin token), once."""
        try:
            return self._store(token, role, None, label)
        except IntegrityError:
            principal = self.authenticate(token)
            if principal is None or principal.role is not role:
                raise ValueError(f"token {label!r} is registered with another role") from None
            return principal

    def authenticate(self, token: str) -> Principal | None:
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        known = self.recent(token)
        if known is not None:
            return known
        digest = _digest(token)
        now = self._monotonic()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens).where(api_tokens.c.token_sha256 == digest)
            ).first()
        if row is None:
            return None
        principal = Principal(
            token_id=row.token_id,
            role=Role(row.role),
            account_id=row.account_id,
            device_id=row.device_id,
        )
        if len(self._recent) >= PRINCIPAL_CACHE_MAX:
            self._recent.clear()
        self._recent[digest] = (now, principal)
        return principal

    def recent(self, token: str) -> Principal | None:
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        recent = self._recent.get(_digest(token))
        if recent is None or self._monotonic() - recent[0] >= PRINCIPAL_CACHE_TTL_S:
            return None
        return recent[1]

    def _store(
        self,
        token: str,
        role: Role,
        account_id: UUID | None,
        label: str,
        device_id: int | None = None,
    ) -> Principal:
        digest = _digest(token)
        principal = Principal(
            token_id=digest[:16], role=role, account_id=account_id, device_id=device_id
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_tokens).values(
                    token_sha256=digest,
                    token_id=principal.token_id,
                    role=role.value,
                    account_id=account_id,
                    device_id=device_id,
                    label=label[:TOKEN_LABEL_MAX_CHARS],
                    created_at=datetime.now(UTC),
                )
            )
        return principal
