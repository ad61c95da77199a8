"""The rider's phone as a library: a device key, a TL1 certificate for it, and fresh codes.

The phone holds one P-256 key that never leaves it (`DeviceKeyStore`), asks the backend once to
certify it (`Wallet.register`), renews the certificate before it runs out, and signs a new code
whenever one is shown (`Wallet.code`). Codes are made offline: only registering, renewing and the
balance need the network, through the small `RiderPort` (`RiderApi` speaks it over HTTP).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Annotated, Protocol, TypeVar
from uuid import UUID

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
)

from ticketing.tl1.device import CertificateKeyMismatch, next_counter, sign_code
from ticketing.tl1.issuing import compress_p256
from ticketing.tl1.layout import CERTIFICATE_BYTES, DEVICE_KEY_BYTES, DEVICE_KEY_OFFSET, U16_MAX

# A certificate lives 72 h; renewing with half a day left leaves a rider who opens the app once
# a day a working code even if the network is down at the moment of renewal.
RENEW_BEFORE_S = 12 * 3600
KEY_FILE_NAME = "device-key.pem"
STATE_FILE_NAME = "wallet.json"
# Owner read and write only: the key file holds the device's private key, the state file the
# rider's API token.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
TEMP_NAME_RANDOM_BYTES = 8
# A state file is a few hundred bytes; anything much larger is not ours and is not parsed.
STATE_FILE_MAX_BYTES = 64 * 1024
API_URL_MAX_CHARS = 2048
TOKEN_MAX_CHARS = 512
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 15.0
# Problem details are for people; an unexpected HTML error page is cut, not shown whole.
ERROR_DETAIL_MAX_CHARS = 500
STATEMENT_LINES_MAX = 50
CARD_STATUS_ACTIVE = "active"
SERVER_TIME_TRUNCATION_S = 0.5

Reply = TypeVar("Reply", bound=BaseModel)


# Replies of the API, as far as the phone reads them (unknown fields are ignored).


class PrincipalReply(BaseModel):
    token_id: str
    role: str
    account_id: UUID | None


class CardReply(BaseModel):
    card_id: UUID
    account_id: UUID
    status: str
    issuer_key_id: int
    certificate: str
    not_before: int
    not_after: int
    server_time: int

    @field_validator("certificate")
    @classmethod
    def _is_a_certificate(cls, value: str) -> str:
        if len(_b64decode(value)) != CERTIFICATE_BYTES:
            raise ValueError(f"a certificate is the base64 of {CERTIFICATE_BYTES} bytes")
        return value


class AccountReply(BaseModel):
    id: UUID
    status: str
    posted_vnd: int
    pending_vnd: int
    available_vnd: int


class StatementLineReply(BaseModel):
    seq: int
    at: datetime
    kind: str
    reference: str
    description: str
    posted_delta_vnd: int
    available_after_vnd: int


class StatementReply(BaseModel):
    lines: list[StatementLineReply]


class RiderPort(Protocol):
    """What the phone asks of the backend; `RiderApi` over HTTP, a fake in the tests."""

    def me(self) -> PrincipalReply: ...

    def issue_virtual_card(self, account_id: UUID, device_key: bytes) -> CardReply: ...

    def get_virtual_card(self, card_id: UUID) -> CardReply: ...

    def renew_virtual_card(self, card_id: UUID) -> CardReply: ...

    def account(self, account_id: UUID) -> AccountReply: ...

    def statement(self, account_id: UUID, limit: int) -> list[StatementLineReply]: ...


class RiderApi:
    """The backend's HTTP API with a rider token; every failure is a `RiderApiError`."""

    def __init__(
        self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport,
        )

    def __enter__(self) -> RiderApi:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def me(self) -> PrincipalReply:
        return self._call("GET", "/v1/me", PrincipalReply)

    def issue_virtual_card(self, account_id: UUID, device_key: bytes) -> CardReply:
        body = {"device_key": base64.b64encode(device_key).decode("ascii")}
        return self._call("POST", f"/v1/accounts/{account_id}/virtual-cards", CardReply, body)

    def get_virtual_card(self, card_id: UUID) -> CardReply:
        return self._call("GET", f"/v1/virtual-cards/{card_id}", CardReply)

    def renew_virtual_card(self, card_id: UUID) -> CardReply:
        return self._call("POST", f"/v1/virtual-cards/{card_id}/renew", CardReply)

    def account(self, account_id: UUID) -> AccountReply:
        return self._call("GET", f"/v1/accounts/{account_id}", AccountReply)

    def statement(self, account_id: UUID, limit: int) -> list[StatementLineReply]:
        path = f"/v1/accounts/{account_id}/statement"
        return self._call("GET", path, StatementReply, params={"limit": limit}).lines

    def _call(
        self,
        method: str,
        path: str,
        reply: type[Reply],
        body: object | None = None,
        *,
        params: dict[str, int] | None = None,
    ) -> Reply:
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.TimeoutException as error:
            raise RiderApiError("timeout", f"no answer from the API: {error!r}", None) from None
        except httpx.TransportError as error:
            raise RiderApiError("unreachable", f"cannot reach the API: {error!r}", None) from None
        if response.is_error:
            raise RiderApiError.from_response(response)
        try:
            return reply.model_validate_json(response.content)
        except ValidationError as error:
            detail = f"{method} {path} answered an unexpected body: {error.error_count()} errors"
            raise RiderApiError("bad_response", detail, response.status_code) from None


