"""Card taps at a validator and reloads at the desk, against the TLC1 emulator in process."""

from __future__ import annotations

import pytest

from hardware.emulator.card import EmulatedCard
from hardware.reader import CardIOError
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.records import EventKind
from tests.builders.card_validation import (
    BUS,
    MASTER_KEYS,
    METRO_IN,
    NETWORK,
    NOW,
    SERIAL,
    issued_card,
    purse,
    terminal,
)
from validators.card_desk import CardDesk
from validators.card_validation import (
    METRO_RIDE_MAX_S,
    PASSBACK_WINDOW_S,
    RETAP_WINDOW_S,
    CardValidator,
    Outcome,
    TapPoint,
)

METRO_OUT = TapPoint(
    network_id=NETWORK, location=3, validator=302, kind=EventKind.METRO_EXIT, fare_vnd=17_000
)


def tap(
    card: EmulatedCard,
    *,
    at: int = NOW,
    denied: frozenset[str] = frozenset(),
    point: TapPoint = BUS,
) -> tuple[Outcome, int]:
    term, reader = terminal(card)
    result = CardValidator(term, point, denied_serials=denied, clock=lambda: at).validate()
    return result.outcome, reader.apdus


def test_a_bus_ride_takes_the_fare_in_at_most_eight_apdus() -> None:
    card = issued_card()
    outcome, apdus = tap(card)
    assert outcome is Outcome.CHARGED
    assert apdus <= 8
    assert purse(card) == 42_000


def test_the_reload_adds_to_the_purse_and_proves_the_session() -> None:
    card = issued_card(purse_vnd=0)
    reloaded = CardDesk(terminal(card)[0]).reload(30_000)
    assert (reloaded.purse_before_vnd, reloaded.purse_after_vnd) == (0, 30_000)
    assert reloaded.proof.level is KeyLevel.LOAD
    assert purse(card) == 30_000


def test_a_second_tap_at_the_same_point_within_a_minute_is_a_passback() -> None:
    card = issued_card()
    tap(card)
    assert tap(card, at=NOW + PASSBACK_WINDOW_S - 1)[0] is Outcome.PASSBACK
    assert tap(card, at=NOW + PASSBACK_WINDOW_S + 1)[0] is Outcome.CHARGED
    assert purse(card) == 34_000


def test_an_empty_purse_is_refused_and_nothing_is_written() -> None:
    card = issued_card(purse_vnd=5_000)
    assert tap(card)[0] is Outcome.INSUFFICIENT_PURSE
    assert purse(card) == 5_000


def test_a_denied_serial_is_refused_before_any_session() -> None:
    card = issued_card()
    outcome, apdus = tap(card, denied=frozenset({SERIAL.hex()}))
    assert (outcome, apdus) == (Outcome.CARD_DENIED, 1)
    assert purse(card) == 50_000


def test_blank_and_foreign_cards_are_refused() -> None:
    assert tap(EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL))[0] is Outcome.NOT_PERSONALISED
    assert tap(issued_card(network_id=9))[0] is Outcome.OTHER_NETWORK


def test_a_card_torn_before_ratifying_is_let_through_again_without_a_second_charge() -> None:
    card = issued_card()
    term, _ = terminal(card)
    # SELECT, OPEN, READ, DECREASE, APPEND, CLOSE: the card commits, then leaves the field.
    card.tear_after = 6
    result = CardValidator(term, BUS, denied_serials=frozenset(), clock=lambda: NOW).validate()
    assert result.outcome is Outcome.CHARGED  # the CLOSE answered; only the ratifying READ failed
    card.tear_after = None
    assert tap(card, at=NOW + 5)[0] is Outcome.RETAP_AFTER_TEAR
    assert purse(card) == 42_000
    assert tap(card, at=NOW + RETAP_WINDOW_S + 5)[0] is Outcome.CHARGED  # a new ride later


def test_a_card_torn_before_close_keeps_its_purse_and_pays_once_on_the_retap() -> None:
    card = issued_card()
    term, _ = terminal(card)
    card.tear_after = 4  # SELECT, OPEN, READ, DECREASE; the APPEND never arrives
    result = CardValidator(term, BUS, denied_serials=frozenset(), clock=lambda: NOW).validate()
    assert result.outcome is Outcome.CARD_LOST
    card.tear_after = None
    assert purse(card) == 50_000
    assert tap(card, at=NOW + 3)[0] is Outcome.CHARGED
    assert purse(card) == 42_000


