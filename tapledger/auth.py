"""Bearer tokens: random, shown once, stored only as their SHA-256.

Tokens carry 256 random bits, so a fast hash is enough to make a stolen table useless; a slow
password hash would only slow every request down.

A revoked token is kept, marked with when it was revoked, so staff can still see whose it was.
Every process remembers recent principals for a few seconds; a revocation is sent on the
invalidation channel (`ticketing.cards.application.invalidation`) so every process forgets
the token at once, and the memory's short life bounds the lag if the news is lost.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
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
    update,
)
from sqlalchemy.exc import IntegrityError

from ticketing.cards.application.invalidation import (
    TOKEN_IDS_PER_MESSAGE_MAX,
    Invalidation,
    InvalidationChannel,
    MessagesMayBeLost,
    TokensRevoked,
)
from ticketing.shared.access import TOKEN_MAX_CHARS, Principal, Role

TOKEN_PREFIX = "tlk_"  # noqa: S105 (a prefix, not a secret)
TOKEN_SECRET_BYTES = 32
TOKEN_LABEL_MAX_CHARS = 80
TOKEN_ID_CHARS = 16  # a token's id is the first characters of its digest
# An operator scope is a clearing operator id (clearing.domain.operators: at most 64).
TOKEN_OPERATOR_MAX_CHARS = 64
# Tokens listed in one answer, newest first.
TOKENS_LISTED_MAX = 500

metadata = MetaData()

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("token_id", String(16), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("account_id", Uuid, nullable=True),
    Column("device_id", BigInteger, nullable=True),  # validator tokens: the validator's id
    # Operator tokens scoped to one operator: its clearing operator id.
    Column("operator_id", String(TOKEN_OPERATOR_MAX_CHARS), nullable=True),
    Column("label", String(TOKEN_LABEL_MAX_CHARS), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),  # None: still valid
)


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown to its owner once, never stored
    principal: Principal


@dataclass(frozen=True)
class TokenInfo:
    """A token as staff may see it: never the token itself, which is not stored."""

    token_id: str
    role: Role
    account_id: UUID | None
    device_id: int | None
    operator_id: str | None
    label: str
    created_at: datetime
    revoked_at: datetime | None


# A token's principal is remembered this long, so a busy device costs no query per request;
# a revocation reaches every worker at once on the invalidation channel, and within this time
# if that news is lost.
PRINCIPAL_CACHE_TTL_S = 10.0
PRINCIPAL_CACHE_MAX = 50_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Issues and checks API tokens; implements `ticketing.shared.access.Authenticator`."""

    def __init__(
        self,
        engine: Engine,
        *,
        invalidations: InvalidationChannel | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Subscribe `invalidate` to the same `invalidations` that revocations are sent on."""
        self.engine = engine
        self._invalidations = invalidations
        self._monotonic = monotonic
        # Token digest -> (when it was read, the principal); only tokens that exist.
        self._recent: dict[str, tuple[float, Principal]] = {}
        # Counts the forgettings: a principal read while one happened is not remembered, as
        # its token may have been revoked after it was read.
        self._forgotten = 0
        # Tokens set in the settings (the bootstrap admin's), registered again at each start.
        self._configured: set[str] = set()

    def create_tables(self) -> None:
        metadata.create_all(self.engine)
        # A database made before validator tokens existed lacks the device column.
        columns = {c["name"] for c in inspect(self.engine).get_columns(api_tokens.name)}
        if "device_id" not in columns:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE api_tokens ADD COLUMN device_id BIGINT"))
        if "operator_id" not in columns:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "ALTER TABLE api_tokens ADD COLUMN operator_id "
                        f"VARCHAR({TOKEN_OPERATOR_MAX_CHARS})"
                    )
                )
        # Nor, before revocation, the revocation time.
        if "revoked_at" not in columns:
            kind = (
                "TIMESTAMP WITH TIME ZONE" if self.engine.dialect.name != "sqlite" else "DATETIME"
            )
            with self.engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE api_tokens ADD COLUMN revoked_at {kind}"))

    def issue(
        self,
        role: Role,
        *,
        account_id: UUID | None = None,
        device_id: int | None = None,
        operator_id: str | None = None,
        label: str = "",
    ) -> IssuedToken:
        """A new token, shown once. An operator token with `operator_id` is scoped to that
        operator's clearing data (`Principal.operator_id`)."""
        if (role is Role.RIDER) != (account_id is not None):
            raise ValueError("a rider token names exactly one account; other tokens name none")
        if (role is Role.VALIDATOR) != (device_id is not None):
            raise ValueError("a validator token names exactly one device; other tokens name none")
        if operator_id is not None and (
            role is not Role.OPERATOR or not 0 < len(operator_id) <= TOKEN_OPERATOR_MAX_CHARS
        ):
            raise ValueError("only an operator token names an operator, of 1 to 64 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_SECRET_BYTES)
        scope = _Scope(account_id, device_id, operator_id)
        with self.engine.begin() as conn:
            return IssuedToken(token, self._insert(conn, token, role, scope, label))

    def issue_device_token(self, device_id: int, *, label: str) -> str:
        """A validator's token (`ticketing.shared.access.DeviceTokenIssuer`), shown once. The
        device's earlier tokens are revoked in the same transaction: a device holds one token, so a
        replaced device's or a token lost in transit stops working when the new one is made."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_SECRET_BYTES)
        previous = (
            (api_tokens.c.role == Role.VALIDATOR.value)
            & (api_tokens.c.device_id == device_id)
            & api_tokens.c.revoked_at.is_(None)
        )
        with self.engine.begin() as conn:
            revoked = self._revoke_where(conn, previous)
            self._insert(conn, token, Role.VALIDATOR, _Scope(device_id=device_id), label)
        self._announce(revoked)
        return token

    def revoke_device_tokens(self, device_id: int) -> int:
        """Revokes every token of a validator, in every process at once (a revoked device);
        returns how many were still valid."""
        valid = (
            (api_tokens.c.role == Role.VALIDATOR.value)
            & (api_tokens.c.device_id == device_id)
            & api_tokens.c.revoked_at.is_(None)
        )
        with self.engine.begin() as conn:
            revoked = self._revoke_where(conn, valid)
        self._announce(revoked)
        return len(revoked)

    def revoked_device(self, token: str) -> Principal | None:
        """The principal a revoked validator token was issued to, or None for any other token:
        an upload with it is refused and recorded as that device's (`device_refusal`)."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens.c.token_id, api_tokens.c.device_id).where(
                    (api_tokens.c.token_sha256 == _digest(token))
                    & (api_tokens.c.role == Role.VALIDATOR.value)
                    & api_tokens.c.revoked_at.is_not(None)
                )
            ).first()
        if row is None or row.device_id is None:
            return None
        return Principal(token_id=row.token_id, role=Role.VALIDATOR, device_id=row.device_id)

    def revoke(self, token_id: str) -> bool:
        """Revokes a token everywhere; False if it was revoked already. Raises `TokenNotFound`
        for an unknown id and `TokenConfigured` for the token the settings name."""
        if token_id in self._configured:
            raise TokenConfigured(token_id)
        with self.engine.begin() as conn:
            known = conn.execute(
                select(api_tokens.c.token_id).where(api_tokens.c.token_id == token_id)
            ).first()
            if known is None:
                raise TokenNotFound(token_id)
            revoked = self._revoke_where(
                conn, (api_tokens.c.token_id == token_id) & api_tokens.c.revoked_at.is_(None)
            )
        self._announce(revoked)
        return bool(revoked)

    def tokens(self, *, limit: int = TOKENS_LISTED_MAX) -> list[TokenInfo]:
        """Tokens newest first, revoked ones included, without any secret."""
        query = (
            select(api_tokens)
            .order_by(api_tokens.c.created_at.desc(), api_tokens.c.token_id)
            .limit(min(limit, TOKENS_LISTED_MAX))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            TokenInfo(
                token_id=row.token_id,
                role=Role(row.role),
                account_id=row.account_id,
                device_id=row.device_id,
                operator_id=row.operator_id,
                label=row.label,
                created_at=_aware(row.created_at),
                revoked_at=None if row.revoked_at is None else _aware(row.revoked_at),
            )
            for row in rows
        ]

    def invalidate(self, message: Invalidation) -> None:
        """News from the invalidation channel: revoked tokens are forgotten at once; if news
        may have been lost, every remembered principal is."""
        if isinstance(message, TokensRevoked):
            self._forgotten += 1
            forget = set(message.token_ids)
            for digest in [d for d in list(self._recent) if d[:TOKEN_ID_CHARS] in forget]:
                self._recent.pop(digest, None)
        elif isinstance(message, MessagesMayBeLost):
            self._forgotten += 1
            self._recent.clear()

    def _revoke_where(self, conn: Connection, condition: Any) -> list[str]:
        ids = list(conn.execute(select(api_tokens.c.token_id).where(condition)).scalars())
        if ids:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id.in_(ids))
                .values(revoked_at=datetime.now(UTC))
            )
        return ids

    def _announce(self, revoked: list[str]) -> None:
        """Tells every process (this one first) to forget the revoked tokens."""
        if not revoked:
            return
        message = TokensRevoked(tuple(revoked))
        if self._invalidations is None:
            self.invalidate(message)
            return
        for start in range(0, len(revoked), TOKEN_IDS_PER_MESSAGE_MAX):
            part = TokensRevoked(tuple(revoked[start : start + TOKEN_IDS_PER_MESSAGE_MAX]))
            self._invalidations.publish(part)

    def ensure(self, token: str, role: Role, *, label: str) -> Principal:
        """Registers a token chosen by the operator (the bootstrap admin token), once."""
        try:
            with self.engine.begin() as conn:
                principal = self._insert(conn, token, role, _Scope(), label)
        except IntegrityError:
            known = self.authenticate(token)
            if known is None or known.role is not role:
                raise ValueError(
                    f"token {label!r} is registered with another role, or was revoked"
                ) from None
            principal = known
        self._configured.add(principal.token_id)
        return principal

    def authenticate(self, token: str) -> Principal | None:
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        known = self.recent(token)
        if known is not None:
            return known
        digest = _digest(token)
        now = self._monotonic()
        forgotten = self._forgotten
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens).where(
                    (api_tokens.c.token_sha256 == digest) & api_tokens.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        principal = Principal(
            token_id=row.token_id,
            role=Role(row.role),
            account_id=row.account_id,
            device_id=row.device_id,
            operator_id=row.operator_id,
        )
        if forgotten != self._forgotten:
            return principal  # a revocation arrived meanwhile: answer, but do not remember
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

    @staticmethod
    def _insert(conn: Connection, token: str, role: Role, scope: _Scope, label: str) -> Principal:
        digest = _digest(token)
        principal = Principal(
            token_id=digest[:TOKEN_ID_CHARS],
            role=role,
            account_id=scope.account_id,
            device_id=scope.device_id,
            operator_id=scope.operator_id,
        )
        conn.execute(
            insert(api_tokens).values(
                token_sha256=digest,
                token_id=principal.token_id,
                role=role.value,
                account_id=scope.account_id,
                device_id=scope.device_id,
                operator_id=scope.operator_id,
                label=label[:TOKEN_LABEL_MAX_CHARS],
                created_at=datetime.now(UTC),
            )
        )
        return principal


@dataclass(frozen=True)
class _Scope:
    """What a token is limited to: a rider's account, a validator, or an operator."""

    account_id: UUID | None = None
    device_id: int | None = None
    operator_id: str | None = None


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive times; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class TokenNotFound(LookupError):
    code = "token_not_found"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"no token {token_id!r}")


class TokenConfigured(ValueError):
    code = "token_configured"

    def __init__(self, token_id: str) -> None:
        super().__init__(
            f"token {token_id!r} is the admin token of the settings; change the setting "
            "(TAPLEDGER_ADMIN_TOKEN) to replace it"
        )
