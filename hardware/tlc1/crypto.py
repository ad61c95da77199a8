"""TLC1 key diversification, session keys and MACs: AES-128 CMAC (spec/CARD.md, "Keys and MACs").

Pure functions over bytes, shared by the card emulator and the SAM so both sides compute the
same values from the same inputs.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC

from hardware.tlc1.constants import (
    CARD_MAC_LABEL,
    CHALLENGE_BYTES,
    COUNTER_BYTES,
    MAC_BYTES,
    SERIAL_BYTES,
    SESSION_KEY_LABEL,
    TERMINAL_MAC_LABEL,
)

KEY_BYTES = 16
_DIVERSIFICATION_PADDING = bytes(7)


def cmac(key: bytes, message: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise ValueError("TLC1 keys are AES-128: 16 bytes")
    mac = CMAC(AES(key))
    mac.update(message)
    return mac.finalize()


def card_key(master_key: bytes, *, serial: bytes, level: int) -> bytes:
    """K(level) = CMAC(master(level), serial ‖ level u8 ‖ seven zero bytes)."""
    if len(serial) != SERIAL_BYTES:
        raise ValueError("a card serial has 8 bytes")
    return cmac(master_key, serial + bytes([level]) + _DIVERSIFICATION_PADDING)


def session_key(
    key: bytes, *, terminal_challenge: bytes, card_challenge: bytes, counter: int
) -> bytes:
    """SK = CMAC(K(level), "TLSK" ‖ terminal challenge ‖ card challenge ‖ counter u24)."""
    if len(terminal_challenge) != CHALLENGE_BYTES or len(card_challenge) != CHALLENGE_BYTES:
        raise ValueError("challenges have 8 bytes")
    message = (
        SESSION_KEY_LABEL
        + terminal_challenge
        + card_challenge
        + counter.to_bytes(COUNTER_BYTES, "big")
    )
    return cmac(key, message)


def terminal_mac(session_key_: bytes, transcript: bytes) -> bytes:
    return cmac(session_key_, TERMINAL_MAC_LABEL + transcript)[:MAC_BYTES]


def card_mac(session_key_: bytes, transcript: bytes) -> bytes:
    return cmac(session_key_, CARD_MAC_LABEL + transcript)[:MAC_BYTES]