def test_a_torn_reload_leaves_the_purse_untouched() -> None:
    card = issued_card(purse_vnd=0)
    term, _ = terminal(card)
    card.tear_after = 3  # SELECT, OPEN, INCREASE; the CLOSE never arrives
    with pytest.raises(CardIOError):
        CardDesk(term).reload(20_000)
    card.tear_after = None
    assert purse(card) == 0


METRO_ELSEWHERE = TapPoint(
    network_id=NETWORK, location=7, validator=5, kind=EventKind.METRO_ENTRY, fare_vnd=15_000
)


def torn_reload_after_a_ride() -> tuple[EmulatedCard, CardDesk, bool]:
    card = issued_card()
    tap(card)
    term, _ = terminal(card)
    card.tear_after = 4  # SELECT, OPEN, INCREASE, CLOSE: committed, the ratifying READ is lost
    desk = CardDesk(term)
    reloaded = desk.reload(10_000)
    card.tear_after = None
    return card, desk, reloaded.ratified


def test_the_desk_learns_of_a_torn_reload_and_ratifies_it_when_the_card_comes_back() -> None:
    # Unratified, the card would look to any validator like a ride torn a moment ago (CARD.md
    # lets it through free); the desk clears the flag before the rider walks to a gate.
    card, desk, ratified = torn_reload_after_a_ride()
    assert not ratified
    desk.terminal = terminal(card)[0]  # the card is presented again
    assert desk.ratify() == 50_000 - 8_000 + 10_000
    assert tap(card, at=NOW + 90, point=METRO_ELSEWHERE)[0] is Outcome.CHARGED
    assert purse(card) == 50_000 - 8_000 + 10_000 - 15_000


def test_a_torn_reload_never_ratified_frees_no_ride_once_the_last_ride_is_old() -> None:
    card, _, _ = torn_reload_after_a_ride()
    later = NOW + RETAP_WINDOW_S + 1
    assert tap(card, at=later, point=METRO_ELSEWHERE)[0] is Outcome.CHARGED


def test_a_metro_exit_after_an_entry_takes_nothing_more_from_the_purse() -> None:
    card = issued_card()
    assert tap(card, point=METRO_IN)[0] is Outcome.CHARGED
    outcome, apdus = tap(card, at=NOW + 1_200, point=METRO_OUT)
    assert outcome is Outcome.PAID_AT_ENTRY
    assert apdus <= 8
    assert purse(card) == 50_000 - METRO_IN.fare_vnd


def test_the_exit_proves_its_session_and_reports_the_purse_it_left() -> None:
    card = issued_card()
    tap(card, point=METRO_IN)
    term, _ = terminal(card)
    clock = lambda: NOW + 600  # noqa: E731
    result = CardValidator(term, METRO_OUT, denied_serials=frozenset(), clock=clock).validate()
    assert (result.outcome, result.charged_vnd) == (Outcome.PAID_AT_ENTRY, 0)
    assert result.purse_after_vnd == 50_000 - METRO_IN.fare_vnd
    assert result.proof is not None
    assert result.accepted


def test_a_metro_exit_with_no_entry_on_the_card_pays_the_dearest_ride_ending_there() -> None:
    card = issued_card()
    tap(card)  # a bus ride: not an entry
    assert tap(card, at=NOW + 1_200, point=METRO_OUT)[0] is Outcome.CHARGED
    assert purse(card) == 50_000 - BUS.fare_vnd - METRO_OUT.fare_vnd


def test_an_entry_older_than_a_ride_does_not_pay_the_exit() -> None:
    card = issued_card()
    tap(card, point=METRO_IN)
    assert tap(card, at=NOW + METRO_RIDE_MAX_S + 1, point=METRO_OUT)[0] is Outcome.CHARGED
    assert purse(card) == 50_000 - METRO_IN.fare_vnd - METRO_OUT.fare_vnd


def test_a_second_exit_right_after_the_first_is_a_passback_not_a_free_ride() -> None:
    card = issued_card()
    tap(card, point=METRO_IN)
    tap(card, at=NOW + 600, point=METRO_OUT)
    assert tap(card, at=NOW + 620, point=METRO_OUT)[0] is Outcome.PASSBACK
    # Later, the exit on the card is no entry: the next exit pays the dearest ride.
    assert tap(card, at=NOW + 900, point=METRO_OUT)[0] is Outcome.CHARGED
    assert purse(card) == 50_000 - METRO_IN.fare_vnd - METRO_OUT.fare_vnd
