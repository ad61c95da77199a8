"""The money map's classifier over the ids the code really writes: each writer's id, made by
the writer's own function, lands in its category; every call site that names a ledger id is
listed here (a new one fails until it is classified); unknown ids and malformed internal
references are refused; and a top-up is never revenue, whatever its reference says."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.domain import limits
from clearing.domain.classification import (
    RULES,
    Category,
    Movement,
    MovementKind,
    Origin,
    Pot,
    classify,
)
from clearing.domain.errors import InvalidAmount, UnclassifiedMovement
from parking.domain.record import credit_reference
from parking.domain.reservation import reservation_hold_id
from parking.domain.session import extension_hold_id, rest_debit_id, start_hold_id
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import (
    Command,
    Debit,
    PlaceHold,
    PostHold,
    TopUp,
    VoidHold,
)
from ticketing.cards.application.smart_cards import reload_hold_id
from ticketing.journeys.application.charges import PURSE_REFUND_PREFIX, DeferredCharger
from ticketing.journeys.application.pass_sales import pass_transfer_id
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_ids import purse_transfer_id
from ticketing.journeys.domain.journey_status import PaidFrom
from ticketing.journeys.domain.leg import Leg

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
ACCOUNT = UUID("00000000-0000-4000-8000-00000000a11c")
SESSION = UUID("5e55105e-0000-4000-8000-000000000001")
RECORD = UUID("4ec04d00-0000-4000-8000-000000000001")
TAP = UUID("7a900000-0000-4000-8000-000000000001")
EXAMPLES = settings(max_examples=300, deadline=None)


def journey(mode: str = "metro") -> Journey:
    leg = Leg(
        mode=mode,
        network_id="metro_2a" if mode == "metro" else "bus_8k",
        route_id="2A" if mode == "metro" else "01",
        from_stop_id="2A-01",
        to_stop_id=None,
        departure=AT,
        arrival=None,
        entry_tap=str(uuid4()),
        exit_tap=None,
    )
    return Journey.start(
        first_tap_id=uuid4(),
        account_id=ACCOUNT,
        paid_from=PaidFrom.ACCOUNT,
        rider_category="regular",
        fare_media="mobile_app",
        service_day="2026-12-06",
        leg=leg,
        at=AT,
    )


def journey_commands() -> tuple[Journey, Journey, list[Command]]:
    """Every ledger command the journey follower's charger writes, from the charger itself:
    a metro hold, its post and the rest debited, a repair's debit, a merge's refund, a day-end
    correction's refund, a merged journey's refund, and a bus journey closed at day end."""
    charger = DeferredCharger(cast(Ledger, None))  # it collects commands, never runs them
    metro, bus = journey("metro"), journey("bus")
    charger.hold(metro, 15_000, "hold:0", AT)
    charger.settle(metro, 20_000, "leg:0", AT)
    charger.adjust(metro, 25_000, "repair:1", AT)
    charger.adjust(metro, 22_000, "merge:2", AT)
    charger.refund(metro, 1_000, AT)
    charger.refund(metro, 1_000, AT, "merged")
    charger.settle(bus, 8_000, "close", AT)
    voided = journey("metro")
    charger.hold(voided, 15_000, "hold:0", AT)
    charger.void(voided, AT)
    return metro, bus, charger.commands


def movement(command: Command) -> Movement:
    match command:
        case TopUp():
            return Movement(
                ACCOUNT, MovementKind.TOPPED_UP, command.transfer_id, command.amount_vnd
            )
        case Debit():
            return Movement(ACCOUNT, MovementKind.DEBITED, command.transfer_id, command.amount_vnd)
        case PlaceHold():
            return Movement(ACCOUNT, MovementKind.HOLD_PLACED, command.hold_id, command.amount_vnd)
        case PostHold():
            return Movement(ACCOUNT, MovementKind.HOLD_POSTED, command.hold_id, 15_000)
        case VoidHold():
            return Movement(ACCOUNT, MovementKind.HOLD_VOIDED, command.hold_id, 15_000)
    raise AssertionError(command)


def test_the_journey_followers_ids_are_transit_revenue_reversals_and_hold_movements() -> None:
    metro, bus, commands = journey_commands()
    found = [(classify(movement(c)), movement(c).reference) for c in commands]
    seen = [(c.category, c.origin_id, c.step) for c, _ in found]
    m, b = metro.id.hex, bus.id.hex
    assert seen[:8] == [
        (Category.HOLD_MOVEMENT, m, "hold:0"),  # the entry's hold reserves, moves nothing
        (Category.TRANSIT_REVENUE, m, "hold:0"),  # its post is the ride's revenue
        (Category.TRANSIT_REVENUE, m, "leg:0"),  # what the hold did not cover, debited
        (Category.TRANSIT_REVENUE, m, "repair:1"),
        (Category.TRANSIT_REVERSAL, m, "merge:2"),  # top-up:journey-…-refund-merge:2
        (Category.TRANSIT_REVERSAL, m, ""),  # top-up:journey-…-refund (a day-end correction)
        (Category.TRANSIT_REVERSAL, m, "merged"),  # a merged journey's charges returned
        (Category.TRANSIT_REVENUE, b, "close"),  # a journey the day-end close charged
    ]
    assert [c.category for c, _ in found[8:]] == [Category.HOLD_MOVEMENT] * 2  # placed, voided
    for classification, reference in found:
        assert classification.origin is Origin.JOURNEY, reference


def classified(kind: MovementKind, reference: str, amount_vnd: int = 5_000) -> tuple[str, ...]:
    c = classify(Movement(ACCOUNT, kind, reference, amount_vnd))
    return (c.category, c.source, c.sink, c.origin, c.origin_id, c.step)


K = MovementKind
GOLDEN = [
    # A rider's payment from a provider: held for the rider.
    (K.TOPPED_UP, TopUp(ACCOUNT, 1, "momo-7781").transfer_id, Category.TOP_UP, Pot.OUTSIDE,
     Pot.ACCOUNTS, Origin.RIDER_PAYMENT, "momo-7781", ""),
    # A card purse paying at a validator, as its journey records it.
    (K.PURSE_PAID, purse_transfer_id(str(TAP)), Category.TRANSIT_REVENUE, Pot.CARD_PURSES,
     Pot.OPERATORS, Origin.TAP, str(TAP), ""),
    # What the purse paid beyond the fare, given back to the account.
    (K.TOPPED_UP, f"{PURSE_REFUND_PREFIX}{SESSION.hex}:2", Category.TRANSIT_REVERSAL,
     Pot.OPERATORS, Pot.ACCOUNTS, Origin.JOURNEY, SESSION.hex, "2"),
    # A pass bought on the account: unearned until its rides apportion it.
    (K.DEBITED, pass_transfer_id(ACCOUNT, "buy-1"), Category.PASS_SALE, Pot.ACCOUNTS,
     Pot.UNEARNED_PASSES, Origin.PASS, pass_transfer_id(ACCOUNT, "buy-1")[5:], ""),
    # Parking: the start hold and an extension's hold reserve; their posts are the fee.
    (K.HOLD_PLACED, start_hold_id(SESSION), Category.HOLD_MOVEMENT, Pot.ACCOUNTS,
     Pot.ACCOUNTS, Origin.PARKING_SESSION, SESSION.hex, "start"),
    (K.HOLD_POSTED, start_hold_id(SESSION), Category.PARKING_REVENUE, Pot.ACCOUNTS,
     Pot.OPERATORS, Origin.PARKING_SESSION, SESSION.hex, "start"),
    (K.HOLD_EXPIRED, extension_hold_id(SESSION, "ext-1"), Category.HOLD_MOVEMENT, Pot.ACCOUNTS,
     Pot.ACCOUNTS, Origin.PARKING_SESSION, SESSION.hex, extension_hold_id(SESSION, "ext-1")[-16:]),
    (K.HOLD_POSTED, extension_hold_id(SESSION, "ext-1"), Category.PARKING_REVENUE, Pot.ACCOUNTS,
     Pot.OPERATORS, Origin.PARKING_SESSION, SESSION.hex, extension_hold_id(SESSION, "ext-1")[-16:]),
    (K.DEBITED, rest_debit_id(SESSION), Category.PARKING_REVENUE, Pot.ACCOUNTS, Pot.OPERATORS,
     Origin.PARKING_SESSION, SESSION.hex, "rest"),
    # A reservation's hold: released when the driver arrives or cancels in time; a late-cancel
    # or no-show fee posted from it is its lot operator's revenue.
    (K.HOLD_VOIDED, reservation_hold_id(SESSION), Category.HOLD_MOVEMENT, Pot.ACCOUNTS,
     Pot.ACCOUNTS, Origin.PARKING_RESERVATION, SESSION.hex, "reservation"),
    (K.HOLD_POSTED, reservation_hold_id(SESSION), Category.PARKING_REVENUE, Pot.ACCOUNTS,
     Pot.OPERATORS, Origin.PARKING_RESERVATION, SESSION.hex, "reservation"),
    # A parking credit's refund top-up reverses the record's fee.
    (K.TOPPED_UP, TopUp(ACCOUNT, 1, credit_reference(RECORD, 1)).transfer_id,
     Category.PARKING_REVERSAL, Pot.OPERATORS, Pot.ACCOUNTS, Origin.PARKING_RECORD, RECORD.hex,
     "1"),
    # A smart card's reload: account money onto the card's purse, still the rider's.
    (K.HOLD_PLACED, reload_hold_id("desk-1"), Category.HOLD_MOVEMENT, Pot.ACCOUNTS,
     Pot.ACCOUNTS, Origin.CARD_RELOAD, "desk-1", ""),
    (K.HOLD_POSTED, reload_hold_id("desk-1"), Category.PURSE_LOAD, Pot.ACCOUNTS,
     Pot.CARD_PURSES, Origin.CARD_RELOAD, "desk-1", ""),
    (K.HOLD_VOIDED, reload_hold_id("desk-1"), Category.HOLD_MOVEMENT, Pot.ACCOUNTS,
     Pot.ACCOUNTS, Origin.CARD_RELOAD, "desk-1", ""),
    # A replaced card's purse carried over to the account.
    (K.TOPPED_UP, TopUp(ACCOUNT, 1, "carry-over-04a1b2c3d4e5f607").transfer_id,
     Category.PURSE_RETURN, Pot.CARD_PURSES, Pot.ACCOUNTS, Origin.CARD, "04a1b2c3d4e5f607", ""),
    # A closed account's balance paid out.
    (K.CLOSED, "", Category.PAYOUT_TO_RIDER, Pot.ACCOUNTS, Pot.OUTSIDE, Origin.ACCOUNT,
     ACCOUNT.hex, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "reference", "category", "source", "sink", "origin", "origin_id", "step"), GOLDEN
)
def test_each_writers_id_has_its_place_in_the_money_map(
    kind: MovementKind,
    reference: str,
    category: Category,
    source: Pot,
    sink: Pot,
    origin: Origin,
    origin_id: str,
    step: str,
) -> None:
    assert classified(kind, reference) == (category, source, sink, origin, origin_id, step)


def test_every_category_but_pass_revenue_comes_from_some_writer() -> None:
    _, _, commands = journey_commands()
    reached = {classify(movement(c)).category for c in commands}
    reached |= {row[2] for row in GOLDEN}
    # A pass's revenue is made by clearing's apportionment, never read off the ledger.
    assert set(Category) - reached == {Category.PASS_REVENUE}


# Every call site in the product that names a ledger id (the id argument of a TopUp, Debit or
# PlaceHold), with the rule that classifies what it writes. A new call site fails
# `test_every_ledger_writer_in_the_code_is_listed` until its ids are given a place in the
# money map (clearing/domain/classification.py) and an example above.
KNOWN_WRITERS = {
    ("ticketing/journeys/application/charges.py", "PlaceHold", "hold_id"): "journey metro hold",
    ("ticketing/journeys/application/charges.py", "Debit", "debit_id"): "journey charge",
    ("ticketing/journeys/application/charges.py", "TopUp", "reference"): "journey/purse refund",
    ("ticketing/journeys/application/pass_sales.py", "Debit", "transfer_id"): "pass sale",
    ("ticketing/cards/application/smart_cards.py", "PlaceHold", "reload_hold_id(reload_id)"): (
        "smart card reload hold"
    ),
    ("ticketing/cards/application/smart_cards.py", "TopUp", "f'carry-over-{old.serial}'"): (
        "card carry-over"
    ),
    ("parking/application/sessions.py", "PlaceHold", "hold_id"): "parking start/extension hold",
    ("parking/application/ending.py", "Debit", "rest_debit_id(session.id)"): "parking rest",
    ("parking/application/batch_plans.py", "PlaceHold", "hold_id"): (
        "parking start/extension hold, a handheld's batch"
    ),
    ("parking/application/batch_settlement.py", "Debit", "rest_debit_id(session.id)"): (
        "parking rest, a handheld's batch"
    ),
    ("parking/application/reservations.py", "PlaceHold", "hold_id"): "parking reservation hold",
    ("parking/application/records.py", "TopUp", "credit_reference(record.id, number)"): (
        "parking credit"
    ),
    # Caller-chosen through the staff API: a top-up is a rider's payment unless its reference
    # is an internal one; a debit or hold with an id no writer uses is refused by `classify`.
    ("ticketing/accounts/api.py", "TopUp", "body.payment_reference"): "staff top-up",
    ("ticketing/accounts/api.py", "Debit", "body.transfer_id"): "staff debit",
    ("ticketing/accounts/api.py", "PlaceHold", "body.hold_id"): "staff hold",
    # The demo's street parking: a rider's top-up before a day in town.
    ("tapledger/demo_parking.py", "TopUp", "'bank-55121'"): "demo top-up",
    ("tapledger/demo_parking.py", "TopUp", "reference"): "demo top-up before a booking",
    # The demo's live fleet scene: each rider's top-up on its own backend.
    ("tapledger/demo_fleet_scene.py", "TopUp", "f'fleet-{account.id}'"): "demo top-up",
}
# The demo's morning (tapledger/demo_morning.py) rides through validators, so the journeys'
# charger writes its holds and charges; besides the riders' top-ups, its own ledger commands are
# the refusals it shows (a balance too short, a blocked account), which leave no movement, and
# whose ids the classifier refuses too rather than guess.
DEMO_FILE = "tapledger/demo_morning.py"
ID_ARGUMENTS = {"TopUp": ("payment_reference", 2), "Debit": ("transfer_id", 1), "PlaceHold": (
    "hold_id", 1)}  # fmt: skip
SCANNED = ("ticketing", "parking", "tapledger", "validators", "clearing")


def ledger_writers() -> list[tuple[str, str, str]]:
    found = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called not in ID_ARGUMENTS:
                    continue
                name, index = ID_ARGUMENTS[called]
                argument = next((k.value for k in node.keywords if k.arg == name), None)
                if argument is None and len(node.args) > index:
                    argument = node.args[index]
                assert argument is not None, f"{path}: {called} without an id"
                found.append((str(path.relative_to(ROOT)), called, ast.unparse(argument)))
    return found


def test_every_ledger_writer_in_the_code_is_listed() -> None:
    writers = ledger_writers()
    product = {w for w in writers if w[0] != DEMO_FILE}
    assert product == set(KNOWN_WRITERS), "a ledger id writer was added or removed: classify it"


def test_the_demos_own_debit_and_hold_ids_are_refused_not_guessed() -> None:
    demo = [w for w in ledger_writers() if w[0] == DEMO_FILE]
    assert demo, "the demo's ledger tour moved: update this known gap"
    for _, command, argument in demo:
        reference = ast.literal_eval(argument)
        if command == "TopUp":
            assert classified(K.TOPPED_UP, f"top-up:{reference}")[0] is Category.TOP_UP
        else:
            kind = K.DEBITED if command == "Debit" else K.HOLD_PLACED
            with pytest.raises(UnclassifiedMovement):
                classified(kind, reference)


@pytest.mark.parametrize(
    ("kind", "reference"),
    [
        # Internal top-up references that do not parse: a bug or a forgery, not a payment.
        (K.TOPPED_UP, "top-up:journey-not-hex-refund"),
        (K.TOPPED_UP, f"top-up:journey-{SESSION.hex}-refund-someday"),
        (K.TOPPED_UP, "top-up:purse-refund:abc:1"),
        (K.TOPPED_UP, f"top-up:purse-refund:{SESSION.hex}:0"),
        (K.TOPPED_UP, f"top-up:parking-credit:{RECORD.hex}"),
        (K.TOPPED_UP, "top-up:carry-over-ZZ"),
        # A top-up always carries the ledger's prefix.
        (K.TOPPED_UP, "momo-7781"),
        # Known ids with a kind of event their writer never makes.
        (K.DEBITED, f"journey:{SESSION.hex}:hold:0"),
        (K.HOLD_PLACED, f"journey:{SESSION.hex}:leg:0"),
        (K.HOLD_PLACED, pass_transfer_id(ACCOUNT, "buy-1")),
        (K.DEBITED, start_hold_id(SESSION)),
        (K.HOLD_POSTED, rest_debit_id(SESSION)),
        (K.PURSE_PAID, f"journey:{SESSION.hex}:leg:0"),
        (K.DEBITED, reload_hold_id("desk-1")),
        (K.DEBITED, TopUp(ACCOUNT, 1, credit_reference(RECORD, 1)).transfer_id),
        # Ids nobody writes.
        (K.DEBITED, "bus-01-0714-lan"),
        (K.DEBITED, f"journey:{SESSION.hex}:fare"),
        (K.HOLD_POSTED, f"parking:{SESSION.hex}:end"),
        (K.PURSE_PAID, "purse:not-a-tap"),
        (K.CLOSED, "top-up:momo-7781"),
        (K.DEBITED, "x" * (limits.REFERENCE_MAX_CHARS + 1)),
    ],
)
def test_an_id_without_a_place_is_refused(kind: MovementKind, reference: str) -> None:
    with pytest.raises(UnclassifiedMovement):
        classified(kind, reference)


def test_a_kind_of_movement_nobody_makes_is_refused() -> None:
    with pytest.raises(UnclassifiedMovement):
        classify(Movement(ACCOUNT, cast(MovementKind, "refunded"), "top-up:momo-7781", 1))


@pytest.mark.parametrize("amount_vnd", [-1, limits.MOVEMENT_MAX_VND + 1, True, 1.0])
def test_an_amount_out_of_bounds_is_refused(amount_vnd: int) -> None:
    with pytest.raises(InvalidAmount):
        classified(K.TOPPED_UP, "top-up:momo-7781", amount_vnd)


references = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-:._", min_size=1, max_size=57)
internal_looking = st.sampled_from(
    ["journey-", "purse-refund:", "parking-credit:", "carry-over-", f"journey-{SESSION.hex}-"]
)


@EXAMPLES
@given(st.one_of(references, st.tuples(internal_looking, references).map("".join)))
def test_a_top_up_is_never_revenue(reference: str) -> None:
    try:
        c = classify(Movement(ACCOUNT, K.TOPPED_UP, f"top-up:{reference}"[:64], 10_000))
    except UnclassifiedMovement:
        return
    assert c.revenue_sign <= 0
    assert c.sink is not Pot.OPERATORS
    assert c.category is not Category.TOP_UP or (c.source, c.sink) == (Pot.OUTSIDE, Pot.ACCOUNTS)


@EXAMPLES
@given(references.filter(lambda r: not r.startswith(("journey-", "purse-", "parking-", "carry-"))))
def test_an_outside_payment_reference_is_a_top_up_held_for_the_rider(reference: str) -> None:
    assert classified(K.TOPPED_UP, f"top-up:{reference}")[:3] == (
        Category.TOP_UP,
        Pot.OUTSIDE,
        Pot.ACCOUNTS,
    )


@EXAMPLES
@given(st.sampled_from([k for k in MovementKind if k not in (K.CLOSED, K.TOPPED_UP)]), references)
def test_a_debit_or_hold_is_classified_only_by_a_writers_rule(
    kind: MovementKind, reference: str
) -> None:
    matched = [rule for rule in RULES if rule.pattern.fullmatch(reference)]
    try:
        c = classify(Movement(ACCOUNT, kind, reference, 1_000))
    except UnclassifiedMovement:
        assert not matched or kind not in matched[0].categories
        return
    assert matched
    assert matched[0].categories[kind] is c.category
