"""The SAM port: the terminal's keys live behind it, and session keys never come out.

A terminal asks the SAM to open a session for one card (serial, key level, both challenges,
transaction counter); the returned `SamSession` computes the terminal MAC over a transcript and
checks the card's MAC. `SoftwareSam` is the development SAM, holding the issuer's master keys
in memory; production puts an HSM or a real SAM behind the same port.

Key files (spec/CARD.md, "Key files") map each level to 32 hex characters. A validator's file
should hold only the levels it uses (a bus validator: level 3), so every level is optional.
The sealed form is that JSON under AES-256-GCM with a 32-byte key-encryption key, as
`base64(nonce ‖ ciphertext ‖ tag)` with a fixed associated label, like the issuer-key vault.
The two forms cannot be mistaken for each other (`key_file_form`): a JSON object opens with `{`,
which is no base64 character.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hardware.invariants import require
from hardware.tlc1 import crypto
from hardware.tlc1.constants import CHALLENGE_BYTES, MAC_BYTES, SERIAL_BYTES, KeyLevel
from hardware.tlc1.crypto import KEY_BYTES

KEK_BYTES = 32
NONCE_BYTES = 12
SEALED_LABEL = b"tapledger/tlc1-master-keys/v1"
KEY_FILE_BYTES_MAX = 4096  # three levels of 32 hex characters fit many times over
COUNTER_MAX = 0xFFFFFF
# Diversified card keys a software SAM remembers (about 200 bytes each); cleared when full.
CARD_KEYS_REMEMBERED_MAX = 50_000
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class SamSession(Protocol):
    """The SAM's half of one secure session; it holds the session key and never returns it."""

    def terminal_mac(self, transcript: bytes) -> bytes:
        """The 8-byte MAC the terminal sends in CLOSE SECURE SESSION."""
        ...

    def card_mac_is_valid(self, transcript: bytes, card_mac: bytes) -> bool:
        """Whether the card's CLOSE answer proves it holds the card key for this session."""
        ...


class Sam(Protocol):
    """A secure access module: derives card and session keys from keys it keeps to itself."""

    def open_session(
        self,
        *,
        serial: bytes,
        level: KeyLevel,
        terminal_challenge: bytes,
        card_challenge: bytes,
        counter: int,
    ) -> SamSession:
        """Start the SAM's half of a session; `KeyLevelNotHeld` if it lacks that level."""
        ...


class SoftwareSam:
    """Master keys in process memory: for development, tests and the card emulator's twin."""

    __slots__ = ("_card_keys", "_master_keys")

    def __init__(self, master_keys: Mapping[KeyLevel, bytes]) -> None:
        require(bool(master_keys), "a SAM needs at least one key")
        require(all(len(key) == KEY_BYTES for key in master_keys.values()), "keys are AES-128")
        self._master_keys = {KeyLevel(level): bytes(key) for level, key in master_keys.items()}
        # A card taps many times: its key, derived from a master key already in this memory,
        # is remembered rather than derived again for every session.
        self._card_keys: dict[tuple[bytes, KeyLevel], bytes] = {}

    @classmethod
    def from_key_file(cls, path: Path) -> SoftwareSam:
        """The plain JSON key file, for development and tests."""
        content = read_key_file(path)
        if key_file_form(content) is KeyFileForm.SEALED:
            raise KeyFileInvalid(
                f"{path} is a sealed key file; this reader takes the plain JSON form"
            )
        return cls(parse_key_file(content))

    @classmethod
    def from_sealed_key_file(cls, path: Path, *, kek: bytes) -> SoftwareSam:
        """The AES-256-GCM sealed key file, opened with the key-encryption key from settings."""
        return cls(parse_key_file(unseal_key_file(read_key_file(path), kek=kek)))

    def __repr__(self) -> str:
        return f"SoftwareSam(levels={sorted(int(level) for level in self._master_keys)})"

    __str__ = __repr__

    @property
    def levels(self) -> frozenset[KeyLevel]:
        return frozenset(self._master_keys)

    def open_session(
        self,
        *,
        serial: bytes,
        level: KeyLevel,
        terminal_challenge: bytes,
        card_challenge: bytes,
        counter: int,
    ) -> SamSession:
        require(len(serial) == SERIAL_BYTES, "a serial has 8 bytes")
        require(len(terminal_challenge) == CHALLENGE_BYTES, "a challenge has 8 bytes")
        require(len(card_challenge) == CHALLENGE_BYTES, "a challenge has 8 bytes")
        require(0 <= counter <= COUNTER_MAX, "the transaction counter is a u24")
        key = crypto.session_key(
            self._card_key(serial, level),
            terminal_challenge=terminal_challenge,
            card_challenge=card_challenge,
            counter=counter,
        )
        return _SoftwareSamSession(key, level)

    def _card_key(self, serial: bytes, level: KeyLevel) -> bytes:
        serial = bytes(serial)
        known = self._card_keys.get((serial, level))
        if known is not None:
            return known
        master = self._master_keys.get(level)
        if master is None:
            raise KeyLevelNotHeld(level)
        key = crypto.card_key(master, serial=serial, level=level)
        if len(self._card_keys) >= CARD_KEYS_REMEMBERED_MAX:
            self._card_keys.clear()
        self._card_keys[(serial, level)] = key
        return key