class WalletState(BaseModel):
    """What the phone remembers between runs; never the private key, which has its own file."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_url: Annotated[str, Field(max_length=API_URL_MAX_CHARS)] = ""
    token: Annotated[SecretStr, Field(max_length=TOKEN_MAX_CHARS)] = SecretStr("")
    account_id: UUID | None = None
    card_id: UUID | None = None
    certificate: str | None = None
    not_after: int | None = None
    # server time minus this phone's time when the certificate arrived, in whole seconds.
    clock_offset_s: int = 0
    # The counter of the next code; it only moves forward, so no two codes share one.
    counter: Annotated[int, Field(ge=0, le=U16_MAX)] = 0

    @field_serializer("token", when_used="json")
    def _token_in_file(self, token: SecretStr) -> str:
        # The file is the one place the token is written out (mode 0600); reprs stay masked.
        return token.get_secret_value()


class DeviceKeyStore:
    """The device's P-256 key (PEM, mode 0600) and the wallet state beside it, in one directory.

    The key is made on first use and loaded afterwards; nothing here prints or logs it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key_path = path / KEY_FILE_NAME
        self.state_path = path / STATE_FILE_NAME
        self._key: ec.EllipticCurvePrivateKey | None = None

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            self._key = self._load_key() if self.key_path.exists() else self._create_key()
        return self._key

    def public_key_sec1(self) -> bytes:
        """The 33-byte compressed public key the certificate carries."""
        return compress_p256(self.private_key().public_key())

    def load_state(self) -> WalletState:
        if not self.state_path.exists():
            return WalletState()
        if self.state_path.stat().st_size > STATE_FILE_MAX_BYTES:
            raise WalletError("state_unreadable", f"{self.state_path} is too large")
        try:
            return WalletState.model_validate_json(self.state_path.read_bytes())
        except ValidationError:
            raise WalletError(
                "state_unreadable", f"{self.state_path} is not a wallet state file"
            ) from None

    def save_state(self, state: WalletState) -> None:
        _write_private(self.state_path, state.model_dump_json(indent=2).encode())

    def _create_key(self) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.key_path, pem)
        return key

    def _load_key(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        # TypeError: the file holds an encrypted key, which this store never writes.
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise WalletError("device_key_unreadable", f"{self.key_path} is not a key") from None
        if not (
            isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
        ):
            raise WalletError("device_key_unreadable", f"{self.key_path} is not a P-256 key")
        return key


def _write_private(path: Path, data: bytes) -> None:
    """Writes `data` to `path` with mode 0600, all or nothing: readers see the old or new file."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(TEMP_NAME_RANDOM_BYTES)}.tmp")
    # The mode is given at creation, so the secret is never readable by others, not even briefly.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class WalletStatus:
    account: AccountReply
    lines: list[StatementLineReply]


class Wallet:
    """The use cases of the rider's phone over a key store and the backend port."""

    def __init__(
        self, store: DeviceKeyStore, client: RiderPort, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.state = store.load_state()

    @property
    def registered(self) -> bool:
        """A certificate for this device's key is at hand (it may have expired)."""
        certificate = self.state.certificate
        if certificate is None:
            return False
        certified_key = _b64decode(certificate)[
            DEVICE_KEY_OFFSET : DEVICE_KEY_OFFSET + DEVICE_KEY_BYTES
        ]
        return certified_key == self.store.public_key_sec1()

    def register(self) -> bool:
        """Gets a certificate for this device's key; False when one was already at hand."""
        if self.registered:
            return False
        card_id = self.state.card_id
        if card_id is not None and self.state.certificate is None:
            # The card is known but its certificate was lost: fetch it rather than issue a new
            # card, which would retire this one.
            sent_at = self.clock()
            card = self.client.get_virtual_card(card_id)
            if card.status == CARD_STATUS_ACTIVE:
                self._keep(card, sent_at)
                if self.registered:
                    return True
        principal = self.client.me()
        if principal.account_id is None:
            raise WalletError("not_a_rider_token", "the token does not belong to a rider account")
        sent_at = self.clock()
        card = self.client.issue_virtual_card(principal.account_id, self.store.public_key_sec1())
        self._keep(card, sent_at)
        return True

    def seconds_left(self) -> int:
        """Seconds until the certificate expires, by the server's clock; negative once it has."""
        not_after = self.state.not_after
        if not_after is None or not self.registered:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        return not_after - self.server_now()

    def renew_if_due(self, renew_before_s: int = RENEW_BEFORE_S) -> bool:
        """Renews the certificate when it has `renew_before_s` or less to live; True if renewed."""
        if self.seconds_left() > renew_before_s:
            return False
        card_id = self.state.card_id
        if card_id is None:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        sent_at = self.clock()
        self._keep(self.client.renew_virtual_card(card_id), sent_at)
        return True

    def code(self) -> str:
        """A fresh `TL1:` text, signed now with the device key; needs no network."""
        certificate = self.state.certificate
        if certificate is None:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        counter = self.state.counter
        # Saved before the code exists, so a crash cannot lead to a second code with this counter.
        self.state.counter = next_counter(counter)
        self.store.save_state(self.state)
        try:
            return sign_code(
                certificate=_b64decode(certificate),
                device_private_key=self.store.private_key(),
                generated_at=self.server_now(),
                counter=counter,
            )
        except CertificateKeyMismatch:
            raise WalletError(
                "certificate_for_another_key",
                "the certificate names another device key; run `tapledger rider register` again",
            ) from None

    def status(self, lines: int) -> WalletStatus:
        """The account's balances and its latest `lines` statement lines, newest first."""
        if not 1 <= lines <= STATEMENT_LINES_MAX:
            raise WalletError("bad_line_count", f"lines must be 1..{STATEMENT_LINES_MAX}")
        account_id = self.state.account_id
        if account_id is None:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        return WalletStatus(
            self.client.account(account_id), self.client.statement(account_id, lines)
        )

    def forget_card(self) -> None:
        """Drops the card (for a token of another account); the key and counter stay."""
        self.state.account_id = None
        self.state.card_id = None
        self.state.certificate = None
        self.state.not_after = None
        self.store.save_state(self.state)

    def server_now(self) -> int:
        """This phone's clock corrected by the offset learned from the server, unix seconds."""
        return int(self.clock() + self.state.clock_offset_s)

    def _keep(self, card: CardReply, sent_at: float) -> None:
        # The server read its clock between our request and its reply; the midpoint halves the
        # error a slow network adds to the offset.
        local_at = (sent_at + self.clock()) / 2
        # `server_time` is cut to whole seconds, so the server's clock was on average half a
        # second past it; without this, a phone on the server's own clock would run a second slow
        # half of the time.
        server_at = card.server_time + SERVER_TIME_TRUNCATION_S
        self.state.account_id = card.account_id
        self.state.card_id = card.card_id
        self.state.certificate = card.certificate
        self.state.not_after = card.not_after
        self.state.clock_offset_s = round(server_at - local_at)
        self.store.save_state(self.state)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


class WalletError(Exception):
    """An operating condition the rider can act on, with a stable `code` for messages."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class RiderApiError(Exception):
    """The API refused or could not be reached; `status` is None when nothing answered."""

    def __init__(self, code: str, detail: str, status: int | None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status

    @classmethod
    def from_response(cls, response: httpx.Response) -> RiderApiError:
        """From a problem+json body; a body without a `code` still gives a typed error."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            detail = str(body.get("detail", ""))[:ERROR_DETAIL_MAX_CHARS]
            return cls(body["code"], detail, status)
        return cls("http_error", f"HTTP {status}: {response.text[:ERROR_DETAIL_MAX_CHARS]}", status)
