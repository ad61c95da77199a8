"""Power cut at any APDU of a reload or a validation: the money moves once or not at all.

The card holds a session whole or not at all (spec/CARD.md); these tests check the layers above:
after recovery the account ledger, the backend's record of the card, and the purse on the card
agree. Power fails in two ways, at every APDU: before the card acts on a command (the emulator's
`tear_after`), or after it acted but before its answer reaches the terminal (`LosesAnswer`), the
case where the card has committed a CLOSE the terminal never heard back from. The cut points are
exhaustive; hypothesis varies the money.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.reader import CardIOError
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import RECORDS_PER_FILE, KeyLevel, Sfi
from hardware.tlc1.records import Environment, Event, EventKind, Purse, is_blank
from hardware.tlc1.terminal import Terminal
from tests.builders.card_tearing import (
    VALIDATION_APDUS,
    VALIDATION_CLOSE_APDU,
    VALIDATION_RATIFY_APDU,
    Cut,
    LosesAnswer,
    cuts,
)
from tests.builders.card_validation import MASTER_KEYS, NOW, SERIAL, Counting
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import TopUp
from ticketing.cards.adapters.key_vault import KeyVault
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.cards.domain.smart_card import ReloadOutcome
from validators.card_desk import CardDesk, Reloaded
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation

SERIAL_HEX = SERIAL.hex()
T0 = datetime.fromtimestamp(NOW, tz=UTC)
NETWORK = 1
# SELECT, OPEN reading the purse, INCREASE, CLOSE, READ to ratify.
RELOAD_APDUS = 5
RELOAD_CLOSE_APDU = 4
MONEY = settings(max_examples=30, deadline=None)


@dataclass
class Rig:
    """A funded account, its card registered in the backend, and the card itself."""

    ledger: Ledger
    service: SmartCards
    card: EmulatedCard
    account_id: UUID
    total_vnd: int  # account posted + purse: no reload or recovery may change it


def terminal(card: EmulatedCard, cut: Cut | None = None) -> Terminal:
    """A new power cycle in a reader, torn as `cut` says: the card counts APDUs from 1 again."""
    card.tear_after = cut.answered if cut is not None and not cut.acted else None
    in_field = LosesAnswer(card, cut.answered + 1) if cut is not None and cut.acted else card
    reader = CardInReader(in_field, "desk", lost_card_errors=(CardTorn,))
    reader.power_on()
    return Terminal(reader, SoftwareSam(MASTER_KEYS))


def new_rig(funds_vnd: int) -> Rig:
    ledger = Ledger(clock=lambda: T0)
    issuer = CardIssuer(
        sealer=KeyVault(os.urandom(32)), account_of=ledger.get_account, clock=lambda: T0
    )
    service = SmartCards(issuer, ledger)
    account_id = ledger.open_account(rider_category=0).id
    ledger.execute(TopUp(account_id, funds_vnd, "seed"))
    service.issue(account_id, serial=SERIAL_HEX, network_id=NETWORK)
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL)
    environment = Environment(
        network_id=NETWORK, issued_on=NOW - 86_400, rider_category=0, account_id=account_id
    )
    CardDesk(terminal(card)).personalise(environment)
    return Rig(ledger, service, card, account_id, funds_vnd)


def rig_with_purse(purse_vnd: int, *, funds_vnd: int) -> Rig:
    """A rig whose card already holds `purse_vnd`, loaded by an untorn reload from the account."""
    rig = new_rig(funds_vnd)
    if purse_vnd:
        assert reload(rig, "opening", purse_vnd) is ReloadOutcome.LOADED
    return rig


def verified_purse(card: EmulatedCard) -> tuple[int, int]:
    """The purse and transaction counter a verified session shows: OPEN at the load level
    reading the purse, CLOSE with no change (the card MAC proves the OPEN answer), ratify.

    `CardDesk.purse()` reads outside any session, so it proves nothing and gives no counter,
    yet `settle_reload` wants both; the recovery has to drive the terminal itself."""
    desk_terminal = terminal(card)
    desk_terminal.select()
    session = desk_terminal.open_session(KeyLevel.LOAD, read=(Sfi.PURSE, 1))
    proof = session.close()
    desk_terminal.ratify(read=(Sfi.PURSE, 1))
    return Purse.decode(session.record or b"").value_vnd, proof.counter


def reload(rig: Rig, reload_id: str, amount_vnd: int, cut: Cut | None = None) -> ReloadOutcome:
    """The desk's reload: read the purse, hold the money, load the card, settle from what the
    card proves. A torn card is settled from a verified session at its next power-up."""
    purse_before = card_purse(rig.card)
    rig.service.start_reload(
        SERIAL_HEX, reload_id=reload_id, amount_vnd=amount_vnd, purse_before_vnd=purse_before
    )
    reloaded: Reloaded | None = None
    try:
        reloaded = CardDesk(terminal(rig.card, cut)).reload(amount_vnd)
    except CardIOError:
        assert cut is not None
    if reloaded is not None:
        assert reloaded.purse_before_vnd == purse_before
        purse_after, counter = reloaded.purse_after_vnd, reloaded.proof.counter
    else:
        purse_after, counter = verified_purse(rig.card)
        assert card_purse(rig.card) == purse_after
    return rig.service.settle_reload(
        SERIAL_HEX, reload_id=reload_id, purse_after_vnd=purse_after, transaction_counter=counter
    )


def tap(rig: Rig, point: TapPoint, at: int, cut: Cut | None = None) -> Validation:
    """One tap; a session the card proved is recorded upstream, as its tap record would be."""
    validator = CardValidator(
        terminal(rig.card, cut), point, denied_serials=frozenset(), clock=lambda: at
    )
    result = validator.validate()
    if result.proof is not None and result.purse_after_vnd is not None:
        rig.service.record_session(
            SERIAL_HEX, purse_vnd=result.purse_after_vnd, transaction_counter=result.proof.counter
        )
    return result


def card_purse(card: EmulatedCard) -> int:
    return CardDesk(terminal(card)).purse()[1]


def card_events(card: EmulatedCard) -> list[tuple[int, int, EventKind]]:
    reader = terminal(card)
    reader.select()
    records = range(1, RECORDS_PER_FILE[Sfi.EVENT_LOG] + 1)
    raws = [reader.read_record(Sfi.EVENT_LOG, record) for record in records]
    events = [Event.decode(raw) for raw in raws if not is_blank(raw)]
    return [(event.at, event.amount, event.kind) for event in events]


def bus(fare_vnd: int) -> TapPoint:
    return TapPoint(
        network_id=NETWORK,
        location=32,
        validator=77,
        kind=EventKind.BUS_BOARDING,
        fare_vnd=fare_vnd,
    )


def test_the_cut_points_cover_every_apdu_of_a_reload_and_of_a_validation() -> None:
    rig = new_rig(100_000)
    sam = SoftwareSam(MASTER_KEYS)
    desk_reader = Counting(rig.card)
    desk_reader.power_on()
    CardDesk(Terminal(desk_reader, sam)).reload(10_000)
    gate_reader = Counting(rig.card)
    gate_reader.power_on()
    validator = CardValidator(
        Terminal(gate_reader, sam), bus(8_000), denied_serials=frozenset(), clock=lambda: NOW
    )
    assert validator.validate().outcome is Outcome.CHARGED
    assert (desk_reader.apdus, gate_reader.apdus) == (RELOAD_APDUS, VALIDATION_APDUS)


@pytest.mark.parametrize("cut", cuts(RELOAD_APDUS), ids=str)
@MONEY
@given(
    purse_before_vnd=st.integers(0, 2_000_000),
    amount_vnd=st.integers(1, 2_000_000),
    spare_vnd=st.integers(0, 100_000),
)
def test_a_reload_torn_at_any_apdu_moves_the_money_once_or_not_at_all(
    cut: Cut | None, purse_before_vnd: int, amount_vnd: int, spare_vnd: int
) -> None:
    rig = rig_with_purse(purse_before_vnd, funds_vnd=purse_before_vnd + amount_vnd + spare_vnd)
    posted_before = rig.ledger.get_account(rig.account_id).posted_vnd

    outcome = reload(rig, "torn", amount_vnd, cut)

    committed = cut is None or cut.reached(RELOAD_CLOSE_APDU)
    loaded_vnd = amount_vnd if committed else 0
    purse_after = card_purse(rig.card)
    assert purse_after == purse_before_vnd + loaded_vnd
    assert outcome is (ReloadOutcome.LOADED if committed else ReloadOutcome.NOT_LOADED)
    account = rig.ledger.get_account(rig.account_id)
    assert account.posted_vnd == posted_before - loaded_vnd
    assert (account.pending_vnd, account.holds) == (0, {})
    assert account.posted_vnd + purse_after == rig.total_vnd
    backend_card = rig.service.get(SERIAL_HEX)
    assert (backend_card.purse_vnd, backend_card.open_reloads) == (purse_after, {})


# The cut whose CLOSE the card committed but whose answer was lost has its own test below.
CLOSE_ANSWER_LOST = Cut(VALIDATION_CLOSE_APDU - 1, acted=True)


@pytest.mark.parametrize(
    "cut", [c for c in cuts(VALIDATION_APDUS) if c != CLOSE_ANSWER_LOST], ids=str
)
@MONEY
@given(
    fare_vnd=st.integers(1, 50_000),
    spare_vnd=st.integers(0, 1_000_000),
    retap_after_s=st.integers(1, 30),
)
def test_a_validation_torn_at_any_apdu_charges_one_fare_and_logs_one_event(
    cut: Cut | None, fare_vnd: int, spare_vnd: int, retap_after_s: int
) -> None:
    purse_before = fare_vnd + spare_vnd
    rig = rig_with_purse(purse_before, funds_vnd=purse_before)
    point = bus(fare_vnd)

    first = tap(rig, point, NOW, cut)
    retap = tap(rig, point, NOW + retap_after_s)

    committed = cut is None or cut.reached(VALIDATION_CLOSE_APDU)
    ratified = cut is None or cut.reached(VALIDATION_RATIFY_APDU)
    if not committed:
        expected = (Outcome.CARD_LOST, Outcome.CHARGED)  # nothing written: the re-tap pays
    elif not ratified:
        expected = (Outcome.CHARGED, Outcome.RETAP_AFTER_TEAR)  # paid, never saw the green
    else:
        expected = (Outcome.CHARGED, Outcome.PASSBACK)
    assert (first.outcome, retap.outcome) == expected
    assert first.charged_vnd + retap.charged_vnd == fare_vnd
    purse_after = card_purse(rig.card)
    assert purse_after == purse_before - fare_vnd
    paid_at = NOW if committed else NOW + retap_after_s
    assert card_events(rig.card) == [(paid_at, fare_vnd, EventKind.BUS_BOARDING)]
    assert rig.service.get(SERIAL_HEX).purse_vnd == purse_after


def test_a_fare_whose_close_answer_was_lost_still_reaches_the_backend() -> None:
    # The card commits the CLOSE (purse debited, event written) and power fails before its
    # answer arrives; the re-tap is rightly let through free, and it closes its session so the
    # card proves the earlier ride: that proof is the tap record of the fare.
    fare_vnd, purse_before = 8_000, 50_000
    rig = rig_with_purse(purse_before, funds_vnd=purse_before)

    first = tap(rig, bus(fare_vnd), NOW, CLOSE_ANSWER_LOST)
    retap = tap(rig, bus(fare_vnd), NOW + 5)

    assert first.outcome is Outcome.CARD_LOST
    assert first.proof is None
    assert retap.outcome is Outcome.RETAP_AFTER_TEAR
    assert retap.charged_vnd == 0  # nothing new was charged by the re-tap itself
    assert card_purse(rig.card) == purse_before - fare_vnd
    assert card_events(rig.card) == [(NOW, fare_vnd, EventKind.BUS_BOARDING)]
    assert retap.proof is not None
    assert retap.recovered is not None
    assert (retap.recovered.at, retap.recovered.amount) == (NOW, fare_vnd)
    assert rig.service.get(SERIAL_HEX).purse_vnd == purse_before - fare_vnd
