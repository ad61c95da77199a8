"""The terminal side of a TLC1 transaction (spec/CARD.md): select, secure session, ratification.

`Terminal` drives one card through a `CardReader` with keys kept behind a `Sam`:

    serial = terminal.select()
    session = terminal.open_session(KeyLevel.DEBIT, read=(Sfi.ENVIRONMENT, 1))
    last_event = session.read_record(Sfi.EVENT_LOG, 1)
    session.decrease(fare_vnd)
    session.append_record(Sfi.EVENT_LOG, event)
    proof = session.close()  # the card committed, and proved it
    terminal.ratify()

A session ends exactly once: `close()` returns a `SessionProof`, or something raises and the
session is dead. No code path leaves a caller holding a session that looks alive after the card
refused a command, was torn away, or answered with a MAC the SAM rejects.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

from hardware.invariants import InvariantViolated, require
from hardware.reader import SW_BYTES, CardReader, ReaderError
from hardware.sam import Sam, SamError, SamSession
from hardware.tlc1.commands import (
    AbortSecureSession,
    AppendRecord,
    CardCommandError,
    CloseSecureSession,
    Command,
    Decrease,
    Increase,
    OpenSecureSession,
    ReadRecord,
    Select,
    UpdateRecord,
)
from hardware.tlc1.constants import CHALLENGE_BYTES, LEVELS_ALLOWED, Ins, KeyLevel, Sfi

ResultT = TypeVar("ResultT")

# The record a validator reads to ratify (CARD.md, "Ratification"): the event it just wrote.
RATIFY_RECORD = (Sfi.EVENT_LOG, 1)


def random_challenge() -> bytes:
    return os.urandom(CHALLENGE_BYTES)


@dataclass(frozen=True)
class SessionProof:
    """What the backend needs to recompute the session key and check the card took part."""

    serial: bytes
    level: KeyLevel
    terminal_challenge: bytes
    card_challenge: bytes
    counter: int
    transcript: bytes
    card_mac: bytes

    def to_wire(self) -> SessionProofWire:
        """The card tap's `proof` object as a validator uploads it, bytes in hex. The serial is
        not in it: it travels beside the proof, as the tap's own `serial`."""
        return {
            "level": int(self.level),
            "terminal_challenge": self.terminal_challenge.hex(),
            "card_challenge": self.card_challenge.hex(),
            "counter": self.counter,
            "transcript": self.transcript.hex(),
            "card_mac": self.card_mac.hex(),
        }

    @classmethod
    def from_wire(cls, serial: bytes, wire: Mapping[str, Any]) -> SessionProof:
        """The proof a `to_wire` object describes, of the card `serial`. The object is taken as
        checked (the API's schema bounds every field); a malformed one raises `ValueError`."""
        return cls(
            serial=serial,
            level=KeyLevel(int(wire["level"])),
            terminal_challenge=bytes.fromhex(wire["terminal_challenge"]),
            card_challenge=bytes.fromhex(wire["card_challenge"]),
            counter=int(wire["counter"]),
            transcript=bytes.fromhex(wire["transcript"]),
            card_mac=bytes.fromhex(wire["card_mac"]),
        )


class SessionProofWire(TypedDict):
    """A `SessionProof` in JSON: the `proof` of a card tap a validator uploads."""

    level: int
    terminal_challenge: str
    card_challenge: str
    counter: int
    transcript: str
    card_mac: str


class Terminal:
    """One card in one reader, as seen by a validator, a reload kiosk or the issuing desk."""

    def __init__(
        self,
        reader: CardReader,
        sam: Sam,
        *,
        challenges: Callable[[], bytes] = random_challenge,
    ) -> None:
        self._reader = reader
        self._sam = sam
        self._challenges = challenges
        self._serial: bytes | None = None
        self._session: OpenedSession | None = None

    def __repr__(self) -> str:
        return f"Terminal({self._reader.name!r})"

    def select(self) -> bytes:
        """SELECT the TLC1 application; returns the card's 8-byte serial."""
        self._require_no_session()
        self._serial = None
        self._serial = self._exchange(Select())[0].serial
        return self._serial

    def read_record(self, sfi: Sfi, record: int) -> bytes:
        """READ RECORD outside a session: nothing proves the card's answer is genuine."""
        self._require_no_session()
        return self._exchange(ReadRecord(sfi, record))[0]

    def ratify(self, read: tuple[Sfi, int] = RATIFY_RECORD) -> bytes:
        """The one command after CLOSE that marks the card ratified; returns the record read.

        A `CardIOError` here undoes nothing: the proof from `close()` stands, the card stays
        unratified, and the next validator accepts the re-tap without charging again.
        """
        return self.read_record(*read)

    def open_session(self, level: KeyLevel, read: tuple[Sfi, int] | None = None) -> OpenedSession:
        """OPEN SECURE SESSION at `level`, optionally reading one record in the same APDU."""
        serial = self._serial
        if serial is None:
            raise InvariantViolated("select the card before opening a session")
        self._require_no_session()
        terminal_challenge = self._challenges()
        require(len(terminal_challenge) == CHALLENGE_BYTES, "a challenge source gives 8 bytes")
        opened, response = self._exchange(OpenSecureSession(level, terminal_challenge, read))
        try:
            sam_session = self._sam.open_session(
                serial=serial,
                level=level,
                terminal_challenge=terminal_challenge,
                card_challenge=opened.card_challenge,
                counter=opened.counter,
            )
        except SamError:
            _abort_quietly(self._reader)  # the card opened; leave it with no session pending
            raise
        self._session = OpenedSession(
            self._reader,
            sam_session,
            serial=serial,
            level=level,
            terminal_challenge=terminal_challenge,
            card_challenge=opened.card_challenge,
            counter=opened.counter,
            ratified=opened.ratified,
            record=opened.record,
            opening_data=response[:-SW_BYTES],
        )
        return self._session

    def _require_no_session(self) -> None:
        require(
            self._session is None or not self._session.is_open,
            "a secure session is open: close or abort it first",
        )

    def _exchange(self, command: Command[ResultT]) -> tuple[ResultT, bytes]:
        response = self._reader.transmit(command.apdu)
        return command.parse(response), response


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    ABORTED = "aborted"
    DEAD = "dead"


