"""The card station serves one tap per presentation: a card held in the field after its decision
is the same tap until it leaves, never a second ride."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.records import EventKind
from tests.doubles import SecondsClock
from tests.tap_media import MASTER_KEYS, NETWORK, card_terminal, personalised_card
from tests.validator_fakes import NOW, config_body
from validators.card_desk import CardDesk
from validators.card_station import CardStation
from validators.card_validation import CardValidator, Outcome, TapPoint
from validators.gate import Gate
from validators.outbox import Outbox
from validators.trust import Trust

PURSE_VND = 50_000
GATE_FARE_VND = config_body(9)["media"][0]["max_fare_vnd"]
# The neighbouring entry gate, where the card was torn away: another location than the station's.
NEIGHBOUR = TapPoint(NETWORK, 31, 8, EventKind.METRO_ENTRY, GATE_FARE_VND)
# SELECT, OPEN, READ the last event, DECREASE, APPEND, CLOSE: the ratifying READ is lost.
TEAR_AFTER_CLOSE = 6
TORN_BEFORE_S = 5


def station_with(card: EmulatedCard, tmp_path: Path) -> tuple[CardStation, CardInReader, Outbox]:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    reader = CardInReader(card, "gate", lost_card_errors=(CardTorn,))
    gate = Gate(outbox, Trust(config=config_body(9)), clock=SecondsClock(NOW))
    station = CardStation(reader, SoftwareSam(MASTER_KEYS), gate, clock=SecondsClock(NOW))
    return station, reader, outbox


def purse(card: EmulatedCard) -> int:
    return CardDesk(card_terminal(card)).purse()[1]


def test_a_card_held_in_the_field_after_its_decision_is_not_tapped_again_until_it_leaves(
    tmp_path: Path,
) -> None:
    card = personalised_card(uuid4(), purse_vnd=PURSE_VND)
    station, reader, outbox = station_with(card, tmp_path)
    first = station.tap_once(0)
    assert first is not None
    assert (first.accepted, first.reason, first.seq) == (True, "charged", 1)
    assert station.tap_once(0) is None  # still in the field: the same tap
    assert outbox.last_seq() == 1
    reader.remove_card()
    assert station.tap_once(0) is None  # the station sees it leave
    reader.insert_card()  # and presented again: a tap of its own
    again = station.tap_once(0)
    assert again is not None
    assert (again.accepted, again.reason, again.seq) == (False, "passback", 2)
    outbox.close()


def test_a_torn_card_recovered_here_and_held_in_the_field_is_charged_once(
    tmp_path: Path,
) -> None:
    card = personalised_card(uuid4(), purse_vnd=PURSE_VND)
    card.tear_after = TEAR_AFTER_CLOSE
    torn_at = NOW - TORN_BEFORE_S
    torn = CardValidator(
        card_terminal(card), NEIGHBOUR, denied_serials=frozenset(), clock=lambda: torn_at
    ).validate()
    card.tear_after = None
    assert torn.outcome is Outcome.CHARGED
    station, _, outbox = station_with(card, tmp_path)
    recovered = station.tap_once(0)
    assert recovered is not None
    assert (recovered.accepted, recovered.reason, recovered.charged_vnd) == (
        True,
        "retap_after_tear",
        0,
    )
    # Ratified now, with its last event at the neighbouring gate: looked at again, it would pass
    # for a new entry here and pay a second time.
    assert station.tap_once(0) is None
    assert outbox.last_seq() == 1
    assert purse(card) == PURSE_VND - GATE_FARE_VND
    outbox.close()
