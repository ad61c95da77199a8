"""The emulated TLC1 card's rules (spec/CARD.md): each status word with a case that gives it and one
that does not, sessions that commit all or nothing, the cyclic log, limits, ratification and the
card image kept between runs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.emulator.image import CardImage, CardImageError, ImageFile
from hardware.emulator.key_file import KeyFileError, master_keys_from_json
from hardware.tlc1.constants import (
    CHANGES_PER_SESSION_MAX,
    LEVELS_ALLOWED,
    PURSE_MAX_VND,
    RECORD_BYTES,
    RECORDS_PER_FILE,
    Ins,
    KeyLevel,
    Sfi,
)
from hardware.tlc1.crypto import card_mac
from hardware.tlc1.records import Contract, Event, EventKind
from tests.builders.card_emulator import (
    ABORT,
    MASTER_KEYS,
    OK,
    SERIAL,
    VECTORS,
    Terminal,
    append_apdu,
    close_apdu,
    decrease_apdu,
    increase_apdu,
    open_apdu,
    read_apdu,
    select_apdu,
    update_apdu,
)

CHANGE_INS = (Ins.UPDATE_RECORD, Ins.APPEND_RECORD, Ins.DECREASE, Ins.INCREASE)
PASS = Contract(product=7, valid_from=1, valid_until=2, route=0, network_id=257).encode()
PURSE_START_VND = 10_000
COMPATIBLE = sorted(LEVELS_ALLOWED)
INCOMPATIBLE = [p for p in itertools.product(Sfi, CHANGE_INS) if p not in LEVELS_ALLOWED]


def event(at: int) -> bytes:
    return Event(
        at=at,
        kind=EventKind.METRO_ENTRY,
        network_id=1,
        location=2,
        validator=3,
        contract=0,
        amount=0,
    ).encode()


def card_with(
    purse_vnd: int = PURSE_START_VND, counter: int = 1000, *, select: bool = True
) -> EmulatedCard:
    image = CardImage.blank(SERIAL)
    image.purse_vnd, image.transaction_counter = purse_vnd, counter
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, image=image)
    card.power_on()
    if select:
        assert card.transmit(select_apdu())[-2:] == OK
    return card


def sw(response: bytes) -> str:
    return response[-2:].hex().upper()


def change_apdu(sfi: Sfi, ins: Ins) -> bytes:
    if ins == Ins.UPDATE_RECORD:
        return update_apdu(sfi, 1, PASS)
    if ins == Ins.APPEND_RECORD:
        return append_apdu(sfi, PASS)
    return decrease_apdu(1, sfi) if ins == Ins.DECREASE else increase_apdu(1, sfi)


def in_session(card: EmulatedCard, level: KeyLevel, apdu: bytes) -> bytes:
    terminal = Terminal(card)
    assert sw(terminal.open(level)) == "9000"
    return terminal.send(apdu)


# --- 6E00 / 6D00 / 6985 "not selected": the checks made before any other ---------------------


@pytest.mark.parametrize("cla", [0x80, 0x94, 0xFF])
def test_any_class_byte_but_00_is_an_unknown_class(cla: int) -> None:
    assert sw(card_with().transmit(bytes([cla]) + read_apdu(Sfi.PURSE)[1:])) == "6E00"


def test_class_00_is_known() -> None:
    assert sw(card_with().transmit(read_apdu(Sfi.PURSE))) == "9000"


def test_unknown_class_outranks_unknown_instruction_and_missing_selection() -> None:
    assert sw(card_with(select=False).transmit(bytes.fromhex("80840000"))) == "6E00"


@pytest.mark.parametrize("ins", [0x84, 0xB0, 0x00, 0xCA])
def test_instructions_outside_the_opcode_table_are_unknown_even_before_select(ins: int) -> None:
    apdu = bytes([0x00, ins, 0x00, 0x00, 0x00])
    assert sw(card_with(select=False).transmit(apdu)) == "6D00"
    assert sw(card_with().transmit(apdu)) == "6D00"


@pytest.mark.parametrize("ins", list(Ins))
def test_every_instruction_of_the_opcode_table_is_known(ins: Ins) -> None:
    assert sw(card_with().transmit(bytes([0x00, ins, 0x00, 0x00]))) != "6D00"


@pytest.mark.parametrize(
    "apdu",
    [
        read_apdu(Sfi.PURSE),
        open_apdu(KeyLevel.DEBIT),
        update_apdu(Sfi.CONTRACTS, 1, PASS),
        append_apdu(Sfi.EVENT_LOG, PASS),
        decrease_apdu(1),
        increase_apdu(1),
        close_apdu(bytes(8)),
        ABORT,
        bytes.fromhex("00B201CC03010203"),  # and a wrong length does not outrank it
    ],
    ids=[
        "read",
        "open",
        "update",
        "append",
        "decrease",
        "increase",
        "close",
        "abort",
        "bad length",
    ],
)
def test_every_command_but_select_needs_the_application_selected(apdu: bytes) -> None:
    assert sw(card_with(select=False).transmit(apdu)) == "6985"


def test_selection_lasts_until_the_power_goes() -> None:
    card = card_with()
    assert sw(card.transmit(read_apdu(Sfi.PURSE))) == "9000"
    card.power_off()
    card.power_on()
    assert sw(card.transmit(read_apdu(Sfi.PURSE))) == "6985"


def test_select_answers_the_fci_with_the_serial() -> None:
    response = card_with(select=False).transmit(select_apdu())
    assert response == bytes.fromhex("6F118405F0544C4331C708") + SERIAL + OK


def test_selecting_another_application_is_file_not_found_and_selects_nothing() -> None:
    card = card_with(select=False)
    assert sw(card.transmit(select_apdu(bytes.fromhex("A0000000031010")))) == "6A82"
    assert sw(card.transmit(read_apdu(Sfi.PURSE))) == "6985"


# --- 6700 wrong length ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "apdu",
    [
        bytes.fromhex("00B201"),  # shorter than a header
        bytes.fromhex("00B201CC05010203"),  # Lc says 5, 3 bytes follow
        bytes.fromhex("00B201CC0301020300AA"),  # two bytes after the data
        bytes.fromhex("00B201CC0301020300"),  # READ RECORD carries no data
        open_apdu(KeyLevel.DEBIT, challenge=bytes(4)),
        update_apdu(Sfi.CONTRACTS, 1, PASS[:-1]),
        append_apdu(Sfi.EVENT_LOG, PASS + b"\x00"),
        bytes.fromhex("003001C8020001"),  # DECREASE with a 2-byte amount
        close_apdu(bytes(4)),
        bytes.fromhex("00A40400"),  # SELECT without a name
        bytes.fromhex("00B201C40301020300"),  # length outranks wrong P2 low bits
    ],
)
def test_wrong_lengths_are_refused(apdu: bytes) -> None:
    assert sw(card_with().transmit(apdu)) == "6700"


def test_le_may_be_left_out_and_is_not_checked() -> None:
    card = card_with(select=False)
    assert card.transmit(select_apdu()[:-1])[-2:] == OK  # SELECT as case 3
    assert card.transmit(read_apdu(Sfi.PURSE)[:-1])[-2:] == OK  # READ RECORD as case 1
    assert card.transmit(read_apdu(Sfi.PURSE)[:-1] + b"\x1d")[-2:] == OK  # Le = 29


# --- 6B00 wrong parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "apdu",
    [
        bytes.fromhex("00B201C800"),  # READ RECORD: P2 low bits must be 100
        bytes.fromhex("00A4000005F0544C433100"),  # SELECT not by name
        open_apdu(0),
        open_apdu(4),
    ],
    ids=["read p2", "select p1", "open level 0", "open level 4"],
)
def test_wrong_parameters_are_refused(apdu: bytes) -> None:
    assert sw(card_with().transmit(apdu)) == "6B00"


@pytest.mark.parametrize(
    "apdu",
    [
        bytes.fromhex("00E201401D") + PASS,  # APPEND with P1 = 1
        bytes.fromhex("00DC01481D") + PASS,  # UPDATE with P2 low bits 000
        bytes.fromhex("003001CC03000001"),  # DECREASE with P2 low bits 100
        bytes.fromhex("008E8000080000000000000000"),  # CLOSE with Calypso's P1 = 80
        bytes.fromhex("008E0001"),  # ABORT with P2 = 01
    ],
)
def test_wrong_parameters_are_refused_in_a_session_which_goes_on(apdu: bytes) -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    # A CLOSE or ABORT, even a refused one, never enters the transcript; other commands do.
    send = card.transmit if apdu[1] == Ins.CLOSE_SECURE_SESSION else terminal.send
    assert sw(send(apdu)) == "6B00"
    terminal.send(increase_apdu(1))
    assert sw(terminal.close()) == "9000"
    assert card.image.purse_vnd == PURSE_START_VND + 1


@pytest.mark.parametrize("level", list(KeyLevel))
def test_each_key_level_opens_a_session(level: KeyLevel) -> None:
    assert sw(card_with().transmit(open_apdu(level))) == "9000"


# --- 6982 security / 6981 incompatible file ------------------------------------------------------


@pytest.mark.parametrize(("sfi", "ins"), COMPATIBLE)
def test_changes_outside_a_session_are_refused(sfi: Sfi, ins: Ins) -> None:
    card = card_with()
    assert sw(card.transmit(change_apdu(sfi, ins))) == "6982"
    assert card.image == card_with().image


@pytest.mark.parametrize(
    ("sfi", "ins", "level"), [(s, i, lv) for s, i in COMPATIBLE for lv in KeyLevel]
)
def test_each_change_needs_one_of_its_allowed_key_levels(
    sfi: Sfi, ins: Ins, level: KeyLevel
) -> None:
    expected = "9000" if level in LEVELS_ALLOWED[(sfi, ins)] else "6982"
    assert sw(in_session(card_with(), level, change_apdu(sfi, ins))) == expected


@pytest.mark.parametrize(
    ("sfi", "ins", "level"), [(s, i, lv) for s, i in INCOMPATIBLE for lv in KeyLevel]
)
def test_commands_incompatible_with_the_file_are_refused_at_every_level(
    sfi: Sfi, ins: Ins, level: KeyLevel
) -> None:
    assert sw(in_session(card_with(), level, change_apdu(sfi, ins))) == "6981"


# --- 6A82 file not found / 6A83 record not found -------------------------------------------------


@pytest.mark.parametrize("sfi", [0x00, 0x0A, 0x1F])
def test_files_the_card_does_not_have_are_not_found(sfi: int) -> None:
    card = card_with()
    assert sw(card.transmit(read_apdu(sfi))) == "6A82"
    assert sw(card.transmit(open_apdu(KeyLevel.DEBIT, p2=(sfi << 3) | 1))) == "6A82"
    assert sw(in_session(card, KeyLevel.PERSONALISATION, update_apdu(sfi, 1, PASS))) == "6A82"


@pytest.mark.parametrize("sfi", list(Sfi))
def test_every_file_of_the_card_is_found_with_its_last_record(sfi: Sfi) -> None:
    response = card_with().transmit(read_apdu(sfi, RECORDS_PER_FILE[sfi]))
    assert (len(response), sw(response)) == (RECORD_BYTES + 2, "9000")


@pytest.mark.parametrize("sfi", list(Sfi))
def test_records_outside_a_file_are_not_found(sfi: Sfi) -> None:
    card = card_with()
    assert sw(card.transmit(read_apdu(sfi, 0))) == "6A83"
    assert sw(card.transmit(read_apdu(sfi, RECORDS_PER_FILE[sfi] + 1))) == "6A83"
    p2 = (sfi << 3) | (RECORDS_PER_FILE[sfi] + 1)
    assert sw(card.transmit(open_apdu(KeyLevel.DEBIT, p2=p2))) == "6A83"


def test_changes_to_records_outside_a_file_are_not_found() -> None:
    assert sw(in_session(card_with(), KeyLevel.LOAD, update_apdu(Sfi.CONTRACTS, 5, PASS))) == "6A83"
    assert sw(in_session(card_with(), KeyLevel.DEBIT, bytes.fromhex("003002C803000001"))) == "6A83"


def test_open_returns_the_record_it_was_asked_to_read() -> None:
    response = card_with().transmit(open_apdu(KeyLevel.DEBIT, p2=(Sfi.PURSE << 3) | 1))
    assert response[-2 - RECORD_BYTES : -2] == PURSE_START_VND.to_bytes(3, "big") + bytes(26)


# --- 6985 session states and purse bounds --------------------------------------------------------


def test_a_second_open_in_a_session_is_refused_and_the_session_goes_on() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    assert sw(terminal.send(open_apdu(KeyLevel.LOAD))) == "6985"
    terminal.send(increase_apdu(5))
    assert sw(terminal.close()) == "9000"
    assert card.image.purse_vnd == PURSE_START_VND + 5
    assert card.image.transaction_counter == 999  # the refused OPEN used no number


@pytest.mark.parametrize("apdu", [close_apdu(bytes(8)), ABORT], ids=["close", "abort"])
def test_closing_or_aborting_without_a_session_is_refused(apdu: bytes) -> None:
    card = card_with()
    assert sw(card.transmit(apdu)) == "6985"
    Terminal(card).open(KeyLevel.DEBIT)
    assert sw(card.transmit(ABORT)) == "9000"


@pytest.mark.parametrize(
    ("start_vnd", "apdu", "expected"),
    [
        (100, decrease_apdu(101), "6985"),
        (100, decrease_apdu(100), "0000009000"),
        (PURSE_MAX_VND - 1, increase_apdu(2), "6985"),
        (PURSE_MAX_VND - 1, increase_apdu(1), "FFFFFF9000"),
    ],
    ids=["below 0", "down to 0", "above the maximum", "up to the maximum"],
)
def test_the_purse_stays_within_0_and_its_maximum(
    start_vnd: int, apdu: bytes, expected: str
) -> None:
    level = KeyLevel.DEBIT if apdu[1] == Ins.DECREASE else KeyLevel.LOAD
    response = in_session(card_with(start_vnd), level, apdu)
    assert response.hex().upper()[-len(expected) :] == expected


# --- 6400 too many changes -----------------------------------------------------------------------


def test_six_changes_commit_and_a_seventh_is_refused() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    responses = [terminal.send(increase_apdu(1)) for _ in range(CHANGES_PER_SESSION_MAX)]
    assert [sw(r) for r in responses] == ["9000"] * CHANGES_PER_SESSION_MAX
    assert sw(terminal.send(increase_apdu(1))) == "6400"
    assert sw(terminal.send(update_apdu(Sfi.CONTRACTS, 1, PASS))) == "6400"
    assert sw(terminal.close()) == "9000"
    assert card.image.purse_vnd == PURSE_START_VND + CHANGES_PER_SESSION_MAX


# --- 6900 transaction counter --------------------------------------------------------------------


def test_the_last_session_gets_counter_0_and_then_the_card_refuses_every_open_for_good() -> None:
    card = card_with(counter=1)
    assert card.transmit(open_apdu(KeyLevel.DEBIT))[8:11] == bytes(3)
    card.transmit(ABORT)
    for _ in range(3):
        assert sw(card.transmit(open_apdu(KeyLevel.DEBIT))) == "6900"
        card.reset()
        card.transmit(select_apdu())
    assert card.transmit(read_apdu(Sfi.PURSE))[-2:] == OK  # reading still works


def test_every_open_uses_a_number_even_when_its_session_never_closes() -> None:
    card = card_with()
    counters = []
    for _ in range(3):
        counters.append(int.from_bytes(card.transmit(open_apdu(KeyLevel.DEBIT))[8:11], "big"))
        card.transmit(ABORT)
    assert counters == [999, 998, 997]


# --- 6988 MAC ------------------------------------------------------------------------------------


def test_a_wrong_terminal_mac_is_refused_and_ends_the_session_without_writing() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    terminal.send(increase_apdu(1))
    wrong = bytes(b ^ 1 for b in terminal.mac())
    assert sw(terminal.close(mac=wrong)) == "6988"
    assert card.image.purse_vnd == PURSE_START_VND
    assert sw(card.transmit(ABORT)) == "6985"


def test_the_right_terminal_mac_is_answered_with_the_card_mac() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    terminal.send(increase_apdu(1))
    assert terminal.session_key is not None
    expected = card_mac(terminal.session_key, bytes(terminal.transcript))
    assert terminal.close() == expected + OK


def test_refused_commands_in_a_session_are_part_of_the_transcript() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.DEBIT)
    assert sw(terminal.send(bytes.fromhex("00840000"))) == "6D00"
    assert sw(terminal.send(read_apdu(Sfi.CONTRACTS, 9))) == "6A83"
    assert sw(terminal.close()) == "9000"


# --- all or nothing ------------------------------------------------------------------------------


def test_changes_are_visible_to_reads_inside_their_session_and_written_at_close() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    terminal.send(update_apdu(Sfi.CONTRACTS, 2, PASS))
    terminal.send(increase_apdu(500))
    assert terminal.send(read_apdu(Sfi.CONTRACTS, 2)) == PASS + OK
    assert terminal.send(read_apdu(Sfi.PURSE))[:3] == (PURSE_START_VND + 500).to_bytes(3, "big")
    assert card.image.records[Sfi.CONTRACTS][1] == bytes(RECORD_BYTES)
    terminal.close()
    assert card.image.records[Sfi.CONTRACTS][1] == PASS
    assert card.image.purse_vnd == PURSE_START_VND + 500


def _abort(card: EmulatedCard, terminal: Terminal) -> None:
    assert card.transmit(ABORT) == OK


def _bad_mac(card: EmulatedCard, terminal: Terminal) -> None:
    assert sw(terminal.close(mac=bytes(8))) == "6988"


def _power_off(card: EmulatedCard, terminal: Terminal) -> None:
    card.power_off()
    card.power_on()


def _reset(card: EmulatedCard, terminal: Terminal) -> None:
    card.reset()


def _tear_at_close(card: EmulatedCard, terminal: Terminal) -> None:
    card.tear_after = 0
    with pytest.raises(CardTorn):
        terminal.close()
    card.tear_after = None
    card.power_on()


def _select_again(card: EmulatedCard, terminal: Terminal) -> None:
    assert card.transmit(select_apdu())[-2:] == OK


@pytest.mark.parametrize(
    "end", [_abort, _bad_mac, _power_off, _reset, _tear_at_close, _select_again]
)
def test_every_way_a_session_ends_but_close_drops_all_its_changes(
    end: Callable[[EmulatedCard, Terminal], None],
) -> None:
    card = card_with()
    before = card.image.copy()
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    terminal.send(update_apdu(Sfi.CONTRACTS, 1, PASS))
    terminal.send(increase_apdu(1_000))
    end(card, terminal)
    card.transmit(select_apdu())
    assert card.transmit(read_apdu(Sfi.CONTRACTS)) == bytes(RECORD_BYTES) + OK
    assert card.transmit(read_apdu(Sfi.PURSE))[:3] == PURSE_START_VND.to_bytes(3, "big")
    assert card.image.records == before.records
    assert sw(card.transmit(ABORT)) == "6985"  # no session is left open either


# --- precedence between the later checks ----------------------------------------------------


@pytest.mark.parametrize(
    ("level", "apdu", "expected"),
    [
        (None, update_apdu(0x0A, 1, PASS), "6982"),  # outside a session, before the file
        (KeyLevel.DEBIT, update_apdu(0x0A, 9, PASS), "6A82"),  # the file, before its records
        (KeyLevel.DEBIT, decrease_apdu(1, Sfi.CONTRACTS), "6981"),  # the command, before levels
        (KeyLevel.DEBIT, update_apdu(Sfi.ENVIRONMENT, 2, PASS), "6982"),  # levels, before records
        (KeyLevel.DEBIT, decrease_apdu(PURSE_MAX_VND), "6985"),  # purse bounds come last
    ],
    ids=["session", "file", "command", "level", "bounds"],
)
def test_the_first_failing_check_gives_the_status_word(
    level: KeyLevel | None, apdu: bytes, expected: str
) -> None:
    card = card_with()
    response = card.transmit(apdu) if level is None else in_session(card, level, apdu)
    assert sw(response) == expected


def test_too_many_changes_outranks_purse_bounds() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.DEBIT)
    for _ in range(CHANGES_PER_SESSION_MAX):
        terminal.send(decrease_apdu(1))
    assert sw(terminal.send(decrease_apdu(PURSE_MAX_VND))) == "6400"


# --- the cyclic event log ------------------------------------------------------------------------


def test_append_puts_the_new_event_first_and_drops_the_oldest() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.session(KeyLevel.DEBIT, append_apdu(Sfi.EVENT_LOG, event(1)))
    terminal.session(
        KeyLevel.DEBIT,
        append_apdu(Sfi.EVENT_LOG, event(2)),
        append_apdu(Sfi.EVENT_LOG, event(3)),
        append_apdu(Sfi.EVENT_LOG, event(4)),
    )
    log = [card.transmit(read_apdu(Sfi.EVENT_LOG, n))[:-2] for n in (1, 2, 3)]
    assert log == [event(4), event(3), event(2)]


# --- ratification --------------------------------------------------------------------------------


def ratified_byte(card: EmulatedCard) -> int:
    """The flag as OPEN reports it; the ABORT that follows is a command that ratifies."""
    response = card.transmit(open_apdu(KeyLevel.DEBIT))
    card.transmit(ABORT)
    return response[11]


def flag_seen_by_the_next_validator(card: EmulatedCard) -> int:
    """A new power-up, SELECT and OPEN, then the card leaves the field: nothing else is sent."""
    card.reset()
    assert card.transmit(select_apdu())[-2:] == OK
    response = card.transmit(open_apdu(KeyLevel.DEBIT))
    card.power_off()
    card.power_on()
    card.transmit(select_apdu())
    return response[11]


def closed_session(card: EmulatedCard) -> None:
    assert sw(Terminal(card).session(KeyLevel.DEBIT)[-1]) == "9000"


def test_a_new_card_is_ratified() -> None:
    assert ratified_byte(card_with()) == 0x00


def test_open_straight_after_close_sees_the_card_unratified() -> None:
    card = card_with()
    closed_session(card)
    assert ratified_byte(card) == 0x01
    assert ratified_byte(card) == 0x00  # the ABORT after that OPEN was a command that ratified


def test_a_select_right_after_close_leaves_the_card_unratified() -> None:
    card = card_with()
    closed_session(card)
    assert card.transmit(select_apdu())[-2:] == OK
    assert ratified_byte(card) == 0x01


def test_select_and_open_never_ratify_in_any_power_up() -> None:
    # CARD.md: every validator sends SELECT and OPEN before it can see the flag, so neither may
    # clear it, or a card torn after CLOSE would look ratified to every validator after.
    card = card_with()
    closed_session(card)
    assert [flag_seen_by_the_next_validator(card) for _ in range(3)] == [0x01, 0x01, 0x01]
    assert not card.image.ratified


@pytest.mark.parametrize(
    "apdu",
    [read_apdu(Sfi.EVENT_LOG), bytes.fromhex("00840000"), ABORT],
    ids=["read", "6D00", "6985"],
)
def test_any_command_after_close_ratifies_even_a_refused_one(apdu: bytes) -> None:
    card = card_with()
    closed_session(card)
    card.transmit(apdu)
    assert ratified_byte(card) == 0x00


def test_a_card_torn_between_close_and_the_next_command_shows_the_next_validator_01() -> None:
    card = card_with()
    closed_session(card)
    card.tear_after = 0
    with pytest.raises(CardTorn):
        card.transmit(read_apdu(Sfi.EVENT_LOG))
    card.tear_after = None
    card.power_on()
    assert card.transmit(select_apdu())[-2:] == OK  # the next validator must SELECT first
    assert ratified_byte(card) == 0x01


def test_the_unratified_flag_is_kept_in_the_image_across_runs() -> None:
    card = card_with()
    closed_session(card)
    card.power_off()
    reloaded = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, image=card.image.copy())
    reloaded.power_on()
    reloaded.transmit(select_apdu())
    assert ratified_byte(reloaded) == 0x01


def test_after_a_power_loss_the_first_other_command_of_a_later_power_up_ratifies() -> None:
    card = card_with()
    closed_session(card)
    card.reset()
    card.transmit(select_apdu())
    assert card.transmit(read_apdu(Sfi.EVENT_LOG))[-2:] == OK
    assert ratified_byte(card) == 0x00


def test_a_refused_or_aborted_session_leaves_the_card_ratified() -> None:
    card = card_with()
    terminal = Terminal(card)
    terminal.open(KeyLevel.DEBIT)
    terminal.close(mac=bytes(8))
    assert ratified_byte(card) == 0x00


# --- the card image ------------------------------------------------------------------------------


def test_image_survives_json_unchanged() -> None:
    card = card_with()
    Terminal(card).session(KeyLevel.LOAD, update_apdu(Sfi.CONTRACTS, 3, PASS), increase_apdu(9))
    assert CardImage.from_json(card.image.to_json()) == card.image


def test_a_card_keeps_its_purse_between_runs(tmp_path: Path) -> None:
    path = tmp_path / "cards" / "card.json"
    first = ImageFile(path).load_or_create(SERIAL)
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, image=first, store=ImageFile(path))
    card.power_on()
    card.transmit(select_apdu())
    Terminal(card).session(KeyLevel.LOAD, increase_apdu(50_000))
    card.power_off()

    image = ImageFile(path).load_or_create(SERIAL)
    assert not image.ratified  # torn before any command ratified the reload
    again = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, image=image)
    again.power_on()
    assert sw(again.transmit(read_apdu(Sfi.PURSE))) == "6985"  # a loaded card is not selected
    again.transmit(select_apdu())
    assert again.transmit(read_apdu(Sfi.PURSE))[:3] == (50_000).to_bytes(3, "big")
    assert image.transaction_counter == 999
    assert image.ratified  # that refused READ was a command other than SELECT and OPEN


def test_the_image_file_holds_the_counter_at_once_and_session_changes_only_at_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "card.json"
    store = ImageFile(path)
    card = EmulatedCard.from_master_keys(
        MASTER_KEYS, SERIAL, image=store.load_or_create(SERIAL), store=store
    )
    card.power_on()
    card.transmit(select_apdu())
    terminal = Terminal(card)
    terminal.open(KeyLevel.LOAD)
    terminal.send(increase_apdu(7))
    saved = CardImage.from_json(path.read_text())
    assert (saved.transaction_counter, saved.purse_vnd) == (999, 0)
    terminal.close()
    assert CardImage.from_json(path.read_text()).purse_vnd == 7


def test_the_image_file_is_private_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    ImageFile(path).save(CardImage.blank(SERIAL))
    ImageFile(path).save(CardImage.blank(SERIAL))
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temporary file left


def test_an_image_of_another_card_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    ImageFile(path).save(CardImage.blank(bytes(8)))
    with pytest.raises(CardImageError):
        ImageFile(path).load_or_create(SERIAL)


@pytest.mark.parametrize(
    "edit",
    [
        lambda _: "not json",
        lambda d: json.dumps({**d, "format": 2}),
        lambda d: json.dumps({**d, "purse_vnd": -1}),
        lambda d: json.dumps({**d, "transaction_counter": 1 << 24}),
        lambda d: json.dumps({**d, "records": {**d["records"], "08": d["records"]["08"][:2]}}),
        lambda d: json.dumps({**d, "serial": "0011"}),
        lambda d: json.dumps({k: v for k, v in d.items() if k != "ratified"}),
    ],
    ids=["not json", "format", "purse", "counter", "record count", "serial", "missing field"],
)
def test_images_no_card_could_hold_are_refused(edit: Callable[[dict[str, object]], str]) -> None:
    document = json.loads(CardImage.blank(SERIAL).to_json())
    with pytest.raises(CardImageError):
        CardImage.from_json(edit(document))


# --- key files -----------------------------------------------------------------------------------


def test_the_vectors_master_keys_are_a_key_file() -> None:
    assert master_keys_from_json(json.dumps(VECTORS["master_keys"])) == MASTER_KEYS


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"1": "00", "2": "00", "3": "00"}',
        json.dumps({k: v for k, v in VECTORS["master_keys"].items() if k != "3"}),
        json.dumps({**VECTORS["master_keys"], "3": "zz" * 16}),
        json.dumps({**VECTORS["master_keys"], "4": "00" * 16}),
        "{",
    ],
    ids=["not an object", "short keys", "missing level", "not hex", "extra level", "not json"],
)
def test_malformed_key_files_are_refused(text: str) -> None:
    with pytest.raises(KeyFileError):
        master_keys_from_json(text)
