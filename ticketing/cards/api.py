"""HTTP routes for virtual cards, the issuer key set and the deny list."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from functools import partial
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ticketing.accounts.domain import limits
from ticketing.accounts.domain.readers import check_can_read
from ticketing.accounts.schemas import TRANSFER_ID_REGEX
from ticketing.cards.adapters.card_views import CardViews
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.deny_list_watch import DENY_WAIT_S_MAX, DenyListWatch
from ticketing.cards.application.smart_cards import NETWORK_ID_DEFAULT, SmartCards
from ticketing.cards.domain import issuer_keys, smart_card, virtual_card
from ticketing.cards.domain.issuer_keys import ISSUER_KEY_OVERLAP_MAX_S, ISSUER_KEY_OVERLAP_MIN_S
from ticketing.cards.domain.smart_card import SERIAL_HEX_CHARS, SmartCard
from ticketing.cards.domain.virtual_card import InvalidDeviceKey, VirtualCard
from ticketing.shared.access import Principal, Role, check_can_read_trust
from ticketing.shared.error_status import ErrorStatus
from ticketing.shared.http_cache import conditional
from ticketing.shared.principals import CurrentAdmin, CurrentPrincipal, CurrentStaff
from ticketing.shared.schemas import DENY_LIST_VERSION_MAX, ISSUER_KEY_ID_MAX, PrintableText

DEVICE_KEY_B64_MAX_CHARS = 100  # a 65-byte uncompressed point is 88 base64 characters
REASON_MAX_CHARS = 140


def _cards(request: Request) -> CardIssuer:
    cards: CardIssuer = request.app.state.cards
    return cards


def _views(request: Request) -> CardViews:
    views: CardViews = request.app.state.card_views
    return views


CardsDep = Annotated[CardIssuer, Depends(_cards)]
CardViewsDep = Annotated[CardViews, Depends(_views)]


class VirtualCardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_key: Annotated[str, Field(min_length=1, max_length=DEVICE_KEY_B64_MAX_CHARS)] = Field(
        description="the phone's P-256 public key, SEC1 (33 or 65 bytes), base64"
    )
    concession_proof_checked: bool = Field(
        default=False, description="staff only: the rider's concession papers were checked"
    )


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[PrintableText, Field(min_length=1, max_length=REASON_MAX_CHARS)]


class VirtualCardPublic(BaseModel):
    card_id: UUID
    account_id: UUID
    status: str
    issuer_key_id: int
    certificate: str = Field(description="the 126-byte TL1 certificate, base64")
    certificate_hex: str = Field(
        description="the same certificate in hex, as the issuer keys' `public_key` is given"
    )
    not_before: int
    not_after: int
    server_time: int = Field(description="unix seconds, for the phone to correct its clock")

    @classmethod
    def of(cls, card: VirtualCard, now: datetime) -> VirtualCardPublic:
        return cls(
            card_id=card.id,
            account_id=card.account_id,
            status=card.status.value,
            issuer_key_id=card.issuer_key_id,
            certificate=card.certificate_b64,
            certificate_hex=base64.b64decode(card.certificate_b64).hex(),
            not_before=card.not_before,
            not_after=card.not_after,
            server_time=int(now.timestamp()),
        )


class IssuerKeyPublic(BaseModel):
    key_id: int
    public_key: str = Field(description="Ed25519 public key, 32 bytes, hex")
    public_key_b64: str = Field(
        description="the same key in base64, as a virtual card's `certificate` is given"
    )
    valid_until: datetime | None

    @classmethod
    def of(cls, key_id: int, hex_key: str, valid_until: datetime | None) -> IssuerKeyPublic:
        return cls(
            key_id=key_id,
            public_key=hex_key,
            public_key_b64=base64.b64encode(bytes.fromhex(hex_key)).decode(),
            valid_until=valid_until,
        )


class IssuerKeySetPublic(BaseModel):
    version: int
    keys: list[IssuerKeyPublic]
    revoked: list[int]


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_s: Annotated[int, Field(ge=ISSUER_KEY_OVERLAP_MIN_S, le=ISSUER_KEY_OVERLAP_MAX_S)] = (
        ISSUER_KEY_OVERLAP_MIN_S
    )


class DenyListEntry(BaseModel):
    card_id: UUID
    serial: str | None = Field(default=None, description="physical cards: the 8-byte serial, hex")
    reason: str
    until: datetime


class DenyListPublic(BaseModel):
    version: int = Field(description="pass back as `since` to get only what changed")
    entries: list[DenyListEntry]
    more: bool


# The statuses of the cards' errors (see `ticketing.shared.error_status`).
ERROR_STATUS: ErrorStatus = {
    virtual_card.VirtualCardNotFound: 404,
    virtual_card.VirtualCardNotActive: 409,
    issuer_keys.IssuerKeyNotFound: 404,
    issuer_keys.IssuerKeyAlreadyRevoked: 409,
    issuer_keys.ActiveIssuerKeyRevoked: 409,
    issuer_keys.NoActiveIssuerKey: 503,
    smart_card.SmartCardNotFound: 404,
    smart_card.SmartCardAlreadyIssued: 409,
    smart_card.SmartCardNotActive: 409,
    smart_card.TransactionCounterReplayed: 409,
    smart_card.TooManyOpenReloads: 409,
    smart_card.ReloadNotOpen: 409,
    smart_card.ReloadsStillOpen: 409,
    smart_card.PurseUnexplained: 409,
}


router = APIRouter(tags=["virtual cards"])


def _own_card(cards: CardIssuer, card_id: UUID, principal: Principal) -> VirtualCard:
    card = cards.get_virtual_card(card_id)
    check_can_read(principal, card.account_id)
    return card


@router.post("/accounts/{account_id}/virtual-cards", status_code=status.HTTP_201_CREATED)
def issue_virtual_card(
    account_id: UUID, body: VirtualCardCreate, cards: CardsDep, principal: CurrentPrincipal
) -> VirtualCardPublic:
    """Certifies a phone's device key; the account's previous virtual card is retired."""
    check_can_read(principal, account_id)
    try:
        device_key = base64.b64decode(body.device_key, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDeviceKey from None
    card = cards.issue_virtual_card(
        account_id,
        device_key=device_key,
        concession_proof_checked=body.concession_proof_checked and principal.role is not Role.RIDER,
    )
    return VirtualCardPublic.of(card, cards.now())


@router.get("/accounts/{account_id}/virtual-cards")
def list_virtual_cards(
    account_id: UUID, views: CardViewsDep, principal: CurrentPrincipal
) -> list[dict[str, object]]:
    """The account's virtual cards, newest first (from the read model)."""
    check_can_read(principal, account_id)
    return views.cards_of(account_id)


