"""A one-time enrolment code: staff make one for a registered validator, and the device exchanges
it once for its own token, so nobody copies a secret by hand.

The code is shown once and stored only as its SHA-256; the aggregate's id comes from that hash,
so the exchange finds the code by what the device typed. 16 characters of a 32-letter alphabet
carry 80 random bits: guessing one among the codes alive in a day is hopeless even without a
rate limit, so a fast hash is enough (as for tokens, `tapledger.auth`). The stored hash is then
compared with `hmac.compare_digest`, so the comparison itself takes the same time whatever the
input. A code is refused when unknown, used already, expired, or made before the validator's
latest revocation (a code handed out for the stolen device must not enrol it again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.ids import url_uuid5

TOPIC_PREFIX = "ticketing.EnrolmentCode"
# Crockford's base32: no I, L, O or U, so a code read aloud or off a label is not misread.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_CHARS = 16  # 16 x 5 bits = 80 random bits
CODE_GROUP_CHARS = 4  # shown as XXXX-XXXX-XXXX-XXXX
# What a device may send: the code with its dashes and a few spaces around.
CODE_INPUT_MAX_CHARS = 32
# How long a code may wait to be used; a label printed for a device installed tomorrow fits.
ENROLMENT_CODE_TTL_S = 24 * 3600


def new_code() -> str:
    """A fresh code, grouped for reading; shown to staff once."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i : i + CODE_GROUP_CHARS] for i in range(0, CODE_CHARS, CODE_GROUP_CHARS))


def code_digest(code: str) -> str:
    """The SHA-256 of a code as typed: case, dashes and spaces do not matter."""
    canonical = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(canonical.encode()).hexdigest()


class EnrolmentCode(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Issued(Created):
        TOPIC = f"{TOPIC_PREFIX}.Issued"
        validator_id: int
        code_sha256: str
        expires_at: datetime
        at: datetime

    class Used(Event):
        TOPIC = f"{TOPIC_PREFIX}.Used"
        epoch: int
        at: datetime

    @staticmethod
    def create_id(code_sha256: str) -> UUID:
        return url_uuid5(f"/tapledger/enrolment-codes/{code_sha256}")

    @event(Issued)
    def __init__(
        self, validator_id: int, code_sha256: str, expires_at: datetime, at: datetime
    ) -> None:
        self.validator_id = validator_id
        self.code_sha256 = code_sha256
        self.expires_at = expires_at
        self.issued_at = at
        self.used_at: datetime | None = None

    @classmethod
    def issue(cls, *, validator_id: int, code: str, at: datetime) -> EnrolmentCode:
        return cls(
            validator_id=validator_id,
            code_sha256=code_digest(code),
            expires_at=at + timedelta(seconds=ENROLMENT_CODE_TTL_S),
            at=at,
        )

    def check_usable(self, code: str, *, at: datetime, revoked_at: datetime | None) -> None:
        """Raises the reason this code cannot enrol its validator now, if any."""
        if not hmac.compare_digest(self.code_sha256, code_digest(code)):
            raise EnrolmentCodeUnknown()
        if self.used_at is not None:
            raise EnrolmentCodeUsed(self.validator_id)
        if at >= self.expires_at:
            raise EnrolmentCodeExpired(self.validator_id)
        if revoked_at is not None and self.issued_at <= revoked_at:
            raise EnrolmentCodeRevoked(self.validator_id)

    def use(self, code: str, *, epoch: int, at: datetime, revoked_at: datetime | None) -> None:
        self.check_usable(code, at=at, revoked_at=revoked_at)
        self._used(epoch=epoch, at=at)

    @event(Used)
    def _used(self, epoch: int, at: datetime) -> None:
        self.used_at = at


class EnrolmentRefused(DomainError):
    """A code that cannot enrol: each subclass's `code` is the recorded reason."""

    code = "enrolment_refused"

    def __init__(self, message: str, validator_id: int = 0) -> None:
        super().__init__(message)
        self.validator_id = validator_id  # 0: the code names no known validator


class EnrolmentCodeUnknown(EnrolmentRefused):
    code = "enrolment_code_unknown"

    def __init__(self) -> None:
        super().__init__("no such enrolment code")


class EnrolmentCodeUsed(EnrolmentRefused):
    code = "enrolment_code_used"

    def __init__(self, validator_id: int) -> None:
        super().__init__(
            f"this enrolment code for validator {validator_id} was used already", validator_id
        )


class EnrolmentCodeExpired(EnrolmentRefused):
    code = "enrolment_code_expired"

    def __init__(self, validator_id: int) -> None:
        super().__init__(
            f"this enrolment code for validator {validator_id} expired; ask staff for a new one",
            validator_id,
        )


class EnrolmentCodeRevoked(EnrolmentRefused):
    code = "enrolment_code_revoked"

    def __init__(self, validator_id: int) -> None:
        super().__init__(
            f"validator {validator_id} was revoked after this code was made; ask for a new one",
            validator_id,
        )
