"""Where a ledger movement belongs in the money map (docs/money-map.md).

A movement is a plain description of one money event: the account, what happened to it
(`MovementKind`, one per `TransportAccount` event, plus a card purse paying at a validator as
the Journeys record it), the transfer id, hold id or tap reference it carries, and the amount.
`classify` reads the id and says what the money is (`Category`), which of the scheme's pots it
leaves and which it enters (`Pot`), and which aggregate the id names (`Origin`, `origin_id`),
so clearing knows where to look for the operator whose position it moves.

The id patterns are the ones the code writes today; each is in `RULES`. A debit or a hold
whose id matches none, or a reference shaped like an internal one that does not parse, is an
`UnclassifiedMovement`: it is never taken for revenue, nor for money paid in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from clearing.domain import limits
from clearing.domain.errors import InvalidAmount, UnclassifiedMovement
from ticketing.accounts.domain.commands import TOP_UP_ID_PREFIX


class MovementKind(StrEnum):
    TOPPED_UP = "topped_up"  # TransportAccount.ToppedUp: transfer_id
    DEBITED = "debited"  # TransportAccount.Debited: transfer_id
    HOLD_PLACED = "hold_placed"  # TransportAccount.HoldPlaced: hold_id
    HOLD_POSTED = "hold_posted"  # TransportAccount.HoldPosted: hold_id, amount posted
    HOLD_VOIDED = "hold_voided"  # TransportAccount.HoldVoided: hold_id
    HOLD_EXPIRED = "hold_expired"  # TransportAccount.HoldExpired: hold_id
    CLOSED = "closed"  # TransportAccount.Closed: refund_vnd, no reference
    PURSE_PAID = "purse_paid"  # Journey.PursePaid: `purse:<tap id>`, the card's own debit


class Category(StrEnum):
    TOP_UP = "top_up"  # money paid in for a rider: held for them, nobody's revenue
    TRANSIT_REVENUE = "transit_revenue"  # a ride paid: the operator of each leg's route
    TRANSIT_REVERSAL = "transit_reversal"  # a ride's charge given back to the rider
    # A pass bought: earned only over the rides it covers.
    PASS_SALE = "pass_sale"  # noqa: S105 (a category, not a password)
    # A pass's price apportioned over its rides: made by clearing, never by `classify`.
    PASS_REVENUE = "pass_revenue"  # noqa: S105 (a category, not a password)
    PARKING_REVENUE = "parking_revenue"  # a parking fee paid: the lot's operator
    PARKING_REVERSAL = "parking_reversal"  # a parking credit given back to the driver
    PURSE_LOAD = "purse_load"  # account money moved onto a card's purse: still the rider's
    PURSE_RETURN = "purse_return"  # a replaced card's purse back on the account
    PAYOUT_TO_RIDER = "payout_to_rider"  # a closed account's balance paid out
    HOLD_MOVEMENT = "hold_movement"  # money reserved or released: no owner changes


REVENUE_SIGN: Mapping[Category, int] = {
    Category.TRANSIT_REVENUE: 1,
    Category.PASS_REVENUE: 1,
    Category.PARKING_REVENUE: 1,
    Category.TRANSIT_REVERSAL: -1,
    Category.PARKING_REVERSAL: -1,
}


class Pot(StrEnum):
    """Where money sits, as the scheme accounts for it."""

    OUTSIDE = "outside"  # payment providers and riders' banks: not the scheme's
    ACCOUNTS = "accounts"  # transport-account balances: owed to riders
    CARD_PURSES = "card_purses"  # value on smart cards' purses: owed to riders
    UNEARNED_PASSES = "unearned_passes"  # pass prices not yet earned by rides
    OPERATORS = "operators"  # revenue owed to operators (less the scheme's commission)


class Origin(StrEnum):
    """What aggregate a movement's id names, where clearing reads the rest of the story."""

    RIDER_PAYMENT = "rider_payment"  # an outside payment reference: no aggregate
    JOURNEY = "journey"  # Journey (legs, routes, prices): origin_id is its id in hex
    TAP = "tap"  # a purse payment: the tap's id, found among a journey's legs
    # The pass debit's id; RiderPasses records it as the pass's `transfer_id`.
    PASS = "pass"  # noqa: S105 (an origin, not a password)
    PARKING_SESSION = "parking_session"  # ParkingSession / its record: session id in hex
    PARKING_RECORD = "parking_record"  # ParkingDetailRecord: record id in hex
    PARKING_RESERVATION = "parking_reservation"  # Reservation: reservation aggregate id in hex
    CARD_RELOAD = "card_reload"  # a smart card's reload id
    CARD = "card"  # a smart card's serial
    ACCOUNT = "account"  # the transport account itself