@router.get("/virtual-cards/{card_id}")
def get_virtual_card(
    card_id: UUID, cards: CardsDep, principal: CurrentPrincipal
) -> VirtualCardPublic:
    """A virtual card with its current certificate."""
    return VirtualCardPublic.of(_own_card(cards, card_id, principal), cards.now())


@router.post("/virtual-cards/{card_id}/renew")
def renew_virtual_card(
    card_id: UUID, cards: CardsDep, principal: CurrentPrincipal
) -> VirtualCardPublic:
    """A fresh certificate (up to 72 h) for the same device key."""
    _own_card(cards, card_id, principal)
    return VirtualCardPublic.of(cards.renew_virtual_card(card_id), cards.now())


@router.post("/virtual-cards/{card_id}/block")
def block_virtual_card(
    card_id: UUID, body: ReasonBody, cards: CardsDep, principal: CurrentPrincipal
) -> VirtualCardPublic:
    """Blocks a lost or stolen phone's card: it goes on the deny list."""
    _own_card(cards, card_id, principal)
    return VirtualCardPublic.of(cards.block_virtual_card(card_id, reason=body.reason), cards.now())


@router.get(
    "/issuer-keys",
    response_model=IssuerKeySetPublic,
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
def get_issuer_keys(
    cards: CardsDep, _: CurrentPrincipal, request: Request, response: Response
) -> IssuerKeySetPublic | Response:
    """The public keys validators trust now, the revoked ids, and the set's version.

    Any token may read them: they are public, and a rider's app checks its own certificate.
    Answers carry an ETag; `If-None-Match` with it answers 304 while the set is unchanged."""
    return conditional(request, response, _key_set(cards))


def _key_set(cards: CardIssuer) -> IssuerKeySetPublic:
    published = cards.published_keys()
    return IssuerKeySetPublic(
        version=published.version,
        keys=[
            IssuerKeyPublic.of(k, hex_key, until)
            for k, (hex_key, until) in sorted(published.keys.items())
        ],
        revoked=published.revoked,
    )


@router.post("/issuer-keys/rotate", status_code=status.HTTP_201_CREATED)
def rotate_issuer_key(
    cards: CardsDep, _: CurrentAdmin, body: RotateBody | None = None
) -> IssuerKeySetPublic:
    """Starts signing with a new key; the old one stays trusted for `overlap_s`."""
    cards.rotate_issuer_key(overlap_s=(body or RotateBody()).overlap_s)
    return _key_set(cards)


@router.post("/issuer-keys/{key_id}/revoke")
def revoke_issuer_key(
    key_id: Annotated[int, Path(ge=1, le=ISSUER_KEY_ID_MAX)],
    body: ReasonBody,
    cards: CardsDep,
    _: CurrentAdmin,
) -> IssuerKeySetPublic:
    """Distrusts a key at once; every certificate it signed is refused."""
    cards.revoke_issuer_key(key_id, reason=body.reason)
    return _key_set(cards)


async def _deny_list_watch(request: Request) -> DenyListWatch:
    watch: DenyListWatch = request.app.state.deny_list_watch
    return watch


DenyListWatchDep = Annotated[DenyListWatch, Depends(_deny_list_watch)]


@router.get(
    "/deny-list",
    response_model=DenyListPublic,
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
async def get_deny_list(
    views: CardViewsDep,
    cards: CardsDep,
    watch: DenyListWatchDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    since: Annotated[int, Query(ge=0, le=DENY_LIST_VERSION_MAX)] = 0,
    wait_s: Annotated[
        int,
        Query(
            ge=0,
            le=DENY_WAIT_S_MAX,
            description="long poll: when nothing was listed after `since`, wait up to this "
            "long for an entry before answering (an empty page at the end of the wait)",
        ),
    ] = 0,
) -> DenyListPublic | Response:
    """Cards to refuse, listed after version `since`; entries end with the card's certificate.

    Staff and validator devices read it; riders do not. Answers carry an ETag for `If-None-Match`.
    With `wait_s`, the answer comes as soon as a card is listed after `since` (within about a
    second of the block, on every worker), so an online validator refuses it within seconds.
    """
    check_can_read_trust(principal)
    if wait_s:
        await watch.wait_past(since, wait_s, gone=request.is_disconnected)
    delta = await run_in_threadpool(partial(views.deny_list_since, since, now=cards.now()))
    body = DenyListPublic(
        version=delta.version,
        entries=[DenyListEntry.model_validate(e) for e in delta.entries],
        more=delta.more,
    )
    return conditional(request, response, body)


# Smart cards
PURSE_MAX_VND = 0xFFFFFF  # the card's u24 purse
COUNTER_MAX = 0xFFFFFF

SerialField = Annotated[
    str, Field(min_length=SERIAL_HEX_CHARS, max_length=SERIAL_HEX_CHARS, pattern="^[0-9A-Fa-f]+$")
]


def _smart_cards(request: Request) -> SmartCards:
    service: SmartCards = request.app.state.smart_cards
    return service


SmartCardsDep = Annotated[SmartCards, Depends(_smart_cards)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmartCardCreate(_Body):
    serial: SerialField
    account_id: UUID
    network_id: Annotated[int, Field(ge=0, le=0xFFFF)] = Field(
        default=NETWORK_ID_DEFAULT,
        description="the card network written into the card's environment record; a validator "
        "takes only cards of its own card network (default 0x0101 = 257, as the card format's "
        "personalisation writes it)",
    )


class ReloadCreate(_Body):
    reload_id: Annotated[
        str,
        Field(min_length=1, max_length=limits.TRANSFER_ID_MAX_CHARS - 7, pattern=TRANSFER_ID_REGEX),
    ]
    amount_vnd: Annotated[int, Field(ge=1, le=limits.TOP_UP_MAX_VND)]
    purse_before_vnd: Annotated[int, Field(ge=0, le=PURSE_MAX_VND)]


class ReloadSettle(_Body):
    purse_after_vnd: Annotated[int, Field(ge=0, le=PURSE_MAX_VND)]
    transaction_counter: Annotated[int, Field(ge=0, le=COUNTER_MAX)]


class SmartCardReasonBody(_Body):
    reason: Annotated[PrintableText, Field(min_length=1, max_length=REASON_MAX_CHARS)]


class ReplacementBody(_Body):
    replacement_serial: SerialField


class SmartCardPublic(BaseModel):
    serial: str
    account_id: UUID
    status: str
    rider_category: int
    network_id: int
    purse_vnd: int = Field(description="the last purse value a verified session showed")
    open_reloads: list[str]

    @classmethod
    def of(cls, card: SmartCard) -> SmartCardPublic:
        return cls(
            serial=card.serial,
            account_id=card.account_id,
            status=card.status.value,
            rider_category=card.rider_category,
            network_id=card.network_id,
            purse_vnd=card.purse_vnd,
            open_reloads=sorted(card.open_reloads),
        )


class ReloadSettled(BaseModel):
    outcome: str


smart_card_router = APIRouter(prefix="/cards", tags=["cards"])


@smart_card_router.post("", status_code=status.HTTP_201_CREATED)
def issue_smart_card(
    body: SmartCardCreate, service: SmartCardsDep, _: CurrentStaff
) -> SmartCardPublic:
    """Registers a card's serial to an account; the terminal writes the environment record."""
    return SmartCardPublic.of(
        service.issue(body.account_id, serial=body.serial, network_id=body.network_id)
    )


@smart_card_router.get("/{serial}")
def get_smart_card(
    serial: str, service: SmartCardsDep, principal: CurrentPrincipal
) -> SmartCardPublic:
    """A card as the backend last saw it."""
    card = service.get(serial)
    check_can_read(principal, card.account_id)
    return SmartCardPublic.of(card)


@smart_card_router.post("/{serial}/reloads", status_code=status.HTTP_202_ACCEPTED)
def start_reload(
    serial: str, body: ReloadCreate, service: SmartCardsDep, _: CurrentStaff
) -> SmartCardPublic:
    """Holds the amount on the account before the ticket office writes it to the card."""
    service.start_reload(
        serial,
        reload_id=body.reload_id,
        amount_vnd=body.amount_vnd,
        purse_before_vnd=body.purse_before_vnd,
    )
    return SmartCardPublic.of(service.get(serial))


@smart_card_router.post("/{serial}/reloads/{reload_id}/settle")
def settle_reload(
    serial: str, reload_id: str, body: ReloadSettle, service: SmartCardsDep, _: CurrentStaff
) -> ReloadSettled:
    """Posts the hold if the card shows the money, voids it if the card never took it."""
    outcome = service.settle_reload(
        serial,
        reload_id=reload_id,
        purse_after_vnd=body.purse_after_vnd,
        transaction_counter=body.transaction_counter,
    )
    return ReloadSettled(outcome=outcome.value)


@smart_card_router.post("/{serial}/block")
def block_smart_card(
    serial: str, body: SmartCardReasonBody, service: SmartCardsDep, principal: CurrentPrincipal
) -> SmartCardPublic:
    """Puts a lost or stolen card's serial on the deny list."""
    check_can_read(principal, service.get(serial).account_id)
    return SmartCardPublic.of(service.block(serial, reason=body.reason))


@smart_card_router.post("/{serial}/replace", status_code=status.HTTP_201_CREATED)
def replace_smart_card(
    serial: str, body: ReplacementBody, service: SmartCardsDep, _: CurrentStaff
) -> SmartCardPublic:
    """Issues a replacement; the lost card's last known purse goes back to the account."""
    return SmartCardPublic.of(service.replace(serial, replacement_serial=body.replacement_serial))
