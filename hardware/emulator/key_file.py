"""The emulator's key files (spec/CARD.md, "Key files") and the card keys diversified from them."""

from __future__ import annotations

import json
from collections.abc import Mapping

from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.crypto import KEY_BYTES, card_key


class KeyFileError(ValueError):
    """A key file that is not `{"1": hex32, "2": hex32, "3": hex32}` (spec/CARD.md, "Key files")."""

    code = "key_file_invalid"


def master_keys_from_json(text: str) -> dict[KeyLevel, bytes]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeyFileError(f"the key file is not JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != {str(level) for level in KeyLevel}:
        raise KeyFileError('a key file maps exactly "1", "2" and "3" to keys')
    keys: dict[KeyLevel, bytes] = {}
    for level in KeyLevel:
        value = document[str(level)]
        try:
            key = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise KeyFileError(f"key {level} is not {2 * KEY_BYTES} hex characters")
        keys[level] = key
    return keys


def card_keys_from_master(
    master_keys: Mapping[KeyLevel, bytes], serial: bytes
) -> dict[KeyLevel, bytes]:
    return {level: card_key(master_keys[level], serial=serial, level=level) for level in KeyLevel}