@dataclass(frozen=True, slots=True)
class Movement:
    account_id: UUID
    kind: MovementKind
    reference: str  # transfer id, hold id or `purse:<tap id>`; "" for a closed account
    amount_vnd: int


@dataclass(frozen=True, slots=True)
class Classification:
    category: Category
    source: Pot
    sink: Pot
    origin: Origin
    origin_id: str
    step: str  # the id's last part where it has one: `leg:1`, `start`, a credit's number

    @property
    def revenue_sign(self) -> int:
        """+1 when it earns an operator revenue, -1 when it reverses revenue, else 0."""
        return REVENUE_SIGN.get(self.category, 0)


@dataclass(frozen=True, slots=True)
class Rule:
    """One id pattern a writer in the code uses, and what it means with each kind of event."""

    name: str
    pattern: re.Pattern[str]
    origin: Origin
    categories: Mapping[MovementKind, Category]


_HEX32 = "[0-9a-f]{32}"
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_NUMBER = "[1-9][0-9]*"
_T = TOP_UP_ID_PREFIX
_HOLD_LIFE = (MovementKind.HOLD_PLACED, MovementKind.HOLD_VOIDED, MovementKind.HOLD_EXPIRED)


def _hold(posted: Category) -> dict[MovementKind, Category]:
    held = dict.fromkeys(_HOLD_LIFE, Category.HOLD_MOVEMENT)
    return held | {MovementKind.HOLD_POSTED: posted}


RULES: tuple[Rule, ...] = (
    Rule(
        "journey charge (ticketing/journeys/application/charges.py)",
        re.compile(rf"journey:(?P<id>{_HEX32}):(?P<step>(?:leg|repair|merge):[0-9]+|close)"),
        Origin.JOURNEY,
        {MovementKind.DEBITED: Category.TRANSIT_REVENUE},
    ),
    Rule(
        "journey metro hold (charges.py, metro_taps.py)",
        re.compile(rf"journey:(?P<id>{_HEX32}):(?P<step>hold:[0-9]+)"),
        Origin.JOURNEY,
        _hold(Category.TRANSIT_REVENUE),
    ),
    Rule(
        "journey refund (charges.py, Charger.refund)",
        re.compile(
            rf"{_T}journey-(?P<id>{_HEX32})-refund(?:-(?P<step>merged|(?:repair|merge):[0-9]+))?"
        ),
        Origin.JOURNEY,
        {MovementKind.TOPPED_UP: Category.TRANSIT_REVERSAL},
    ),
    Rule(
        "purse refund (charges.py, Charger.refund_purse)",
        re.compile(rf"{_T}purse-refund:(?P<id>{_HEX32}):(?P<step>{_NUMBER})"),
        Origin.JOURNEY,
        {MovementKind.TOPPED_UP: Category.TRANSIT_REVERSAL},
    ),
    Rule(
        "purse payment at a validator (journey_ids.py, Journey.PursePaid)",
        re.compile(rf"purse:(?P<id>{_UUID})"),
        Origin.TAP,
        {MovementKind.PURSE_PAID: Category.TRANSIT_REVENUE},
    ),
    Rule(
        "pass sale (ticketing/journeys/application/pass_sales.py)",
        re.compile(rf"pass:(?P<id>{_HEX32})"),
        Origin.PASS,
        {MovementKind.DEBITED: Category.PASS_SALE},
    ),
    Rule(
        "parking hold, start or extension (parking/domain/session.py)",
        re.compile(rf"parking:(?P<id>{_HEX32}):(?P<step>start|[0-9a-f]{{16}})"),
        Origin.PARKING_SESSION,
        _hold(Category.PARKING_REVENUE),
    ),
    Rule(
        "parking reservation hold (parking/domain/reservation.py)",
        re.compile(rf"parking:(?P<id>{_HEX32}):(?P<step>reservation)"),
        Origin.PARKING_RESERVATION,
        _hold(Category.PARKING_REVENUE),
    ),
    Rule(
        "parking rest beyond the holds (parking/domain/session.py)",
        re.compile(rf"parking:(?P<id>{_HEX32}):(?P<step>rest)"),
        Origin.PARKING_SESSION,
        {MovementKind.DEBITED: Category.PARKING_REVENUE},
    ),
    Rule(
        "parking credit (parking/domain/record.py)",
        re.compile(rf"{_T}parking-credit:(?P<id>{_HEX32}):(?P<step>{_NUMBER})"),
        Origin.PARKING_RECORD,
        {MovementKind.TOPPED_UP: Category.PARKING_REVERSAL},
    ),
    Rule(
        "smart card reload hold (ticketing/cards/application/smart_cards.py)",
        re.compile(r"reload-(?P<id>[A-Za-z0-9][A-Za-z0-9._:-]*)"),
        Origin.CARD_RELOAD,
        _hold(Category.PURSE_LOAD),
    ),
    Rule(
        "replaced card's purse carried over (smart_cards.py, SmartCards.replace)",
        re.compile(rf"{_T}carry-over-(?P<id>[0-9a-f]{{16}})"),
        Origin.CARD,
        {MovementKind.TOPPED_UP: Category.PURSE_RETURN},
    ),
)

