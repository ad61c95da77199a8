"""Who may do what with transport accounts. The product authenticates; this module authorises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from uuid import UUID


class Role(StrEnum):
    ADMIN = "admin"  # runs the scheme: tokens, blocking, closing
    OPERATOR = "operator"  # transit and parking back ends, payment callbacks
    RIDER = "rider"  # one rider, one account, read-only
    VALIDATOR = "validator"  # one device: uploads its own taps, nothing else


# The longest bearer token the backend accepts. Here, not in the product, because a device reads
# its token from a file and refuses one the backend would refuse too.
TOKEN_MAX_CHARS = 256

# Where the HTTP layer leaves the principal it authenticated, in the request's state, so that a
# route reads it there instead of authenticating the request a second time.
PRINCIPAL_STATE_KEY = "principal"


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    account_id: UUID | None = None
    device_id: int | None = None  # a validator's id, for validator tokens only
    # An operator token scoped to one operator of the scheme (clearing's operator id): that
    # operator's window onto its own clearing data, and nothing else (`require_role`).
    operator_id: str | None = None

    @property
    def scoped(self) -> bool:
        return self.operator_id is not None


class Authenticator(Protocol):
    """Turns a bearer token into the principal it was issued to, or None."""

    def authenticate(self, token: str) -> Principal | None: ...

    def recent(self, token: str) -> Principal | None:
        """The principal if the token was authenticated a moment ago, without any I/O."""
        ...


class DeviceTokenIssuer(Protocol):
    """Issues a validator's bearer token; the token is returned once and never stored, and
    the device's earlier tokens stop working: a device holds one token at a time."""

    def issue_device_token(self, device_id: int, *, label: str) -> str: ...

    def revoke_device_tokens(self, device_id: int) -> int:
        """Revokes every token of the device in every process; how many were valid."""
        ...


class AccessError(Exception):
    code = "access_error"


class NotAuthenticated(AccessError):
    code = "not_authenticated"

    def __init__(self) -> None:
        super().__init__("a valid bearer token is required")


class Forbidden(AccessError):
    code = "forbidden"

    def __init__(self, role: Role) -> None:
        super().__init__(f"the {role} role may not do this")


def require_role(principal: Principal, *roles: Role) -> None:
    """Refuses a principal of another role. A token scoped to one operator passes no role
    check: it is a finance team's window onto its own clearing data, not a back end of the
    scheme, and only the routes that check its scope themselves (clearing's) accept it."""
    if principal.scoped:
        raise OutOfScope()
    if principal.role not in roles:
        raise Forbidden(principal.role)


def is_staff(principal: Principal) -> bool:
    """Scheme staff or an operator's back end, acting for the whole scheme."""
    return principal.role in (Role.ADMIN, Role.OPERATOR) and not principal.scoped


class OutOfScope(Forbidden):
    """A token scoped to one operator used where its scope does not reach."""

    code = "out_of_scope"

    def __init__(self, detail: str = "") -> None:
        AccessError.__init__(
            self, detail or "a token scoped to one operator may read only that operator's clearing"
        )


class NotThisDevice(Forbidden):
    def __init__(self, validator_id: int) -> None:
        AccessError.__init__(
            self, f"this token may upload taps only as its own validator, not as {validator_id}"
        )


def check_can_read_trust(principal: Principal) -> None:
    """The deny list is for staff and for the validators that refuse its cards, never riders."""
    require_role(principal, Role.ADMIN, Role.OPERATOR, Role.VALIDATOR)


def check_can_read_validator(principal: Principal, validator_id: int) -> None:
    """Staff read any validator's configuration; a device reads only its own."""
    if is_staff(principal):
        return
    require_role(principal, Role.VALIDATOR)
    if principal.device_id != validator_id:
        raise NotThisValidator(validator_id)


class NotThisValidator(Forbidden):
    def __init__(self, validator_id: int) -> None:
        AccessError.__init__(
            self, f"this token may read only its own validator's configuration, not {validator_id}"
        )


def check_can_upload_taps(principal: Principal, validator_id: int) -> None:
    """Only a validator's own token uploads its taps: a device cannot speak for another."""
    require_role(principal, Role.VALIDATOR)
    if principal.device_id != validator_id:
        raise NotThisDevice(validator_id)
