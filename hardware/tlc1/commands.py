"""The TLC1 card commands (spec/CARD.md, "Commands"): one class per APDU.

Each command builds its exact frame in the constructor, as Keyple's `Command*` classes do, and
parses the card's response into a typed result. Each keeps its own status-word table: every SW
of CARD.md that command can get, with a message and the `CardCommandError` subclass it raises.
A status word missing from the table raises `UnexpectedStatus`.

Arguments are the terminal's own choices, so a wrong one (a record the file does not have, a
29-byte record of 30 bytes) is a bug and fails `require()`; what the card answers is an
operating condition and raises a typed error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Generic, TypeVar

from hardware.invariants import require
from hardware.reader import SW_BYTES
from hardware.tlc1.constants import (
    AID,
    CHALLENGE_BYTES,
    CLA,
    COUNTER_BYTES,
    LEVELS_ALLOWED,
    MAC_BYTES,
    PURSE_MAX_VND,
    RECORD_BYTES,
    RECORDS_PER_FILE,
    SERIAL_BYTES,
    Ins,
    KeyLevel,
    Sfi,
    Sw,
)

# Covariant, so commands with different results fit one `Command[object]` list or parameter.
ResultT = TypeVar("ResultT", covariant=True)


# The errors come first, not at the bottom, because the status tables below name them.
class CardCommandError(Exception):
    """The card refused a command, or answered it with something CARD.md does not allow.

    `sw` is the stable code: the status word as the card sent it.
    """

    def __init__(self, command: str, sw: int, message: str) -> None:
        super().__init__(f"{command}: {message} (SW {sw:04X})")
        self.command = command
        self.sw = sw


class WrongLength(CardCommandError):
    """6700."""


class TooManyChanges(CardCommandError):
    """6400: a seventh change in one session."""


class CounterExhausted(CardCommandError):
    """6900: the card has used its last transaction and will never open a session again."""


class IncompatibleFile(CardCommandError):
    """6981: the command does not apply to that kind of file."""


class SecurityNotSatisfied(CardCommandError):
    """6982: a change outside a session, or with a key level the file does not allow."""


class ConditionsNotSatisfied(CardCommandError):
    """6985: not selected, a session open or not open, or a purse leaving its range."""


class IncorrectMac(CardCommandError):
    """6988: the card refused the terminal MAC and dropped the session's changes."""


class FileNotFound(CardCommandError):
    """6A82."""


class RecordNotFound(CardCommandError):
    """6A83."""


class WrongParameters(CardCommandError):
    """6B00."""


class UnknownInstruction(CardCommandError):
    """6D00."""


class UnknownClass(CardCommandError):
    """6E00."""


class UnexpectedStatus(CardCommandError):
    """A status word CARD.md does not give this command."""


class MalformedResponse(CardCommandError):
    """9000 with data of the wrong shape: the card, or something posing as it, broke CARD.md."""


LE_ANY = 0x00  # "as many bytes as the card has": every TLC1 command with a response asks this
SELECT_BY_NAME = 0x04
SELECT_FIRST_OCCURRENCE = 0x00
P2_RECORD_BY_SFI = 0x04  # READ / UPDATE RECORD: P1 is a record number in the file named by P2
SFI_SHIFT = 3
P2_RECORD_MAX = 0x07  # OPEN names its record in P2's three low bits
COUNTER_RECORD = 0x01  # DECREASE / INCREASE: the purse's one counter
NO_RECORD_TO_READ = 0x00
NO_PARAMETER = 0x00
TAG_FCI = 0x6F
TAG_DF_NAME = 0x84
TAG_SERIAL = 0xC7
TLV_SHORT_LENGTH_MAX = 0x7F  # TLC1's FCI only uses one-byte lengths
RATIFIED = 0x00
NOT_RATIFIED = 0x01
OPEN_RESPONSE_BYTES = CHALLENGE_BYTES + COUNTER_BYTES + 1


@dataclass(frozen=True)
class Status:
    """What one status word means for one command, and what it raises (None: success)."""

    message: str
    error: type[CardCommandError] | None = None


# Frame-level refusals any ISO 7816 card may give any command: with our frames they mean a bug
# on one side or a card that is not TLC1.
_ANY_COMMAND: Mapping[int, Status] = {
    Sw.OK: Status("success"),
    Sw.WRONG_LENGTH: Status("wrong length", WrongLength),
    Sw.WRONG_PARAMETERS: Status("wrong parameters P1-P2", WrongParameters),
    Sw.UNKNOWN_INS: Status("instruction not supported", UnknownInstruction),
    Sw.UNKNOWN_CLA: Status("class not supported", UnknownClass),
}