class OpenedSession:
    """A secure session the card has opened: the OPEN answer, and the commands allowed in it.

    Every command and its full response goes into the transcript the MACs cover. Any failure
    (a refusal, a torn card, a dead reader, a MAC the SAM rejects) kills the session: the error
    propagates and every later use is a bug caught by `require()`.
    """

    def __init__(
        self,
        reader: CardReader,
        sam_session: SamSession,
        *,
        serial: bytes,
        level: KeyLevel,
        terminal_challenge: bytes,
        card_challenge: bytes,
        counter: int,
        ratified: bool,
        record: bytes | None,
        opening_data: bytes,
    ) -> None:
        self._reader = reader
        self._sam_session = sam_session
        self.serial = serial
        self.level = level
        self.terminal_challenge = terminal_challenge
        self.card_challenge = card_challenge
        self.counter = counter
        self.ratified = ratified
        self.record = record
        self._transcript = bytearray(opening_data)
        self._state = _State.OPEN

    def __repr__(self) -> str:
        return (
            f"OpenedSession(level={int(self.level)}, counter={self.counter}, {self._state.value})"
        )

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    @property
    def transcript(self) -> bytes:
        return bytes(self._transcript)

    def read_record(self, sfi: Sfi, record: int) -> bytes:
        return self._run(ReadRecord(sfi, record))

    def update_record(self, sfi: Sfi, record: int, data: bytes) -> None:
        self._require_level(sfi, Ins.UPDATE_RECORD)
        self._run(UpdateRecord(sfi, record, data))

    def append_record(self, sfi: Sfi, data: bytes) -> None:
        self._require_level(sfi, Ins.APPEND_RECORD)
        self._run(AppendRecord(sfi, data))

    def decrease(self, amount_vnd: int, sfi: Sfi = Sfi.PURSE) -> int:
        """Debit the purse; returns its new value (written only when `close()` succeeds)."""
        self._require_level(sfi, Ins.DECREASE)
        return self._run(Decrease(amount_vnd, sfi))

    def increase(self, amount_vnd: int, sfi: Sfi = Sfi.PURSE) -> int:
        """Load the purse; returns its new value (written only when `close()` succeeds)."""
        self._require_level(sfi, Ins.INCREASE)
        return self._run(Increase(amount_vnd, sfi))

    def close(self) -> SessionProof:
        """CLOSE: the card checks our MAC, commits, and answers its own, which the SAM checks.

        `IncorrectMac` if the card refuses our MAC (it drops every change); `CardMacRejected`
        if the card committed but its MAC does not verify, so it cannot be trusted.
        """
        require(self.is_open, f"the session is {self._state.value}")
        transcript = bytes(self._transcript)
        command = CloseSecureSession(self._sam_session.terminal_mac(transcript))
        # The card ends its session whatever it answers, so there is nothing left to abort.
        self._state = _State.DEAD
        card_mac = command.parse(self._reader.transmit(command.apdu))
        proof = SessionProof(
            serial=self.serial,
            level=self.level,
            terminal_challenge=self.terminal_challenge,
            card_challenge=self.card_challenge,
            counter=self.counter,
            transcript=transcript,
            card_mac=card_mac,
        )
        if not self._sam_session.card_mac_is_valid(transcript, card_mac):
            raise CardMacRejected(proof)
        self._state = _State.CLOSED
        return proof

    def abort(self) -> None:
        """ABORT: the card drops every change of the session."""
        require(self.is_open, f"the session is {self._state.value}")
        self._state = _State.ABORTED
        command = AbortSecureSession()
        command.parse(self._reader.transmit(command.apdu))

    def _require_level(self, sfi: Sfi, instruction: Ins) -> None:
        allowed = LEVELS_ALLOWED.get((sfi, instruction), frozenset())
        require(self.level in allowed, f"level {int(self.level)} may not change {sfi.name}")

    def _run(self, command: Command[ResultT]) -> ResultT:
        require(self.is_open, f"the session is {self._state.value}")
        try:
            response = self._reader.transmit(command.apdu)
        except ReaderError:
            self._state = _State.DEAD  # no card to abort: losing power drops the session
            raise
        self._transcript += command.apdu + response
        try:
            return command.parse(response)
        except CardCommandError:
            # The card keeps its session open after refusing a command; ABORT it so the next
            # OPEN on this card works.
            self._state = _State.DEAD
            _abort_quietly(self._reader)
            raise


def _abort_quietly(reader: CardReader) -> None:
    """ABORT on the way out of a failure. If the ABORT fails too, power-off drops the card's
    session anyway, and the failure that brought us here is the error worth reporting."""
    command = AbortSecureSession()
    try:
        command.parse(reader.transmit(command.apdu))
    except (CardCommandError, ReaderError):
        return


class CardMacRejected(Exception):
    """The card committed the session, but its MAC does not verify: not a genuine card, or the
    answer was changed on the way. Treat the transaction as not proven.

    `proof` is what the card answered, for the backend to examine: it proves nothing by itself.
    """

    def __init__(self, proof: SessionProof) -> None:
        super().__init__(f"card {proof.serial.hex().upper()}: the card MAC does not verify")
        self.serial = proof.serial
        self.proof = proof
