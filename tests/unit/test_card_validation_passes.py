"""A pass on the card covering the ride: let through with no purse debit, the event naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.commands import ReadRecord
from hardware.tlc1.constants import Sfi
from hardware.tlc1.records import Contract, Event, EventKind
from hardware.tlc1.terminal import Terminal
from tests.builders.card_validation import (
    MASTER_KEYS,
    NETWORK,
    NOW,
    Counting,
    issued_card,
    purse,
    terminal,
)
from tests.doubles import SecondsClock
from tests.validator_fakes import config_body
from ticketing.fares.loader import HANOI_FEED_DIR, load_feed
from validators.card_desk import CardDesk, ContractsFull
from validators.card_passes import CARD_PRODUCT_IDS, CardPass, PassRules, card_passes, card_route
from validators.card_station import CardStation, tap_point
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation
from validators.gate import Gate
from validators.outbox import Outbox
from validators.trust import Trust

PASSES = card_passes(load_feed(HANOI_FEED_DIR))
PRODUCT = {fare_product_id: number for number, fare_product_id in CARD_PRODUCT_IDS.items()}
DAY_S = 86_400
# A Line 2A entry gate: its config names the feed's network `metro_2a`.
GATE_2A = TapPoint(
    network_id=NETWORK,
    location=1,
    validator=101,
    kind=EventKind.METRO_ENTRY,
    fare_vnd=15_000,
    passes=PassRules.at(PASSES, fare_network_id="metro_2a", route_id="2A"),
)
EXIT_2A = TapPoint(
    network_id=NETWORK,
    location=3,
    validator=302,
    kind=EventKind.METRO_EXIT,
    fare_vnd=15_000,
    passes=GATE_2A.passes,
)


def monthly_2a(**changes: Any) -> Contract:
    fields: dict[str, Any] = {
        "product": PRODUCT["metro_2a_monthly"],
        "valid_from": NOW - 10 * DAY_S,
        "valid_until": NOW + 20 * DAY_S,
        "route": 0,
        "network_id": NETWORK,
    }
    return Contract(**(fields | changes))


def card_holding(*contracts: Contract) -> EmulatedCard:
    card = issued_card()
    for contract in contracts:
        CardDesk(terminal(card)[0]).add_contract(contract)
    return card


def tap(card: EmulatedCard, point: TapPoint = GATE_2A, at: int = NOW) -> tuple[Validation, int]:
    term, reader = terminal(card)
    result = CardValidator(term, point, denied_serials=frozenset(), clock=lambda: at).validate()
    return result, reader.apdus


def last_event(card: EmulatedCard) -> Event:
    return Event.decode(card.image.records[Sfi.EVENT_LOG][0])


def test_a_valid_pass_covers_the_ride_without_a_purse_debit_in_at_most_eight_apdus() -> None:
    card = card_holding(monthly_2a())
    result, apdus = tap(card)
    assert (result.outcome, result.charged_vnd, result.contract) == (Outcome.CONTRACT_PAID, 0, 1)
    assert result.accepted
    assert result.proof is not None
    assert apdus <= 8
    assert purse(card) == 50_000
    event = last_event(card)
    assert (event.contract, event.amount, event.kind) == (1, 0, EventKind.METRO_ENTRY)


def test_the_event_names_the_record_of_the_pass_that_covered_the_ride() -> None:
    expired = monthly_2a(valid_from=NOW - 40 * DAY_S, valid_until=NOW - 10 * DAY_S)
    card = card_holding(expired, monthly_2a())
    result, _ = tap(card)
    assert (result.outcome, result.contract) == (Outcome.CONTRACT_PAID, 2)
    assert last_event(card).contract == 2


@pytest.mark.parametrize(
    "contract",
    [
        monthly_2a(valid_from=NOW - 40 * DAY_S, valid_until=NOW - 10 * DAY_S),
        monthly_2a(valid_from=NOW + 1, valid_until=NOW + DAY_S),
        monthly_2a(valid_until=NOW),  # valid up to, not including, its last second
        monthly_2a(network_id=NETWORK + 1),
        monthly_2a(product=PRODUCT["metro_3_monthly"]),  # Line 3 only
        monthly_2a(product=PRODUCT["bus_monthly_all_routes"]),  # buses only
        monthly_2a(product=999),  # no product has that number
        monthly_2a(route=7),  # restricted to a route this gate is not on
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "ends-now",
        "other-card-network",
        "other-line",
        "bus-pass",
        "unknown-product",
        "other-route",
    ],
)
def test_a_pass_that_does_not_cover_the_ride_leaves_the_purse_to_pay(contract: Contract) -> None:
    card = card_holding(contract)
    result, _ = tap(card)
    assert (result.outcome, result.contract) == (Outcome.CHARGED, 0)
    assert purse(card) == 50_000 - GATE_2A.fare_vnd
    assert last_event(card).contract == 0


def test_a_metro_exit_with_no_entry_is_covered_by_the_pass() -> None:
    card = card_holding(monthly_2a())
    result, _ = tap(card, EXIT_2A)
    assert (result.outcome, result.contract) == (Outcome.CONTRACT_PAID, 1)
    assert purse(card) == 50_000


def test_a_pass_holder_tapping_again_at_the_same_gate_is_a_passback() -> None:
    card = card_holding(monthly_2a())
    tap(card)
    assert tap(card, at=NOW + 10)[0].outcome is Outcome.PASSBACK


def test_a_bus_pass_for_one_route_covers_rides_on_that_route_only() -> None:
    on_18 = tap_point(bus_config("18"), PASSES)
    on_31 = tap_point(bus_config("31"), PASSES)
    assert on_18 is not None
    assert on_31 is not None
    line_pass = monthly_2a(product=PRODUCT["bus_monthly_one_route"], route=18)
    assert tap(card_holding(line_pass), on_18)[0].outcome is Outcome.CONTRACT_PAID
    assert tap(card_holding(line_pass), on_31)[0].outcome is Outcome.CHARGED


def test_where_no_pass_of_the_feed_covers_a_ride_no_contract_is_read() -> None:
    # A validator whose route the feed does not know: no pass can cover a ride there, so the
    # flow is the vectors' own, with no READ of the contracts file.
    config = bus_config("18")
    config["fare_network_id"] = ""
    unknown = tap_point(config, PASSES)
    assert unknown is not None
    assert not unknown.passes
    card = card_holding(monthly_2a(product=PRODUCT["bus_monthly_all_routes"]))
    reader = Recording(card)
    reader.power_on()
    term = Terminal(reader, SoftwareSam(MASTER_KEYS))
    result = CardValidator(term, unknown, denied_serials=frozenset(), clock=lambda: NOW).validate()
    assert result.outcome is Outcome.CHARGED
    assert ReadRecord(Sfi.CONTRACTS, 1).apdu not in reader.sent
    assert len(reader.sent) == 7  # SELECT OPEN READ DECREASE APPEND CLOSE READ


class Recording(Counting):
    def __init__(self, card: EmulatedCard) -> None:
        super().__init__(card)
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return super().transmit(apdu)


def bus_config(route_id: str) -> dict[str, Any]:
    config = config_body(9)
    config["validator"] |= {"kind": "bus", "route_id": route_id, "direction": ""}
    config["fare_network_id"] = "bus_8k"
    return config


def test_the_hanoi_feed_gives_the_metro_passes_card_numbers() -> None:
    assert {p.fare_product_id for p in PASSES.values()} == {
        "metro_2a_day",
        "metro_3_day",
        "metro_2a_monthly",
        "metro_3_monthly",
        "bus_monthly_all_routes",
        "bus_monthly_one_route",
    }
    assert PASSES[PRODUCT["metro_2a_day"]].network_ids == frozenset({"metro_2a"})
    assert 0 not in CARD_PRODUCT_IDS  # 0 is an empty contract slot
    assert len(set(CARD_PRODUCT_IDS.values())) == len(CARD_PRODUCT_IDS)


def test_a_one_route_pass_covers_only_the_route_it_names() -> None:
    one_route = CardPass(7, "bus_line_pass", frozenset({"bus_8k"}), one_route=True)
    on_18 = PassRules.at({7: one_route}, fare_network_id="bus_8k", route_id="18")
    on_31 = PassRules.at({7: one_route}, fare_network_id="bus_8k", route_id="31")
    pass_18 = monthly_2a(product=7, route=18)
    assert on_18.covers(pass_18, network_id=NETWORK, now=NOW)
    assert not on_31.covers(pass_18, network_id=NETWORK, now=NOW)
    # A one-route pass naming no route covers none.
    assert not on_18.covers(monthly_2a(product=7), network_id=NETWORK, now=NOW)


@pytest.mark.parametrize(
    ("route_id", "number"), [("18", 18), ("01", 1), ("09A", None), ("0", None), ("", None)]
)
def test_a_card_names_a_route_by_its_decimal_id_or_not_at_all(
    route_id: str, number: int | None
) -> None:
    assert card_route(route_id) == number


def test_the_desk_fills_the_first_empty_contract_and_refuses_a_fifth() -> None:
    card = issued_card()
    desk = CardDesk(terminal(card)[0])
    records = [desk.add_contract(monthly_2a())[0] for _ in range(4)]
    assert records == [1, 2, 3, 4]
    with pytest.raises(ContractsFull):
        desk.add_contract(monthly_2a())


def test_a_metro_gate_with_a_pass_on_the_card_lets_it_through_and_records_it(
    tmp_path: Path,
) -> None:
    # The station builds the gate's pass rules from its synced config and the feed's passes.
    card = card_holding(monthly_2a())
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    gate = Gate(outbox, Trust(config=config_body(9)), clock=SecondsClock(NOW))
    reader = CardInReader(card, lost_card_errors=(CardTorn,))
    station = CardStation(
        reader, SoftwareSam(MASTER_KEYS), gate, clock=SecondsClock(NOW), passes=PASSES
    )
    decision = station.tap_once(0)
    assert decision is not None
    assert (decision.accepted, decision.reason, decision.charged_vnd) == (
        True,
        "paid_by_contract",
        0,
    )
    stored = outbox.get(decision.seq or 0)
    assert stored is not None
    assert stored.upload_fields["proof"]["level"] == 3
    assert purse(card) == 50_000
    outbox.close()