def _status_table(specific: Mapping[int, Status]) -> Mapping[int, Status]:
    """A command's table: the frame-level refusals plus its own status words, read-only."""
    return MappingProxyType({**_ANY_COMMAND, **specific})


_NOT_SELECTED = Status("the application is not selected", ConditionsNotSatisfied)
_OUTSIDE_SESSION_OR_LEVEL = Status(
    "change outside a secure session, or key level too low", SecurityNotSatisfied
)
_TOO_MANY_CHANGES = Status("more than 6 changes in one session", TooManyChanges)
_FILE_NOT_FOUND = Status("file not found", FileNotFound)
_RECORD_NOT_FOUND = Status("record not found", RecordNotFound)


class Command(ABC, Generic[ResultT]):
    """One APDU: its frame (`apdu`) and how to read the card's answer to it (`parse`)."""

    name: ClassVar[str]
    STATUS_TABLE: ClassVar[Mapping[int, Status]]

    def __init__(self, apdu: bytes) -> None:
        self.apdu = apdu

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.apdu.hex().upper()})"

    def parse(self, response: bytes) -> ResultT:
        """The typed result of a 9000 answer; a `CardCommandError` for any other status word."""
        require(len(response) >= SW_BYTES, "readers return at least SW1 SW2")
        data, sw = response[:-SW_BYTES], int.from_bytes(response[-SW_BYTES:], "big")
        status = self.STATUS_TABLE.get(sw)
        if status is None:
            raise UnexpectedStatus(self.name, sw, "status word not in CARD.md for this command")
        if status.error is not None:
            raise status.error(self.name, sw, status.message)
        return self._parse_data(data)

    @abstractmethod
    def _parse_data(self, data: bytes) -> ResultT: ...

    def _malformed(self, why: str) -> MalformedResponse:
        return MalformedResponse(self.name, Sw.OK, why)


