"""An emulated TLC1 card (spec/CARD.md): every command, status word, session rule and power event.

The card keeps its non-volatile memory in a `CardImage` (records, purse, transaction counter,
ratification flag; `image.py`) and everything volatile (power, selection, the open session) in
itself, so a power cut drops exactly what a real card's RAM would lose. Changes made in a session
live in a shadow copy and reach the image only when CLOSE verifies the terminal's MAC.

Where CARD.md is silent the card follows the ISO 7816-4 habit; each such choice is commented.
Status-word precedence, first failure wins: APDU shorter than a header (6700) → CLA (6E00) →
INS (6D00) → not selected (6985) → length (6700) → P1/P2 (6B00) → session state (6982 for a change
outside a session, 6985 for OPEN, CLOSE and ABORT) → file (6A82) → command against the file (6981)
→ key level (6982) → record number (6A83) → limits (6400, 6900) → purse bounds (6985).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hardware.emulator.image import CardImage, CardImageError, ImageStore
from hardware.emulator.key_file import card_keys_from_master
from hardware.invariants import require
from hardware.tlc1.constants import (
    AID,
    CHALLENGE_BYTES,
    CHANGES_PER_SESSION_MAX,
    CLA,
    COUNTER_BYTES,
    LEVELS_ALLOWED,
    MAC_BYTES,
    PURSE_MAX_VND,
    RECORD_BYTES,
    RECORDS_PER_FILE,
    Ins,
    KeyLevel,
    Sfi,
    Sw,
)
from hardware.tlc1.crypto import KEY_BYTES, card_mac, session_key, terminal_mac
from hardware.tlc1.records import Purse

# A contactless card's ATR as PC/SC Part 3 synthesises it for an ISO 14443-4 card:
# TS 3B (direct convention) · T0 84 (TD1 follows, 4 historical bytes) · TD1 80 (TD2 follows, T=0)
# · TD2 01 (T=1, nothing follows) · historical bytes "TLC1" (a first byte other than 00/10/80 marks
# them proprietary, ISO 7816-4 §8.1.1) · TCK 6F, the XOR of T0..the last historical byte.
ATR = bytes.fromhex("3B848001544C43316F")

FCI_TAG, DF_NAME_TAG, SERIAL_TAG = 0x6F, 0x84, 0xC7
SELECT_BY_NAME = (0x04, 0x00)
DF_NAME_BYTES_MAX = 16  # ISO 7816-4: a DF name has 1..16 bytes
HEADER_BYTES = 4
P2_SFI_SHIFT = 3
P2_LOW_BITS = 0b111
P2_RECORD_IN_P1 = 0b100  # READ/UPDATE RECORD: "P1 is a record number"
NOT_RATIFIED, RATIFIED = b"\x01", b"\x00"


def random_challenge() -> bytes:
    return os.urandom(CHALLENGE_BYTES)


class CardTorn(Exception):
    """The card has no power (torn from the field, or not yet powered on): it answers nothing."""


class _Refused(Exception):
    """A command the card answers with a status word other than 9000 and no other effect."""

    def __init__(self, sw: Sw) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


# --- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Command:
    """A short ISO 7816-4 command APDU; Le is accepted and ignored, as T=1/T=CL cards do."""

    ins: int
    p1: int
    p2: int
    data: bytes

    @classmethod
    def parse(cls, apdu: bytes) -> _Command:
        _cla, ins, p1, p2 = apdu[:HEADER_BYTES]
        body = apdu[HEADER_BYTES:]
        if len(body) <= 1:  # case 1, or case 2 (Le only)
            return cls(ins, p1, p2, b"")
        lc, rest = body[0], body[1:]
        # Lc = 0 would announce extended length, which this card does not support.
        if lc == 0 or len(rest) not in (lc, lc + 1):
            raise _Refused(Sw.WRONG_LENGTH)
        return cls(ins, p1, p2, rest[:lc])


@dataclass
class _Session:
    level: KeyLevel
    key: bytes
    transcript: bytearray
    records: dict[Sfi, list[bytes]]
    purse_vnd: int
    changes: int = 0


def _sw(sw: Sw) -> bytes:
    return sw.to_bytes(2, "big")


OK = _sw(Sw.OK)


class EmulatedCard:
    """A TLC1 card. `transmit` takes a command APDU and returns the response APDU (data ‖ SW).

    `image` is the card's non-volatile memory, saved to `store` after every change to it (a
    commit, the counter going down at OPEN, a ratification). `tear_after`: in each power cycle the
    card answers that many APDUs, then loses power; the next APDU is not processed and raises
    `CardTorn`, as does every later one until `power_on()`. A new card object is out of the field.
    """

    def __init__(
        self,
        image: CardImage,
        card_keys: Mapping[KeyLevel, bytes],
        *,
        challenges: Callable[[], bytes] = random_challenge,
        store: ImageStore | None = None,
        tear_after: int | None = None,
    ) -> None:
        require(set(card_keys) == set(KeyLevel), "a card holds one key per level")
        require(all(len(k) == KEY_BYTES for k in card_keys.values()), "keys are AES-128")
        require(tear_after is None or tear_after >= 0, "tear_after counts APDUs")
        image.check()
        self.image = image
        self.tear_after = tear_after
        self._card_keys = dict(card_keys)
        self._challenges = challenges
        self._store = store
        self._powered = False
        self._answered = 0
        self._selected = False
        self._session: _Session | None = None

    @classmethod
    def from_master_keys(
        cls,
        master_keys: Mapping[KeyLevel, bytes],
        serial: bytes,
        *,
        image: CardImage | None = None,
        challenges: Callable[[], bytes] = random_challenge,
        store: ImageStore | None = None,
        tear_after: int | None = None,
    ) -> EmulatedCard:
        """The card of `serial`, its keys diversified from the issuer's; blank unless `image`."""
        image = image if image is not None else CardImage.blank(serial)
        if image.serial != serial:
            raise CardImageError(f"the image is of card {image.serial.hex()}, not {serial.hex()}")
        keys = card_keys_from_master(master_keys, serial)
        return cls(image, keys, challenges=challenges, store=store, tear_after=tear_after)

    @property
    def serial(self) -> bytes:
        return self.image.serial

    # --- power ---------------------------------------------------------------------------------

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def in_session(self) -> bool:
        return self._session is not None

    def power_on(self) -> bytes:
        """Brings the card into the field: a new power cycle, nothing selected; returns the ATR."""
        self._drop_volatile_state()
        self._powered = True
        self._answered = 0
        return ATR

    def power_off(self) -> None:
        """Takes the card out of the field: the session and its changes are lost, the image kept."""
        self._drop_volatile_state()
        self._powered = False

    def reset(self) -> bytes:
        """A warm reset restarts the card like a power cycle (RAM is cleared either way)."""
        self.power_off()
        return self.power_on()

    def _drop_volatile_state(self) -> None:
        self._selected = False
        self._session = None

    # --- APDUs ---------------------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        if not self._powered:
            raise CardTorn("the card has no power")
        if self.tear_after is not None and self._answered >= self.tear_after:
            self.power_off()
            raise CardTorn(f"the card lost power after {self._answered} APDUs")
        self._answered += 1
        self._ratify_on(apdu)
        session = self._session
        try:
            response = self._execute(apdu)
        except _Refused as refused:
            response = _sw(refused.sw)
        if session is not None and self._session is session and not _is_close_or_abort(apdu):
            session.transcript += apdu + response
        return response

    def _ratify_on(self, apdu: bytes) -> None:
        """CARD.md, "Ratification": after a CLOSE the card stays unratified until it receives any
        command other than SELECT and OPEN SECURE SESSION, in the same or a later power-up.

        SELECT and OPEN must leave the flag, because every validator sends both before it can
        read the flag (OPEN reports it): were either to ratify, no validator would ever see the
        `01` that tearing recovery depends on. The flag is in the image, so it survives a power
        loss. Any other APDU ratifies, even one the card refuses: the card received it.
        """
        if self.image.ratified:
            return
        if len(apdu) > 1 and apdu[1] in (Ins.SELECT, Ins.OPEN_SECURE_SESSION):
            return
        self.image.ratified = True
        self._persist()

    def _execute(self, apdu: bytes) -> bytes:
        if len(apdu) < HEADER_BYTES:
            raise _Refused(Sw.WRONG_LENGTH)
        if apdu[0] != CLA:
            raise _Refused(Sw.UNKNOWN_CLA)
        if apdu[1] not in Ins.__members__.values():
            raise _Refused(Sw.UNKNOWN_INS)
        ins = Ins(apdu[1])
        if ins != Ins.SELECT and not self._selected:
            raise _Refused(Sw.CONDITIONS_NOT_SATISFIED)
        command = _Command.parse(apdu)
        if ins == Ins.SELECT:
            return self._select(command)
        if ins == Ins.READ_RECORD:
            return self._read_record(command)
        if ins == Ins.OPEN_SECURE_SESSION:
            return self._open(command)
        if ins == Ins.CLOSE_SECURE_SESSION:
            return self._close(command) if command.data else self._abort(command)
        return self._change(ins, command)

    def _select(self, command: _Command) -> bytes:
        if not 1 <= len(command.data) <= DF_NAME_BYTES_MAX:
            raise _Refused(Sw.WRONG_LENGTH)
        if (command.p1, command.p2) != SELECT_BY_NAME:
            raise _Refused(Sw.WRONG_PARAMETERS)
        if command.data != AID:
            # ISO habit: a failed SELECT leaves the current selection (and session) as it was.
            raise _Refused(Sw.FILE_NOT_FOUND)
        # Selecting the application again restarts it, as a Java Card applet's select() would:
        # an open session is dropped with its changes.
        self._session = None
        self._selected = True
        proprietary = bytes([DF_NAME_TAG, len(AID)]) + AID
        proprietary += bytes([SERIAL_TAG, len(self.image.serial)]) + self.image.serial
        return bytes([FCI_TAG, len(proprietary)]) + proprietary + OK

    def _read_record(self, command: _Command) -> bytes:
        if command.data:
            raise _Refused(Sw.WRONG_LENGTH)
        if command.p2 & P2_LOW_BITS != P2_RECORD_IN_P1:
            raise _Refused(Sw.WRONG_PARAMETERS)
        sfi = _file(command.p2 >> P2_SFI_SHIFT)
        return self._record(sfi, command.p1) + OK

    def _record(self, sfi: Sfi, number: int) -> bytes:
        """The record as this session sees it (its own changes included), else as committed."""
        if not 1 <= number <= RECORDS_PER_FILE[sfi]:
            raise _Refused(Sw.RECORD_NOT_FOUND)
        view = self._session if self._session is not None else self.image
        if sfi == Sfi.PURSE:
            return Purse(view.purse_vnd).encode()
        return view.records[sfi][number - 1]

    def _open(self, command: _Command) -> bytes:
        if len(command.data) != CHALLENGE_BYTES:
            raise _Refused(Sw.WRONG_LENGTH)
        if command.p1 not in KeyLevel.__members__.values():
            raise _Refused(Sw.WRONG_PARAMETERS)
        if self._session is not None:
            raise _Refused(Sw.CONDITIONS_NOT_SATISFIED)
        record = b""
        if command.p2:
            sfi = _file(command.p2 >> P2_SFI_SHIFT)
            record = self._record(sfi, command.p2 & P2_LOW_BITS)
        if self.image.transaction_counter == 0:
            raise _Refused(Sw.COUNTER_EXHAUSTED)
        # The counter goes down before anything else can fail, and is written at once: a session
        # that never closes still used up its number, so no two sessions share a session key.
        self.image.transaction_counter -= 1
        self._persist()
        counter = self.image.transaction_counter
        card_challenge = self._challenges()
        require(len(card_challenge) == CHALLENGE_BYTES, "a card challenge has 8 bytes")
        level = KeyLevel(command.p1)
        key = session_key(
            self._card_keys[level],
            terminal_challenge=command.data,
            card_challenge=card_challenge,
            counter=counter,
        )
        data = card_challenge + counter.to_bytes(COUNTER_BYTES, "big")
        data += (RATIFIED if self.image.ratified else NOT_RATIFIED) + record
        shadow = self.image.copy()
        self._session = _Session(level, key, bytearray(data), shadow.records, shadow.purse_vnd)
        return data + OK

    def _change(self, ins: Ins, command: _Command) -> bytes:
        """UPDATE RECORD, APPEND RECORD, DECREASE and INCREASE: session-only file changes."""
        expected_bytes = COUNTER_BYTES if ins in (Ins.DECREASE, Ins.INCREASE) else RECORD_BYTES
        if len(command.data) != expected_bytes:
            raise _Refused(Sw.WRONG_LENGTH)
        low_bits = P2_RECORD_IN_P1 if ins == Ins.UPDATE_RECORD else 0
        if command.p2 & P2_LOW_BITS != low_bits or (ins == Ins.APPEND_RECORD and command.p1):
            raise _Refused(Sw.WRONG_PARAMETERS)
        session = self._session
        if session is None:
            raise _Refused(Sw.SECURITY_NOT_SATISFIED)
        sfi = _file(command.p2 >> P2_SFI_SHIFT)
        allowed = LEVELS_ALLOWED.get((sfi, ins))
        if allowed is None:
            raise _Refused(Sw.INCOMPATIBLE_FILE)
        if session.level not in allowed:
            raise _Refused(Sw.SECURITY_NOT_SATISFIED)
        if ins != Ins.APPEND_RECORD:
            self._record(sfi, command.p1)  # refuses a record number the file does not have
        if session.changes >= CHANGES_PER_SESSION_MAX:
            raise _Refused(Sw.TOO_MANY_CHANGES)
        response = b""
        if ins == Ins.UPDATE_RECORD:
            session.records[sfi][command.p1 - 1] = command.data
        elif ins == Ins.APPEND_RECORD:
            # A cyclic file: the new record becomes record 1 and the oldest falls off the end.
            session.records[sfi] = [command.data, *session.records[sfi][:-1]]
        else:
            amount_vnd = int.from_bytes(command.data, "big")
            sign = -1 if ins == Ins.DECREASE else 1
            value_vnd = session.purse_vnd + sign * amount_vnd
            if not 0 <= value_vnd <= PURSE_MAX_VND:
                raise _Refused(Sw.CONDITIONS_NOT_SATISFIED)
            session.purse_vnd = value_vnd
            response = value_vnd.to_bytes(COUNTER_BYTES, "big")
        session.changes += 1
        return response + OK

    def _close(self, command: _Command) -> bytes:
        if len(command.data) != MAC_BYTES:
            raise _Refused(Sw.WRONG_LENGTH)
        if command.p1 or command.p2:
            raise _Refused(Sw.WRONG_PARAMETERS)
        session = self._session
        if session is None:
            raise _Refused(Sw.CONDITIONS_NOT_SATISFIED)
        # From here the session ends whatever the MAC: a wrong one drops every change (6988).
        self._session = None
        transcript = bytes(session.transcript)
        if not hmac.compare_digest(command.data, terminal_mac(session.key, transcript)):
            raise _Refused(Sw.INCORRECT_MAC)
        self.image.records = session.records
        self.image.purse_vnd = session.purse_vnd
        self.image.ratified = False
        self._persist()
        return card_mac(session.key, transcript) + OK

    def _abort(self, command: _Command) -> bytes:
        if command.p1 or command.p2:
            raise _Refused(Sw.WRONG_PARAMETERS)
        if self._session is None:
            raise _Refused(Sw.CONDITIONS_NOT_SATISFIED)
        self._session = None
        return OK

    def _persist(self) -> None:
        if self._store is not None:
            self._store.save(self.image)


def _file(number: int) -> Sfi:
    if number not in Sfi.__members__.values():
        raise _Refused(Sw.FILE_NOT_FOUND)
    return Sfi(number)


def _is_close_or_abort(apdu: bytes) -> bool:
    """CLOSE and ABORT end the transcript instead of entering it (spec/CARD.md, "Keys and MACs").

    Only an APDU the card recognised as one (right CLA, INS 8E) counts; anything else, even a
    refused command, is part of the session's transcript with its status word.
    """
    return len(apdu) >= HEADER_BYTES and apdu[0] == CLA and apdu[1] == Ins.CLOSE_SECURE_SESSION
