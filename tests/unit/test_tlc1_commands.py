"""TLC1 command frames, byte for byte against spec/card-vectors.json, and their status tables."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hardware.invariants import InvariantViolated
from hardware.tlc1.commands import (
    AbortSecureSession,
    AppendRecord,
    CardCommandError,
    CloseSecureSession,
    Command,
    ConditionsNotSatisfied,
    CounterExhausted,
    Decrease,
    FileNotFound,
    IncompatibleFile,
    IncorrectMac,
    Increase,
    MalformedResponse,
    OpenSecureSession,
    ReadRecord,
    RecordNotFound,
    SecurityNotSatisfied,
    Select,
    TooManyChanges,
    UnexpectedStatus,
    UnknownClass,
    UnknownInstruction,
    UpdateRecord,
    WrongLength,
    WrongParameters,
)
from hardware.tlc1.constants import RECORD_BYTES, KeyLevel, Sfi, Sw

HEX = bytes.fromhex
OK = HEX("9000")
# Records and challenges as the vector trace carries them.
ENVIRONMENT = HEX("01010100000000016F1C2B9E3D4A4B5C8D7E0123456789AB0000000000")
EVENT = HEX("016ADF02400301010000000C0000004D00001F40000000000000000000")
SERIAL = HEX("0011223344556677")

ALL_COMMANDS: list[Command[object]] = [
    Select(),
    ReadRecord(Sfi.PURSE, 1),
    OpenSecureSession(KeyLevel.DEBIT, HEX("80889098A0A8B0B8"), (Sfi.ENVIRONMENT, 1)),
    UpdateRecord(Sfi.ENVIRONMENT, 1, ENVIRONMENT),
    AppendRecord(Sfi.EVENT_LOG, EVENT),
    Decrease(8000),
    Increase(50000),
    CloseSecureSession(HEX("A948280261AAD476")),
    AbortSecureSession(),
]
# The error CARD.md's meaning of each status word calls for, whichever command gets it.
ERROR_FOR_SW: dict[int, type[CardCommandError]] = {
    Sw.WRONG_LENGTH: WrongLength,
    Sw.TOO_MANY_CHANGES: TooManyChanges,
    Sw.COUNTER_EXHAUSTED: CounterExhausted,
    Sw.INCOMPATIBLE_FILE: IncompatibleFile,
    Sw.SECURITY_NOT_SATISFIED: SecurityNotSatisfied,
    Sw.CONDITIONS_NOT_SATISFIED: ConditionsNotSatisfied,
    Sw.INCORRECT_MAC: IncorrectMac,
    Sw.FILE_NOT_FOUND: FileNotFound,
    Sw.RECORD_NOT_FOUND: RecordNotFound,
    Sw.WRONG_PARAMETERS: WrongParameters,
    Sw.UNKNOWN_INS: UnknownInstruction,
    Sw.UNKNOWN_CLA: UnknownClass,
}
CHANGES = (UpdateRecord, AppendRecord, Decrease, Increase)


def refusals() -> list[object]:
    return [
        pytest.param(command, sw, id=f"{command.name} {sw:04X}")
        for command in ALL_COMMANDS
        for sw in command.STATUS_TABLE
        if sw != Sw.OK
    ]


# --- frames -------------------------------------------------------------------------------


def test_select_frame_matches_the_trace() -> None:
    assert Select().apdu == HEX("00A4040005F0544C433100")  # SELECT by AID


def test_read_record_frames_match_the_trace() -> None:
    assert ReadRecord(Sfi.PURSE, 1).apdu == HEX("00B201CC00")  # READ RECORD purse
    assert ReadRecord(Sfi.EVENT_LOG, 1).apdu == HEX("00B2014400")  # READ RECORD event 1


def test_read_record_frame_for_the_last_contract() -> None:
    assert ReadRecord(Sfi.CONTRACTS, 4).apdu == HEX("00B2044C00")  # READ RECORD contract 4


def test_open_secure_session_frames_match_the_trace() -> None:
    # OPEN SECURE SESSION, level 1, no record
    assert OpenSecureSession(KeyLevel.PERSONALISATION, HEX("1018202830384048")).apdu == HEX(
        "008A010008101820283038404800"
    )
    # OPEN SECURE SESSION, level 3, reading environment record 1
    assert OpenSecureSession(
        KeyLevel.DEBIT, HEX("80889098A0A8B0B8"), (Sfi.ENVIRONMENT, 1)
    ).apdu == HEX("008A03390880889098A0A8B0B800")


def test_update_record_frame_matches_the_trace() -> None:
    # UPDATE RECORD environment 1
    assert UpdateRecord(Sfi.ENVIRONMENT, 1, ENVIRONMENT).apdu == HEX("00DC013C1D") + ENVIRONMENT


def test_append_record_frame_matches_the_trace() -> None:
    # APPEND RECORD event log
    assert AppendRecord(Sfi.EVENT_LOG, EVENT).apdu == HEX("00E200401D") + EVENT


def test_decrease_and_increase_frames_match_the_trace() -> None:
    assert Decrease(8000).apdu == HEX("003001C803001F4000")  # DECREASE purse 8000
    assert Increase(50000).apdu == HEX("003201C80300C35000")  # INCREASE purse 50000


def test_close_secure_session_frame_matches_the_trace() -> None:
    # CLOSE SECURE SESSION with the terminal MAC
    assert CloseSecureSession(HEX("A948280261AAD476")).apdu == HEX("008E000008A948280261AAD47600")


def test_abort_secure_session_frame_is_close_without_data() -> None:
    assert AbortSecureSession().apdu == HEX("008E0000")  # ABORT SECURE SESSION


def test_purse_extremes_encode_as_u24() -> None:
    assert Decrease(0).apdu == HEX("003001C80300000000")  # DECREASE purse 0
    assert Increase(0xFFFFFF).apdu == HEX("003201C803FFFFFF00")  # INCREASE purse maximum


# --- responses ----------------------------------------------------------------------------


def test_select_reads_the_serial_from_the_fci() -> None:
    selected = Select().parse(HEX("6F118405F0544C4331C7080011223344556677") + OK)
    assert selected.serial == SERIAL


@pytest.mark.parametrize(
    "fci",
    [
        pytest.param("", id="empty"),
        pytest.param("6F118405F0544C4331C70800112233445566", id="cut short"),
        pytest.param("6F118405F0544C4332C7080011223344556677", id="another application"),
        pytest.param("6F078405F0544C4331", id="no serial"),
        pytest.param("6F108405F0544C4331C70700112233445566", id="7-byte serial"),
        pytest.param("6F118405F0544C4331C70800112233445566779999", id="trailing bytes"),
        pytest.param("6F188405F0544C43318405F0544C4331C7080011223344556677", id="repeated tag"),
        pytest.param("A5118405F0544C4331C7080011223344556677", id="not an FCI"),
    ],
)
def test_select_refuses_a_malformed_fci(fci: str) -> None:
    with pytest.raises(MalformedResponse):
        Select().parse(HEX(fci) + OK)


def test_read_record_returns_the_29_bytes() -> None:
    assert ReadRecord(Sfi.EVENT_LOG, 1).parse(EVENT + OK) == EVENT


@pytest.mark.parametrize("length", [0, RECORD_BYTES - 1, RECORD_BYTES + 1])
def test_read_record_refuses_a_record_of_another_length(length: int) -> None:
    with pytest.raises(MalformedResponse):
        ReadRecord(Sfi.EVENT_LOG, 1).parse(bytes(length) + OK)


def test_open_reads_challenge_counter_and_unratified_flag() -> None:
    command = OpenSecureSession(KeyLevel.LOAD, HEX("4850586068707880"))
    opened = command.parse(HEX("D8E0E8F0F80008100003E601") + OK)
    assert opened.card_challenge == HEX("D8E0E8F0F8000810")
    assert opened.counter == 998
    assert opened.ratified is False
    assert opened.record is None


def test_open_with_a_read_returns_the_record_and_ratified_flag() -> None:
    command = OpenSecureSession(KeyLevel.DEBIT, HEX("80889098A0A8B0B8"), (Sfi.ENVIRONMENT, 1))
    opened = command.parse(HEX("10182028303840480003E500") + ENVIRONMENT + OK)
    assert opened.ratified is True
    assert opened.counter == 997
    assert opened.record == ENVIRONMENT


@pytest.mark.parametrize(
    ("read", "data"),
    [
        pytest.param(None, "10182028303840480003E500" + ENVIRONMENT.hex(), id="unasked record"),
        pytest.param((Sfi.ENVIRONMENT, 1), "10182028303840480003E500", id="missing record"),
        pytest.param(None, "10182028303840480003E5", id="no ratification byte"),
        pytest.param(None, "10182028303840480003E502", id="ratification byte 02"),
    ],
)
def test_open_refuses_a_malformed_answer(read: tuple[Sfi, int] | None, data: str) -> None:
    with pytest.raises(MalformedResponse):
        OpenSecureSession(KeyLevel.DEBIT, bytes(8), read).parse(HEX(data) + OK)


def test_counter_commands_return_the_new_purse_value() -> None:
    assert Decrease(8000).parse(HEX("00A410") + OK) == 42000
    assert Increase(50000).parse(HEX("00C350") + OK) == 50000


def test_counter_commands_refuse_a_value_of_another_length() -> None:
    with pytest.raises(MalformedResponse):
        Decrease(8000).parse(HEX("A410") + OK)


def test_close_returns_the_card_mac() -> None:
    card_mac = CloseSecureSession(bytes(8)).parse(HEX("7B37640F98F9F5F0") + OK)
    assert card_mac == HEX("7B37640F98F9F5F0")


def test_close_refuses_a_mac_of_another_length() -> None:
    with pytest.raises(MalformedResponse):
        CloseSecureSession(bytes(8)).parse(HEX("7B37640F98F9F5") + OK)


@pytest.mark.parametrize(
    "command",
    [UpdateRecord(Sfi.CONTRACTS, 1, bytes(29)), AppendRecord(Sfi.EVENT_LOG, EVENT)],
    ids=["update", "append"],
)
def test_writes_refuse_data_in_their_answer(command: Command[None]) -> None:
    assert command.parse(OK) is None
    with pytest.raises(MalformedResponse):
        command.parse(HEX("00") + OK)


# --- status words -------------------------------------------------------------------------


def test_close_refused_with_6988_raises_incorrect_mac() -> None:
    with pytest.raises(IncorrectMac) as refused:
        CloseSecureSession(HEX("B763679BD4573139")).parse(HEX("6988"))
    assert refused.value.sw == 0x6988
    assert "CLOSE SECURE SESSION" in str(refused.value)
    assert "6988" in str(refused.value)


@pytest.mark.parametrize(("command", "sw"), refusals())
def test_every_tabled_status_word_raises_the_error_named_for_it(
    command: Command[object], sw: int
) -> None:
    with pytest.raises(CardCommandError) as refused:
        command.parse(sw.to_bytes(2, "big"))
    assert type(refused.value) is ERROR_FOR_SW[sw]
    assert refused.value.sw == sw
    assert refused.value.command == command.name


def test_every_status_word_of_card_md_appears_in_some_table() -> None:
    tabled = {sw for command in ALL_COMMANDS for sw in command.STATUS_TABLE}
    assert tabled == set(Sw)


def test_every_change_can_be_refused_outside_a_session_and_past_six_changes() -> None:
    for command_class in CHANGES:
        assert command_class.STATUS_TABLE[Sw.SECURITY_NOT_SATISFIED].error is SecurityNotSatisfied
        assert command_class.STATUS_TABLE[Sw.TOO_MANY_CHANGES].error is TooManyChanges


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        pytest.param(Select(), Sw.CONDITIONS_NOT_SATISFIED, id="select needs no selection"),
        pytest.param(ReadRecord(Sfi.PURSE, 1), Sw.SECURITY_NOT_SATISFIED, id="reads are free"),
        pytest.param(CloseSecureSession(bytes(8)), Sw.FILE_NOT_FOUND, id="close names no file"),
        pytest.param(AbortSecureSession(), Sw.INCORRECT_MAC, id="abort carries no MAC"),
        pytest.param(Decrease(1), Sw.COUNTER_EXHAUSTED, id="only OPEN spends the counter"),
        pytest.param(ReadRecord(Sfi.PURSE, 1), 0x6F00, id="no precise diagnosis"),
        pytest.param(ReadRecord(Sfi.PURSE, 1), 0x6100, id="T=0 more data"),
    ],
)
def test_a_status_word_the_command_cannot_get_is_unexpected(
    command: Command[object], sw: int
) -> None:
    with pytest.raises(UnexpectedStatus) as refused:
        command.parse(sw.to_bytes(2, "big"))
    assert refused.value.sw == sw


def test_status_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        Select.STATUS_TABLE[0x6F00] = Select.STATUS_TABLE[Sw.OK]  # type: ignore[index]


# --- arguments the terminal must never pass -----------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: ReadRecord(Sfi.EVENT_LOG, 0), id="record 0"),
        pytest.param(lambda: ReadRecord(Sfi.EVENT_LOG, 4), id="event 4 of 3"),
        pytest.param(lambda: ReadRecord(Sfi.PURSE, 2), id="purse record 2"),
        pytest.param(lambda: OpenSecureSession(KeyLevel.DEBIT, bytes(7)), id="7-byte challenge"),
        pytest.param(lambda: OpenSecureSession(4, bytes(8)), id="level 4"),  # type: ignore[arg-type]
        pytest.param(
            lambda: OpenSecureSession(KeyLevel.DEBIT, bytes(8), (Sfi.CONTRACTS, 5)),
            id="open reading contract 5",
        ),
        pytest.param(lambda: UpdateRecord(Sfi.ENVIRONMENT, 1, bytes(28)), id="28-byte record"),
        pytest.param(lambda: UpdateRecord(Sfi.PURSE, 1, bytes(29)), id="update the purse"),
        pytest.param(lambda: UpdateRecord(Sfi.EVENT_LOG, 1, bytes(29)), id="update the log"),
        pytest.param(lambda: AppendRecord(Sfi.CONTRACTS, bytes(29)), id="append a contract"),
        pytest.param(lambda: AppendRecord(Sfi.EVENT_LOG, bytes(30)), id="30-byte event"),
        pytest.param(lambda: Decrease(-1), id="negative amount"),
        pytest.param(lambda: Increase(0x1000000), id="amount over u24"),
        pytest.param(lambda: Decrease(1, Sfi.EVENT_LOG), id="decrease the log"),
        pytest.param(lambda: CloseSecureSession(bytes(9)), id="9-byte MAC"),
    ],
)
def test_a_frame_the_terminal_must_never_send_is_a_bug(build: Callable[[], object]) -> None:
    with pytest.raises(InvariantViolated):
        build()