def _apdu(ins: Ins, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    """A short APDU: CLA INS P1 P2 [Lc data] [Le]."""
    frame = bytes([CLA, ins, p1, p2])
    if data:
        frame += bytes([len(data)]) + data
    if le is not None:
        frame += bytes([le])
    return frame


def _require_record(sfi: Sfi, record: int) -> None:
    require(1 <= record <= RECORDS_PER_FILE[sfi], f"file {sfi.name} has no record {record}")


def _expect_empty(command: Command[None], data: bytes) -> None:
    if data:
        raise command._malformed(f"{len(data)} unexpected data bytes")


@dataclass(frozen=True)
class Selected:
    serial: bytes


class Select(Command[Selected]):
    """SELECT the TLC1 application by AID; the answer carries the card serial."""

    name = "SELECT"
    STATUS_TABLE = _status_table(
        {
            Sw.FILE_NOT_FOUND: Status("the TLC1 application is not on this card", FileNotFound),
        }
    )

    def __init__(self) -> None:
        # APDU case 4.
        super().__init__(_apdu(Ins.SELECT, SELECT_BY_NAME, SELECT_FIRST_OCCURRENCE, AID, le=LE_ANY))

    def _parse_data(self, data: bytes) -> Selected:
        fci = _tlv(data)
        if fci is None or set(fci) != {TAG_FCI}:
            raise self._malformed("the answer is not one FCI template")
        fields = _tlv(fci[TAG_FCI])
        if fields is None or fields.get(TAG_DF_NAME) != AID:
            raise self._malformed("the FCI does not name the TLC1 application")
        serial = fields.get(TAG_SERIAL)
        if serial is None or len(serial) != SERIAL_BYTES:
            raise self._malformed("the FCI has no 8-byte serial")
        return Selected(serial)


def _tlv(data: bytes) -> dict[int, bytes] | None:
    """Single-byte tags and lengths, the only forms TLC1's FCI uses; None if malformed."""
    fields: dict[int, bytes] = {}
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            return None
        tag, length = data[offset], data[offset + 1]
        end = offset + 2 + length
        if length > TLV_SHORT_LENGTH_MAX or end > len(data) or tag in fields:
            return None
        fields[tag] = data[offset + 2 : end]
        offset = end
    return fields


class ReadRecord(Command[bytes]):
    """READ RECORD: one 29-byte record (the purse's value is in its first 3 bytes)."""

    name = "READ RECORD"
    STATUS_TABLE = _status_table(
        {
            Sw.CONDITIONS_NOT_SATISFIED: _NOT_SELECTED,
            Sw.FILE_NOT_FOUND: _FILE_NOT_FOUND,
            Sw.RECORD_NOT_FOUND: _RECORD_NOT_FOUND,
        }
    )

    def __init__(self, sfi: Sfi, record: int) -> None:
        _require_record(sfi, record)
        # APDU case 2.
        super().__init__(
            _apdu(Ins.READ_RECORD, record, sfi << SFI_SHIFT | P2_RECORD_BY_SFI, le=LE_ANY)
        )

    def _parse_data(self, data: bytes) -> bytes:
        if len(data) != RECORD_BYTES:
            raise self._malformed(f"a record has {RECORD_BYTES} bytes, not {len(data)}")
        return data


@dataclass(frozen=True)
class Opened:
    card_challenge: bytes
    counter: int
    ratified: bool
    record: bytes | None


class OpenSecureSession(Command[Opened]):
    """OPEN SECURE SESSION at a key level, optionally reading one record in the same APDU."""

    name = "OPEN SECURE SESSION"
    STATUS_TABLE = _status_table(
        {
            Sw.CONDITIONS_NOT_SATISFIED: Status(
                "not selected, or a session is already open", ConditionsNotSatisfied
            ),
            Sw.COUNTER_EXHAUSTED: Status("the transaction counter is exhausted", CounterExhausted),
            Sw.FILE_NOT_FOUND: _FILE_NOT_FOUND,
            Sw.RECORD_NOT_FOUND: _RECORD_NOT_FOUND,
        }
    )

    def __init__(
        self, level: KeyLevel, terminal_challenge: bytes, read: tuple[Sfi, int] | None = None
    ) -> None:
        require(level in tuple(KeyLevel), f"no key level {level}")
        require(len(terminal_challenge) == CHALLENGE_BYTES, "a challenge has 8 bytes")
        p2 = NO_RECORD_TO_READ
        if read is not None:
            sfi, record = read
            _require_record(sfi, record)
            require(record <= P2_RECORD_MAX, "OPEN can only name records 1 to 7")
            p2 = sfi << SFI_SHIFT | record
        self.reads_record = read is not None
        # APDU case 4.
        super().__init__(_apdu(Ins.OPEN_SECURE_SESSION, level, p2, terminal_challenge, le=LE_ANY))

    def _parse_data(self, data: bytes) -> Opened:
        expected = OPEN_RESPONSE_BYTES + (RECORD_BYTES if self.reads_record else 0)
        if len(data) != expected:
            raise self._malformed(f"expected {expected} bytes, got {len(data)}")
        ratified_byte = data[OPEN_RESPONSE_BYTES - 1]
        if ratified_byte not in (RATIFIED, NOT_RATIFIED):
            raise self._malformed(f"ratification byte {ratified_byte:02X}")
        return Opened(
            card_challenge=data[:CHALLENGE_BYTES],
            counter=int.from_bytes(data[CHALLENGE_BYTES : OPEN_RESPONSE_BYTES - 1], "big"),
            ratified=ratified_byte == RATIFIED,
            record=data[OPEN_RESPONSE_BYTES:] if self.reads_record else None,
        )


class UpdateRecord(Command[None]):
    """UPDATE RECORD: replace one record of a linear file (environment, contracts)."""

    name = "UPDATE RECORD"
    STATUS_TABLE = _status_table(
        {
            Sw.CONDITIONS_NOT_SATISFIED: _NOT_SELECTED,
            Sw.SECURITY_NOT_SATISFIED: _OUTSIDE_SESSION_OR_LEVEL,
            Sw.INCOMPATIBLE_FILE: Status("the file cannot be updated", IncompatibleFile),
            Sw.TOO_MANY_CHANGES: _TOO_MANY_CHANGES,
            Sw.FILE_NOT_FOUND: _FILE_NOT_FOUND,
            Sw.RECORD_NOT_FOUND: _RECORD_NOT_FOUND,
        }
    )

    def __init__(self, sfi: Sfi, record: int, data: bytes) -> None:
        require((sfi, Ins.UPDATE_RECORD) in LEVELS_ALLOWED, f"{sfi.name} is not updated")
        _require_record(sfi, record)
        require(len(data) == RECORD_BYTES, "a record has 29 bytes")
        # APDU case 3.
        super().__init__(
            _apdu(Ins.UPDATE_RECORD, record, sfi << SFI_SHIFT | P2_RECORD_BY_SFI, data)
        )

    def _parse_data(self, data: bytes) -> None:
        _expect_empty(self, data)


class AppendRecord(Command[None]):
    """APPEND RECORD: the new record becomes record 1 of a cyclic file; the oldest drops."""

    name = "APPEND RECORD"
    STATUS_TABLE = _status_table(
        {
            Sw.CONDITIONS_NOT_SATISFIED: _NOT_SELECTED,
            Sw.SECURITY_NOT_SATISFIED: _OUTSIDE_SESSION_OR_LEVEL,
            Sw.INCOMPATIBLE_FILE: Status("the file is not cyclic", IncompatibleFile),
            Sw.TOO_MANY_CHANGES: _TOO_MANY_CHANGES,
            Sw.FILE_NOT_FOUND: _FILE_NOT_FOUND,
        }
    )

    def __init__(self, sfi: Sfi, data: bytes) -> None:
        require((sfi, Ins.APPEND_RECORD) in LEVELS_ALLOWED, f"{sfi.name} is not cyclic")
        require(len(data) == RECORD_BYTES, "a record has 29 bytes")
        # APDU case 3; no record number in P1, because APPEND always writes record 1.
        super().__init__(_apdu(Ins.APPEND_RECORD, NO_PARAMETER, sfi << SFI_SHIFT, data))

    def _parse_data(self, data: bytes) -> None:
        _expect_empty(self, data)


class _ChangeCounter(Command[int]):
    """DECREASE and INCREASE share a frame and answer with the purse's new value."""

    instruction: ClassVar[Ins]

    def __init__(self, amount_vnd: int, sfi: Sfi = Sfi.PURSE) -> None:
        require((sfi, self.instruction) in LEVELS_ALLOWED, f"{sfi.name} is not a counter")
        require(0 <= amount_vnd <= PURSE_MAX_VND, "an amount is a u24")
        amount = amount_vnd.to_bytes(COUNTER_BYTES, "big")
        # APDU case 4.
        super().__init__(_apdu(self.instruction, COUNTER_RECORD, sfi << SFI_SHIFT, amount, LE_ANY))

    def _parse_data(self, data: bytes) -> int:
        if len(data) != COUNTER_BYTES:
            raise self._malformed(f"a counter value has 3 bytes, not {len(data)}")
        return int.from_bytes(data, "big")


_COUNTER_REFUSALS: Mapping[int, Status] = {
    Sw.SECURITY_NOT_SATISFIED: _OUTSIDE_SESSION_OR_LEVEL,
    Sw.INCOMPATIBLE_FILE: Status("the file is not a counter", IncompatibleFile),
    Sw.TOO_MANY_CHANGES: _TOO_MANY_CHANGES,
    Sw.FILE_NOT_FOUND: _FILE_NOT_FOUND,
    Sw.RECORD_NOT_FOUND: _RECORD_NOT_FOUND,
}


class Decrease(_ChangeCounter):
    """DECREASE the purse (debit key level only)."""

    name = "DECREASE"
    instruction = Ins.DECREASE
    STATUS_TABLE = _status_table(
        {
            **_COUNTER_REFUSALS,
            Sw.CONDITIONS_NOT_SATISFIED: Status(
                "not selected, or the purse holds less than the amount", ConditionsNotSatisfied
            ),
        }
    )


class Increase(_ChangeCounter):
    """INCREASE the purse (load key level only)."""

    name = "INCREASE"
    instruction = Ins.INCREASE
    STATUS_TABLE = _status_table(
        {
            **_COUNTER_REFUSALS,
            Sw.CONDITIONS_NOT_SATISFIED: Status(
                "not selected, or the purse would pass 16 777 215 VND", ConditionsNotSatisfied
            ),
        }
    )


class CloseSecureSession(Command[bytes]):
    """CLOSE SECURE SESSION with the terminal MAC; the card commits and answers its own MAC."""

    name = "CLOSE SECURE SESSION"
    STATUS_TABLE = _status_table(
        {
            Sw.CONDITIONS_NOT_SATISFIED: Status("no session is open", ConditionsNotSatisfied),
            Sw.INCORRECT_MAC: Status("the card refused the terminal MAC", IncorrectMac),
        }
    )

    def __init__(self, terminal_mac: bytes) -> None:
        require(len(terminal_mac) == MAC_BYTES, "a MAC has 8 bytes")
        # APDU case 4.
        super().__init__(
            _apdu(Ins.CLOSE_SECURE_SESSION, NO_PARAMETER, NO_PARAMETER, terminal_mac, le=LE_ANY)
        )

    def _parse_data(self, data: bytes) -> bytes:
        if len(data) != MAC_BYTES:
            raise self._malformed(f"a MAC has 8 bytes, not {len(data)}")
        return data


class AbortSecureSession(Command[None]):
    """ABORT SECURE SESSION: the card drops every change of the session."""

    name = "ABORT SECURE SESSION"
    STATUS_TABLE = _status_table(
        {
            Sw.CONDITIONS_NOT_SATISFIED: Status("no session is open", ConditionsNotSatisfied),
        }
    )

    def __init__(self) -> None:
        # APDU case 1: CLOSE's instruction with no data tells the card to abort.
        super().__init__(_apdu(Ins.CLOSE_SECURE_SESSION, NO_PARAMETER, NO_PARAMETER))

    def _parse_data(self, data: bytes) -> None:
        _expect_empty(self, data)