class _SoftwareSamSession:
    __slots__ = ("_key", "_level")

    def __init__(self, key: bytes, level: KeyLevel) -> None:
        self._key = key
        self._level = level

    def __repr__(self) -> str:
        return f"SamSession(level={int(self._level)})"

    __str__ = __repr__

    def terminal_mac(self, transcript: bytes) -> bytes:
        return crypto.terminal_mac(self._key, transcript)

    def card_mac_is_valid(self, transcript: bytes, card_mac: bytes) -> bool:
        if len(card_mac) != MAC_BYTES:
            return False
        # Constant time, so a forger learns nothing from how long a refusal takes.
        return hmac.compare_digest(crypto.card_mac(self._key, transcript), card_mac)


def parse_key_file(text: bytes) -> dict[KeyLevel, bytes]:
    """`{"1": hex32, "2": hex32, "3": hex32}`, any non-empty subset of the levels.

    Errors never quote the file, and are raised outside any `except` block so that no parser
    exception (`JSONDecodeError.doc` is the whole file) rides along as their `__context__`.
    """
    document = _json_or_none(text)
    if not isinstance(document, dict) or not document:
        raise KeyFileInvalid('the key file must be a JSON object like {"3": "<32 hex>"}')
    keys: dict[KeyLevel, bytes] = {}
    names = {str(int(level)): level for level in KeyLevel}
    for name, value in document.items():
        level = names.get(name)
        if level is None:
            raise KeyFileInvalid("the key file names a level other than 1, 2 and 3")
        if not isinstance(value, str) or len(value) != 2 * KEY_BYTES:
            raise KeyFileInvalid(f"the level {name} key must be {2 * KEY_BYTES} hex characters")
        if not set(value) <= HEX_DIGITS:
            raise KeyFileInvalid(f"the level {name} key is not hexadecimal")
        keys[level] = bytes.fromhex(value)
    return keys


class KeyFileForm(StrEnum):
    PLAIN = "plain"  # the JSON object itself
    SEALED = "sealed"  # base64 of the AES-256-GCM sealed JSON


def key_file_form(content: bytes) -> KeyFileForm:
    """Which form a key file's content is in; `KeyFileInvalid` when it is neither.

    Only the shape is looked at: whether a plain file parses, or a sealed one opens, is for
    `parse_key_file` and `unseal_key_file` to say.
    """
    text = content.strip()
    if text.startswith(b"{"):
        return KeyFileForm.PLAIN
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        raise KeyFileInvalid(
            "the key file is neither a JSON key file nor a sealed one (base64)"
        ) from None
    return KeyFileForm.SEALED


def _json_or_none(text: bytes) -> object:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def seal_key_file(plain: bytes, *, kek: bytes, nonce: bytes | None = None) -> bytes:
    """The sealed form of a plain key file. `nonce` is for reproducible tests only."""
    require(len(kek) == KEK_BYTES, "the key-encryption key has 32 bytes")
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    require(len(nonce) == NONCE_BYTES, "an AES-GCM nonce has 12 bytes")
    sealed = nonce + AESGCM(kek).encrypt(nonce, plain, SEALED_LABEL)
    return base64.b64encode(sealed)


def unseal_key_file(sealed: bytes, *, kek: bytes) -> bytes:
    """The plain key file inside a sealed one; `KeyFileUnsealFailed` for a wrong KEK."""
    # The KEK is validated where settings are built; a wrong length here is a wiring bug.
    require(len(kek) == KEK_BYTES, "the key-encryption key has 32 bytes")
    if key_file_form(sealed) is KeyFileForm.PLAIN:
        raise KeyFileInvalid("the key file is plain JSON, not sealed (base64)")
    blob = base64.b64decode(sealed.strip(), validate=True)
    try:
        return AESGCM(kek).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], SEALED_LABEL)
    except (InvalidTag, ValueError):
        # GCM cannot tell a wrong KEK from a damaged file; both mean "do not trust it".
        raise KeyFileUnsealFailed() from None


def read_key_file(path: Path) -> bytes:
    """A key file's content, refused unread past `KEY_FILE_BYTES_MAX`."""
    with path.open("rb") as file:
        content = file.read(KEY_FILE_BYTES_MAX + 1)
    if len(content) > KEY_FILE_BYTES_MAX:
        raise KeyFileInvalid(f"{path} is larger than a key file can be")
    return content


class SamError(Exception):
    """The SAM cannot serve: its key material is missing, malformed or locked."""


class KeyFileInvalid(SamError):
    """The key file is not the JSON CARD.md describes (the message never quotes it)."""


class KeyFileUnsealFailed(SamError):
    def __init__(self) -> None:
        super().__init__(
            "the sealed key file does not open with the configured key-encryption key "
            "(wrong key, or the file was changed)"
        )


class KeyLevelNotHeld(SamError):
    def __init__(self, level: KeyLevel) -> None:
        super().__init__(f"this SAM holds no level {int(level)} key")
        self.level = level
