"""A TLC1 card torn from the field at any moment never holds half a transaction (spec/CARD.md).

The script is a card's first day: personalise (environment and a pass), reload the purse, validate
on a bus (debit and an event). Power is cut after every possible APDU; after power comes back, the
card's files are exactly what they were before the session that was cut, or exactly what that
session wrote if its CLOSE was answered. Replaying the rest of the day then completes it once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.emulator.image import CardImage
from hardware.tlc1.constants import CHALLENGE_BYTES, PURSE_MAX_VND, RECORDS_PER_FILE, KeyLevel, Sfi
from hardware.tlc1.records import Contract, Environment, Event, EventKind, Purse
from tests.builders.card_emulator import (
    MASTER_KEYS,
    OK,
    SERIAL,
    Terminal,
    append_apdu,
    blank_card,
    decrease_apdu,
    increase_apdu,
    read_apdu,
    select_apdu,
    update_apdu,
)

Files = tuple[bytes, ...]
ACCOUNT_ID_INT = 0x6F1C2B9E3D4A4B5C8D7E0123456789AB


@dataclass(frozen=True)
class Session:
    """One secure session of the script, then the command that ratifies it."""

    level: KeyLevel
    open_p2: int
    apdus: tuple[bytes, ...]
    ratify: bytes

    @property
    def apdu_count(self) -> int:
        return 1 + len(self.apdus) + 1 + 1  # OPEN, the changes and reads, CLOSE, ratification


def first_day(reload_vnd: int, fare_vnd: int, at: int) -> list[Session]:
    environment = Environment(
        network_id=257, issued_on=at, rider_category=0, account_id=UUID(int=ACCOUNT_ID_INT)
    )
    monthly_pass = Contract(
        product=30, valid_from=at, valid_until=at + 30 * 86_400, route=0, network_id=257
    )
    boarding = Event(
        at=at + 60,
        kind=EventKind.BUS_BOARDING,
        network_id=257,
        location=12,
        validator=77,
        contract=0,
        amount=fare_vnd,
    )
    return [
        Session(
            KeyLevel.PERSONALISATION,
            0,
            (
                update_apdu(Sfi.ENVIRONMENT, 1, environment.encode()),
                update_apdu(Sfi.CONTRACTS, 1, monthly_pass.encode()),
            ),
            read_apdu(Sfi.ENVIRONMENT),
        ),
        Session(KeyLevel.LOAD, 0, (increase_apdu(reload_vnd),), read_apdu(Sfi.PURSE)),
        Session(
            KeyLevel.DEBIT,
            (Sfi.ENVIRONMENT << 3) | 1,
            (
                read_apdu(Sfi.EVENT_LOG),
                decrease_apdu(fare_vnd),
                append_apdu(Sfi.EVENT_LOG, boarding.encode()),
            ),
            read_apdu(Sfi.EVENT_LOG),
        ),
    ]


def run_session(terminal: Terminal, session: Session, challenge: bytes) -> None:
    assert terminal.open(session.level, session.open_p2, challenge)[-2:] == OK
    for apdu in session.apdus:
        assert terminal.send(apdu)[-2:] == OK
    assert terminal.close()[-2:] == OK
    terminal.card.transmit(session.ratify)


def committed_files(image: CardImage) -> Files:
    records = [
        r for sfi in (Sfi.ENVIRONMENT, Sfi.EVENT_LOG, Sfi.CONTRACTS) for r in image.records[sfi]
    ]
    return (*records, Purse(image.purse_vnd).encode())


def files_read_by_apdu(card: EmulatedCard) -> Files:
    """What a terminal reads from the card: every record of every file."""
    assert card.transmit(select_apdu())[-2:] == OK
    read = []
    for sfi in (Sfi.ENVIRONMENT, Sfi.EVENT_LOG, Sfi.CONTRACTS, Sfi.PURSE):
        for number in range(1, RECORDS_PER_FILE[sfi] + 1):
            response = card.transmit(read_apdu(sfi, number))
            assert response[-2:] == OK
            read.append(response[:-2])
    return tuple(read)


def seeded_challenges(seed: int) -> Callable[[], bytes]:
    source = random.Random(seed)
    return lambda: source.randbytes(CHALLENGE_BYTES)


# SELECT, then each session's OPEN, its APDUs, CLOSE and the ratifying READ.
DAY_APDUS = 1 + sum(session.apdu_count for session in first_day(1, 0, 0))


@pytest.mark.parametrize("tear_after", range(DAY_APDUS + 1))
@settings(max_examples=25, deadline=None)
@given(
    reload_vnd=st.integers(1, PURSE_MAX_VND),
    at=st.integers(0, (1 << 32) - 31 * 86_400),
    challenge=st.binary(min_size=CHALLENGE_BYTES, max_size=CHALLENGE_BYTES),
    seed=st.integers(0, 1 << 32),
    data=st.data(),
)
def test_a_card_torn_after_any_apdu_holds_each_session_whole_or_not_at_all(
    tear_after: int, reload_vnd: int, at: int, challenge: bytes, seed: int, data: st.DataObject
) -> None:
    fare_vnd = data.draw(st.integers(0, reload_vnd), label="fare_vnd")
    sessions = first_day(reload_vnd, fare_vnd, at)

    # The same day without tearing: the files before each session, and at the end.
    untorn = blank_card(challenges=seeded_challenges(seed))
    untorn.transmit(select_apdu())
    boundaries = [committed_files(untorn.image)]
    for session in sessions:
        run_session(Terminal(untorn), session, challenge)
        boundaries.append(committed_files(untorn.image))

    card = blank_card(challenges=seeded_challenges(seed), tear_after=tear_after)
    terminal = Terminal(card)
    completed = 0  # sessions whose CLOSE the card answered
    try:
        card.transmit(select_apdu())
        for session in sessions:
            terminal.open(session.level, session.open_p2, challenge)
            for apdu in session.apdus:
                terminal.send(apdu)
            terminal.close()
            completed += 1
            card.transmit(session.ratify)
    except CardTorn:
        assert tear_after < DAY_APDUS
    card.tear_after = None
    card.power_on()

    assert files_read_by_apdu(card) == boundaries[completed]

    # The rider taps again: the terminal redoes what did not complete, and nothing twice.
    terminal = Terminal(card)
    for session in sessions[completed:]:
        run_session(terminal, session, challenge)
    assert committed_files(card.image) == boundaries[-1]


def test_a_torn_card_answers_nothing_until_it_is_powered_on_again() -> None:
    card = blank_card(tear_after=2)
    assert card.transmit(select_apdu())[-2:] == OK
    assert card.transmit(read_apdu(Sfi.PURSE))[-2:] == OK
    for _ in range(2):
        with pytest.raises(CardTorn):
            card.transmit(read_apdu(Sfi.PURSE))
    assert not card.powered
    card.power_on()
    assert card.transmit(select_apdu())[-2:] == OK


def test_tearing_counts_the_apdus_of_each_power_cycle() -> None:
    card = blank_card(tear_after=1)
    for _ in range(3):
        assert card.transmit(select_apdu())[-2:] == OK
        with pytest.raises(CardTorn):
            card.transmit(select_apdu())
        card.power_on()


def test_a_card_never_powered_on_answers_nothing() -> None:
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL)
    with pytest.raises(CardTorn):
        card.transmit(select_apdu())


def test_the_torn_apdu_is_not_processed() -> None:
    card = blank_card()
    card.transmit(select_apdu())
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    terminal.send(increase_apdu(1_000))
    card.tear_after = 0  # the CLOSE below is the APDU the card never gets
    with pytest.raises(CardTorn):
        terminal.close()
    assert card.image.purse_vnd == 0
    assert not card.in_session