# Top-up references only the code writes: one of these that no rule parses is a bug or a
# forgery, never a rider's payment.
RESERVED_TOP_UP_PREFIXES = (
    f"{_T}journey-",
    f"{_T}purse-refund:",
    f"{_T}parking-credit:",
    f"{_T}carry-over-",
)


def classify(movement: Movement) -> Classification:
    """The money map's place for `movement`; `UnclassifiedMovement` when it has none."""
    _check(movement)
    reference = movement.reference
    try:
        kind = MovementKind(movement.kind)
    except ValueError:
        raise UnclassifiedMovement(str(movement.kind), reference, "no such movement") from None
    if kind is MovementKind.CLOSED:
        if reference:
            raise UnclassifiedMovement(kind, reference, "a closed account carries no reference")
        return _classified(Category.PAYOUT_TO_RIDER, kind, Origin.ACCOUNT, movement.account_id.hex)
    for rule in RULES:
        match = rule.pattern.fullmatch(reference)
        if match is None:
            continue
        category = rule.categories.get(kind)
        if category is None:
            raise UnclassifiedMovement(kind, reference, f"a {rule.name} id never comes with it")
        step = match.groupdict().get("step") or ""
        return _classified(category, kind, rule.origin, match["id"], step)
    if kind is MovementKind.TOPPED_UP and reference.startswith(_T):
        if reference.startswith(RESERVED_TOP_UP_PREFIXES):
            raise UnclassifiedMovement(kind, reference, "an internal reference that does not parse")
        return _classified(Category.TOP_UP, kind, Origin.RIDER_PAYMENT, reference[len(_T) :])
    raise UnclassifiedMovement(kind, reference, "no writer in the code uses this id")


def _classified(
    category: Category, kind: MovementKind, origin: Origin, origin_id: str, step: str = ""
) -> Classification:
    source, sink = flow(category, kind)
    return Classification(category, source, sink, origin, origin_id, step)


def flow(category: Category, kind: MovementKind) -> tuple[Pot, Pot]:
    """The pot a movement of `category` takes money from, and the pot it puts it in."""
    if category is Category.TRANSIT_REVENUE and kind is MovementKind.PURSE_PAID:
        return Pot.CARD_PURSES, Pot.OPERATORS
    return FLOWS[category]


FLOWS: Mapping[Category, tuple[Pot, Pot]] = {
    Category.TOP_UP: (Pot.OUTSIDE, Pot.ACCOUNTS),
    Category.TRANSIT_REVENUE: (Pot.ACCOUNTS, Pot.OPERATORS),
    Category.TRANSIT_REVERSAL: (Pot.OPERATORS, Pot.ACCOUNTS),
    Category.PASS_SALE: (Pot.ACCOUNTS, Pot.UNEARNED_PASSES),
    Category.PASS_REVENUE: (Pot.UNEARNED_PASSES, Pot.OPERATORS),
    Category.PARKING_REVENUE: (Pot.ACCOUNTS, Pot.OPERATORS),
    Category.PARKING_REVERSAL: (Pot.OPERATORS, Pot.ACCOUNTS),
    Category.PURSE_LOAD: (Pot.ACCOUNTS, Pot.CARD_PURSES),
    Category.PURSE_RETURN: (Pot.CARD_PURSES, Pot.ACCOUNTS),
    Category.PAYOUT_TO_RIDER: (Pot.ACCOUNTS, Pot.OUTSIDE),
    Category.HOLD_MOVEMENT: (Pot.ACCOUNTS, Pot.ACCOUNTS),
}


def _check(movement: Movement) -> None:
    amount = movement.amount_vnd
    if type(amount) is not int or not 0 <= amount <= limits.MOVEMENT_MAX_VND:
        raise InvalidAmount(f"a movement's amount is an int in 0..{limits.MOVEMENT_MAX_VND}")
    if len(movement.reference) > limits.REFERENCE_MAX_CHARS:
        raise UnclassifiedMovement(movement.kind, movement.reference[:80], "reference too long")
