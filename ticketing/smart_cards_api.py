"""HTTP routes for physical cards: issue, reload at a ticket office, block, replace."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ticketing.access import check_can_read
from ticketing.api import CurrentPrincipal, CurrentStaff
from ticketing.domain import limits
from ticketing.domain.smart_card import SERIAL_HEX_CHARS, SmartCard
from ticketing.schemas import TRANSFER_ID_REGEX, PrintableText
from ticketing.smart_cards import NETWORK_ID_DEFAULT, SmartCards

PURSE_MAX_VND = 0xFFFFFF  # the card's u24 purse
COUNTER_MAX = 0xFFFFFF
REASON_MAX_CHARS = 140

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
    network_id: Annotated[int, Field(ge=0, le=0xFFFF)] = NETWORK_ID_DEFAULT


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


class ReasonBody(_Body):
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


router = APIRouter(prefix="/cards", tags=["cards"])


@router.post("", status_code=status.HTTP_201_CREATED)
def issue_smart_card(
    body: SmartCardCreate, service: SmartCardsDep, _: CurrentStaff
) -> SmartCardPublic:
    """Registers a card's serial to an account; the terminal writes the environment record."""
    return SmartCardPublic.of(
        service.issue(body.account_id, serial=body.serial, network_id=body.network_id)
    )


@router.get("/{serial}")
def get_smart_card(
    serial: str, service: SmartCardsDep, principal: CurrentPrincipal
) -> SmartCardPublic:
    """A card as the backend last saw it."""
    card = service.get(serial)
    check_can_read(principal, card.account_id)
    return SmartCardPublic.of(card)


@router.post("/{serial}/reloads", status_code=status.HTTP_202_ACCEPTED)
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


@router.post("/{serial}/reloads/{reload_id}/settle")
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


@router.post("/{serial}/block")
def block_smart_card(
    serial: str, body: ReasonBody, service: SmartCardsDep, principal: CurrentPrincipal
) -> SmartCardPublic:
    """Puts a lost or stolen card's serial on the deny list."""
    check_can_read(principal, service.get(serial).account_id)
    return SmartCardPublic.of(service.block(serial, reason=body.reason))


@router.post("/{serial}/replace", status_code=status.HTTP_201_CREATED)
def replace_smart_card(
    serial: str, body: ReplacementBody, service: SmartCardsDep, _: CurrentStaff
) -> SmartCardPublic:
    """Issues a replacement; the lost card's last known purse goes back to the account."""
    return SmartCardPublic.of(service.replace(serial, replacement_serial=body.replacement_serial))
