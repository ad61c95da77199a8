"""The card emulator's vectors, a terminal that talks to it, and the APDUs of each command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from hardware.emulator.card import EmulatedCard
from hardware.emulator.key_file import card_keys_from_master
from hardware.tlc1.constants import (
    AID,
    CHALLENGE_BYTES,
    COUNTER_BYTES,
    Ins,
    KeyLevel,
    Sfi,
)
from hardware.tlc1.crypto import session_key, terminal_mac
from tests.vectors import CARD_VECTORS_PATH

VECTORS: dict[str, Any] = json.loads(CARD_VECTORS_PATH.read_text())


TRACE: list[dict[str, str]] = VECTORS["trace"]


SERIAL = bytes.fromhex(VECTORS["serial"])


MASTER_KEYS = {
    KeyLevel(int(level)): bytes.fromhex(key) for level, key in VECTORS["master_keys"].items()
}


OK = bytes.fromhex("9000")


ABORT = bytes.fromhex("008E0000")


TERMINAL_CHALLENGE = bytes(range(CHALLENGE_BYTES))


def trace_bytes(index: int, side: str) -> bytes:
    return bytes.fromhex(TRACE[index][side])


def step_name(index: int) -> str:
    """The name of the trace step an APDU belongs to, for failure messages."""
    names: list[str] = [step["step"] for step in VECTORS["steps"] if step["from"] <= index]
    return names[-1]


def trace_card_challenges() -> Callable[[], bytes]:
    """Replays the card challenges of the trace: the first 8 bytes of each OPEN response."""
    opens = [
        i for i in range(len(TRACE)) if trace_bytes(i, "command")[1] == Ins.OPEN_SECURE_SESSION
    ]
    challenges: Iterator[bytes] = iter(trace_bytes(i, "response")[:CHALLENGE_BYTES] for i in opens)
    return lambda: next(challenges)


def blank_card(**options: Any) -> EmulatedCard:
    """The vectors' card, blank and powered on."""
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, **options)
    card.power_on()
    return card


def select_apdu(aid: bytes = AID) -> bytes:
    return bytes([0x00, Ins.SELECT, 0x04, 0x00, len(aid)]) + aid + b"\x00"


def read_apdu(sfi: int, record: int = 1) -> bytes:
    return bytes([0x00, Ins.READ_RECORD, record, (sfi << 3) | 4, 0x00])


def open_apdu(level: int, p2: int = 0, challenge: bytes = TERMINAL_CHALLENGE) -> bytes:
    return bytes([0x00, Ins.OPEN_SECURE_SESSION, level, p2, len(challenge)]) + challenge + b"\x00"


def update_apdu(sfi: int, record: int, data: bytes) -> bytes:
    return bytes([0x00, Ins.UPDATE_RECORD, record, (sfi << 3) | 4, len(data)]) + data


def append_apdu(sfi: int, data: bytes) -> bytes:
    return bytes([0x00, Ins.APPEND_RECORD, 0x00, sfi << 3, len(data)]) + data


def decrease_apdu(amount_vnd: int, sfi: int = Sfi.PURSE) -> bytes:
    amount = amount_vnd.to_bytes(COUNTER_BYTES, "big")
    return bytes([0x00, Ins.DECREASE, 0x01, sfi << 3, COUNTER_BYTES]) + amount + b"\x00"


def increase_apdu(amount_vnd: int, sfi: int = Sfi.PURSE) -> bytes:
    amount = amount_vnd.to_bytes(COUNTER_BYTES, "big")
    return bytes([0x00, Ins.INCREASE, 0x01, sfi << 3, COUNTER_BYTES]) + amount + b"\x00"


def close_apdu(mac: bytes) -> bytes:
    return bytes([0x00, Ins.CLOSE_SECURE_SESSION, 0x00, 0x00, len(mac)]) + mac + b"\x00"


class Terminal:
    """Just enough of a terminal to run sessions: keeps the transcript and computes the MAC."""

    def __init__(self, card: EmulatedCard) -> None:
        self.card = card
        self.card_keys = card_keys_from_master(MASTER_KEYS, SERIAL)
        self.session_key: bytes | None = None
        self.transcript = bytearray()

    def send(self, apdu: bytes) -> bytes:
        response = self.card.transmit(apdu)
        if self.session_key is not None:
            self.transcript += apdu + response
        return response

    def open(self, level: KeyLevel, p2: int = 0, challenge: bytes = TERMINAL_CHALLENGE) -> bytes:
        response = self.card.transmit(open_apdu(level, p2, challenge))
        if response[-2:] == OK:
            card_challenge = response[:CHALLENGE_BYTES]
            counter_bytes = response[CHALLENGE_BYTES : CHALLENGE_BYTES + COUNTER_BYTES]
            self.session_key = session_key(
                self.card_keys[level],
                terminal_challenge=challenge,
                card_challenge=card_challenge,
                counter=int.from_bytes(counter_bytes, "big"),
            )
            self.transcript = bytearray(response[:-2])
        return response

    def mac(self) -> bytes:
        assert self.session_key is not None
        return terminal_mac(self.session_key, bytes(self.transcript))

    def close(self, mac: bytes | None = None) -> bytes:
        response = self.card.transmit(close_apdu(self.mac() if mac is None else mac))
        self.session_key = None
        return response

    def session(self, level: KeyLevel, *apdus: bytes) -> list[bytes]:
        """OPEN, the APDUs, CLOSE: every response, the OPEN's first and the CLOSE's last."""
        responses = [self.open(level)]
        responses += [self.send(apdu) for apdu in apdus]
        responses.append(self.close())
        return responses
