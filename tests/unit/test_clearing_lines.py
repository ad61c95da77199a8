"""Revenue lines per operator from the ledger, in the store's order: a day of a top-up, a metro,
a bus and a bus-then-metro journey, a parking session and its credit, and an id no writer uses,
on the product's applications over SQLite; then the same sums on random movements."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clearing
from clearing.adapters.operator_files import load_packaged, parse_operator_file
from clearing.application.ledger_movements import ClassifiedMovement, ledger_movements
from clearing.application.revenue_lines import (
    Line,
    OperatorLine,
    RevenueAttribution,
    SuspenseCode,
    SuspenseLine,
    fare_engine_standalone,
    parking_store_operators,
)
from clearing.domain.classification import Category, Movement, MovementKind, Origin, classify
from clearing.domain.errors import (
    ClearingError,
    CutOffBeyondHead,
    InvalidOperatorId,
    UnclassifiedMovement,
)
from clearing.domain.operators import InvalidOperatorMap
from parking.domain.session import EndedBy
from tests.builders.clearing_day import Rider, a_day, head
from tests.builders.journeys import BUS_01, register_validators
from tests.builders.parking import BALANCE_VND, MORNING, OPERATOR, ParkingWorld, parking_world
from ticketing.accounts.domain.commands import PlaceHold, PostHold, TopUp, VoidHold
from ticketing.fares.loader import HANOI_FEED_DIR

OPERATORS = load_packaged()
METRO, BUS = "hanoi-metro", "transerco"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        register_validators(built.container.taps)
        yield built


def attribution(world: ParkingWorld) -> RevenueAttribution:
    container = world.container
    return RevenueAttribution(
        operators=OPERATORS,
        journeys=container.journeys,
        parking_operator_of=parking_store_operators(container.parking.store),
        standalone_fare=fare_engine_standalone(container.journeys.fares),
    )


def totals(lines: list[Line]) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in lines:
        if isinstance(line, OperatorLine):
            found[line.operator_id] += line.amount_vnd
    return found


def test_a_day_of_journeys_and_parking_is_revenue_of_each_operator(world: ParkingWorld) -> None:
    session_id = a_day(world)
    cut_off = head(world)

    movements = list(ledger_movements(world.container.ledger, 0, cut_off))
    lines = list(attribution(world).revenue_lines(movements))

    record = world.parking.records.get(session_id)
    # Metro 15,000 (13 km); bus 10,000; bus 10,000 + metro 8,000 - 3,000 transfer = 15,000,
    # split 10:8 by standalone fare on each of its two charges (the bus debit, the posted hold).
    assert totals(lines) == {
        METRO: 15_000 + 2_222 + 4_444,
        BUS: 10_000 + 2_778 + 5_556,
        OPERATOR: record.fee_vnd - 5_000,
    }
    suspense = [line for line in lines if isinstance(line, SuspenseLine)]
    assert [(s.reference, s.revenue_vnd, s.amount_vnd) for s in suspense] == [
        ("mystery-1", 0, 1_000)
    ]
    assert suspense[0].code is SuspenseCode.UNCLASSIFIED
    assert "no writer" in suspense[0].reason
    top_ups = [m for m in movements if m.classification and m.classification.category == "top_up"]
    assert [m.movement.reference for m in top_ups] == [f"top-up:pay-{world.account_id.hex}"]


def test_the_parking_fee_goes_to_the_session_operator_and_its_credit_reverses_it(
    world: ParkingWorld,
) -> None:
    session = world.start(hours=2).session
    world.clock.advance(3600)
    record = world.parking.ending.end(session.id, "end-1", EndedBy.APP).record
    world.parking.records.credit(session.id, "c-1", 5_000, "meter fault")

    lines = list(
        attribution(world).revenue_lines(ledger_movements(world.container.ledger, 0, head(world)))
    )

    parking = [(x.category, x.origin, x.amount_vnd) for x in lines if isinstance(x, OperatorLine)]
    assert parking[-1] == (Category.PARKING_REVERSAL, Origin.PARKING_RECORD, -5_000)
    assert sum(amount for *_, amount in parking[:-1]) == record.fee_vnd
    assert {x.origin_id for x in lines if isinstance(x, OperatorLine)} == {
        session.id.hex,
        record.id.hex,
    }


def test_a_late_cancellation_fee_goes_to_the_reservation_operator(world: ParkingWorld) -> None:
    booked = world.book(start_in_hours=2).reservation
    world.clock.advance(61 * 60)
    cancelled = world.parking.reservations.cancel(booked.reservation_id, "cancel-1")

    lines = list(
        attribution(world).revenue_lines(ledger_movements(world.container.ledger, 0, head(world)))
    )

    [line] = [x for x in lines if isinstance(x, OperatorLine)]
    assert (line.operator_id, line.origin, line.amount_vnd) == (
        OPERATOR,
        Origin.PARKING_RESERVATION,
        cancelled.fee_vnd,
    )
    assert cancelled.fee_vnd > 0


def test_a_cut_off_leaves_a_later_event_for_the_next_cycle_whatever_its_clock(
    world: ParkingWorld,
) -> None:
    rider = Rider(world)
    rider.tap(BUS_01, 120)
    rider.tap(BUS_01, 140)
    cut_off = head(world)
    # Committed after the cut with a clock set back before every event of the first cycle.
    world.clock.now = MORNING - timedelta(hours=2)
    world.container.ledger.execute(TopUp(world.account_id, 20_000, "late-pay"))
    rider.tap(BUS_01, 200)
    rider.tap(BUS_01, 220)

    first = list(ledger_movements(world.container.ledger, 0, cut_off))
    second = list(ledger_movements(world.container.ledger, cut_off, head(world)))

    assert second[0].movement.reference == "top-up:late-pay"
    assert "top-up:late-pay" not in [m.movement.reference for m in first]
    ids = [m.notification_id for m in first + second]
    assert ids == sorted(set(ids))
    assert max(m.notification_id for m in first) <= cut_off < second[0].notification_id
    engine = attribution(world)
    assert totals(list(engine.revenue_lines(first))) == {BUS: 10_000}
    assert totals(list(engine.revenue_lines(second))) == {BUS: 10_000}


def test_a_cut_off_the_store_has_not_reached_is_refused(world: ParkingWorld) -> None:
    with pytest.raises(CutOffBeyondHead):
        list(ledger_movements(world.container.ledger, 0, head(world) + 1))


def test_small_sections_read_the_same_movements_in_the_same_order(world: ParkingWorld) -> None:
    a_day(world)
    whole = list(ledger_movements(world.container.ledger, 0, head(world)))
    small = list(ledger_movements(world.container.ledger, 0, head(world), section_max=2))
    assert small == whole
    assert len(whole) > 4


def test_holds_move_no_revenue_a_posted_hold_moves_what_was_posted_and_a_close_pays_out(
    world: ParkingWorld,
) -> None:
    ledger = world.container.ledger
    hold_id = f"parking:{uuid4().hex}:start"
    ledger.execute(PlaceHold(world.account_id, hold_id, 30_000, ttl_s=3600))
    ledger.execute(VoidHold(world.account_id, hold_id))
    after = head(world)
    ledger.execute(PlaceHold(world.account_id, "reload-card-1", 20_000, ttl_s=3600))
    ledger.execute(PostHold(world.account_id, "reload-card-1", 12_000))
    ledger.close_account(world.account_id)

    earlier = list(ledger_movements(ledger, 0, after))
    later = list(ledger_movements(ledger, after, head(world)))

    assert [(m.movement.kind, m.movement.amount_vnd) for m in earlier[-2:]] == [
        (MovementKind.HOLD_PLACED, 30_000),
        (MovementKind.HOLD_VOIDED, 30_000),
    ]
    assert {m.classification.category for m in earlier[-2:] if m.classification} == {
        Category.HOLD_MOVEMENT
    }
    assert [
        (m.classification.category, m.movement.amount_vnd) for m in later if m.classification
    ] == [
        (Category.HOLD_MOVEMENT, 20_000),
        (Category.PURSE_LOAD, 12_000),
        (Category.PAYOUT_TO_RIDER, BALANCE_VND - 12_000),
    ]
    assert list(attribution(world).revenue_lines(earlier + later)) == []


def test_a_journey_not_found_or_a_network_without_operator_is_suspense() -> None:
    missing, unmapped = uuid4(), uuid4()
    journeys = FakeJourneys({unmapped: journey_on("tram_1")})
    engine = RevenueAttribution(OPERATORS, journeys, lambda *_: None)
    lines = [
        *engine.lines_of(item(MovementKind.DEBITED, f"journey:{missing.hex}:leg:0", 9_000)),
        *engine.lines_of(item(MovementKind.DEBITED, f"journey:{unmapped.hex}:leg:0", 8_000)),
        *engine.lines_of(item(MovementKind.DEBITED, f"pass:{uuid4().hex}", 200_000)),
        *engine.lines_of(item(MovementKind.DEBITED, f"parking:{uuid4().hex}:rest", 7_000)),
    ]
    assert [(x.revenue_vnd, x.code, x.reason) for x in lines if isinstance(x, SuspenseLine)] == [
        (9_000, SuspenseCode.JOURNEY_NOT_FOUND, "journey not found"),
        (8_000, SuspenseCode.NETWORK_WITHOUT_OPERATOR, "network 'tram_1' has no operator"),
        (7_000, SuspenseCode.PARKING_NOT_FOUND, "parking session not found"),
    ]


def test_legs_of_one_operator_make_one_line_and_equal_shares_without_fares() -> None:
    journey_id = uuid4()
    journeys = FakeJourneys({journey_id: journey_on("bus_8k", "metro_2a", "bus_10k")})
    engine = RevenueAttribution(OPERATORS, journeys, lambda *_: None)

    lines = engine.lines_of(item(MovementKind.DEBITED, f"journey:{journey_id.hex}:leg:2", 10_000))

    # Equal thirds: 3,334 (the first leg takes the dong left), 3,333, 3,333.
    assert [(x.operator_id, x.amount_vnd) for x in lines if isinstance(x, OperatorLine)] == [
        (BUS, 3_334 + 3_333),
        (METRO, 3_333),
    ]


def test_a_parking_operator_outside_the_map_is_suspense() -> None:
    engine = RevenueAttribution(OPERATORS, FakeJourneys({}), lambda *_: "someone-else")
    [line] = engine.lines_of(item(MovementKind.DEBITED, f"parking:{uuid4().hex}:rest", 7_000))
    assert isinstance(line, SuspenseLine)
    assert line.code is SuspenseCode.PARKING_OPERATOR_UNKNOWN
    assert line.reason == "parking operator 'someone-else' is not in the operator map"


def test_the_hanoi_map_gives_every_feed_network_an_operator() -> None:
    networks = (HANOI_FEED_DIR / "networks.txt").read_text().splitlines()[1:]
    for row in networks:
        network_id = row.split(",")[0]
        expected = METRO if network_id.startswith("metro") else BUS
        assert OPERATORS.operator_of_network(network_id) == expected
    assert OPERATORS.parking_operator(OPERATOR) == OPERATOR
    assert OPERATORS.parking_operator(METRO) is None


def test_package_data_ships_every_operator_file() -> None:
    root = Path(clearing.__file__).parent
    config = tomllib.loads((root.parent / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["clearing"]
    shipped = {path for pattern in patterns for path in root.glob(pattern)}
    assert shipped == set((root / "operators").glob("*")) != set()


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"[]",
        b'{"note": "", "operators": [], "networks": {"bus_8k": "nobody"}}',
        b'{"note": "", "operators": [{"operator_id": "p", "name": "P", "kind": "parking"}],'
        b' "networks": {"bus_8k": "p"}}',
        b'{"note": "", "operators": [{"operator_id": "a", "name": "A", "kind": "tram"}],'
        b' "networks": {}}',
        b'{"note": "", "operators": [{"operator_id": "scheme", "name": "S", "kind": "transit"}],'
        b' "networks": {}}',
        b'{"note": "", "operators": [], "networks": {}, "extra": 1}',
    ],
)
def test_a_malformed_operator_file_is_refused(document: bytes) -> None:
    with pytest.raises(ClearingError) as raised:
        parse_operator_file(document)
    assert raised.value.code in (InvalidOperatorMap.code, InvalidOperatorId.code)


# Random movements: the lines and the suspense add up to the revenue, exactly.

KNOWN = [UUID(int=n) for n in range(1, 4)]
JOURNEY_NETWORKS = {
    KNOWN[0]: ["bus_10k"],
    KNOWN[1]: ["bus_8k", "metro_2a", "metro_3"],
    KNOWN[2]: ["metro_2a", "tram_1"],
}


class FakeJourneys:
    def __init__(self, journeys: dict[UUID, Any]) -> None:
        self.journeys = journeys

    def get_journey(self, journey_id: UUID) -> Any:
        return self.journeys.get(journey_id)


def journey_on(*networks: str) -> Any:
    legs = [SimpleNamespace(network_id=network) for network in networks]
    return SimpleNamespace(legs=legs, rider_category="adult", fare_media="mobile_app")


def item(kind: MovementKind, reference: str, amount_vnd: int) -> ClassifiedMovement:
    movement = Movement(uuid4(), kind, reference, amount_vnd)
    try:
        return ClassifiedMovement(1, movement, classify(movement))
    except UnclassifiedMovement as error:
        return ClassifiedMovement(1, movement, None, error.reason)


ids = st.sampled_from([*KNOWN, UUID(int=99)]).map(lambda u: u.hex)
references = st.one_of(
    st.tuples(st.just(MovementKind.TOPPED_UP), st.just("top-up:pay-1")),
    st.tuples(st.just(MovementKind.DEBITED), ids.map(lambda h: f"journey:{h}:leg:0")),
    st.tuples(st.just(MovementKind.HOLD_POSTED), ids.map(lambda h: f"journey:{h}:hold:1")),
    st.tuples(st.just(MovementKind.HOLD_PLACED), ids.map(lambda h: f"journey:{h}:hold:1")),
    st.tuples(st.just(MovementKind.TOPPED_UP), ids.map(lambda h: f"top-up:journey-{h}-refund")),
    st.tuples(st.just(MovementKind.HOLD_POSTED), ids.map(lambda h: f"parking:{h}:start")),
    st.tuples(st.just(MovementKind.DEBITED), ids.map(lambda h: f"parking:{h}:rest")),
    st.tuples(st.just(MovementKind.TOPPED_UP), ids.map(lambda h: f"top-up:parking-credit:{h}:1")),
    st.tuples(st.just(MovementKind.DEBITED), ids.map(lambda h: f"pass:{h}")),
    st.tuples(st.just(MovementKind.DEBITED), st.just("mystery-1")),
)
movements = st.lists(
    st.tuples(references, st.integers(0, 2_000_000)).map(lambda r: item(r[0][0], r[0][1], r[1])),
    max_size=40,
)
fares = st.dictionaries(
    st.sampled_from(["bus_10k", "bus_8k", "metro_2a", "metro_3"]), st.integers(0, 30_000)
)


@settings(max_examples=200, deadline=None)
@given(movements, fares)
def test_lines_and_suspense_add_up_to_the_revenue_movements_exactly(
    items: list[ClassifiedMovement], fare_of: dict[str, int]
) -> None:
    journeys = FakeJourneys({k: journey_on(*networks) for k, networks in JOURNEY_NETWORKS.items()})

    def parking_operator_of(origin: Origin, aggregate_id: UUID) -> str | None:
        return {KNOWN[0]: OPERATOR, KNOWN[1]: "dong-da-parking", KNOWN[2]: "unknown"}.get(
            aggregate_id
        )

    engine = RevenueAttribution(
        OPERATORS,
        journeys,
        parking_operator_of,
        standalone_fare=lambda _journey, leg: fare_of.get(leg.network_id),
    )
    lines = list(engine.revenue_lines(items))

    revenue = sum(
        i.classification.revenue_sign * i.movement.amount_vnd for i in items if i.classification
    )
    attributed = sum(x.amount_vnd for x in lines if isinstance(x, OperatorLine))
    carved_out = sum(x.revenue_vnd for x in lines if isinstance(x, SuspenseLine))
    assert attributed + carved_out == revenue
    # Nothing unclassified is ever revenue, and every line's operator is in the map.
    assert all(
        x.revenue_vnd == 0
        for x in lines
        if isinstance(x, SuspenseLine) and x.code is SuspenseCode.UNCLASSIFIED
    )
    assert {x.operator_id for x in lines if isinstance(x, OperatorLine)} <= set(OPERATORS.operators)
    assert all(x.category is not Category.TOP_UP for x in lines if isinstance(x, OperatorLine))
