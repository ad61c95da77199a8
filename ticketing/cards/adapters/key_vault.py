"""Seals issuer private keys with AES-256-GCM under a key-encryption key from settings."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

KEK_BYTES = 32
NONCE_BYTES = 12


class KeyVault:
    """Seals and opens Ed25519 private keys. The key id is bound in as associated data, so a
    sealed key copied onto another id does not open."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_BYTES:
            raise ValueError(f"the key-encryption key must be {KEK_BYTES} bytes")
        self._aead = AESGCM(kek)

    def __repr__(self) -> str:
        return "KeyVault(<sealed>)"

    def seal(self, private_key: Ed25519PrivateKey, *, key_id: int) -> str:
        raw = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, raw, _associated(key_id))
        return base64.b64encode(sealed).decode("ascii")

    def open(self, sealed: str, *, key_id: int) -> Ed25519PrivateKey:
        blob = base64.b64decode(sealed)
        try:
            raw = self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated(key_id))
        except InvalidTag:
            raise SealedKeyUnreadable(key_id) from None
        return Ed25519PrivateKey.from_private_bytes(raw)


def _associated(key_id: int) -> bytes:
    return f"tapledger/issuer-key/{key_id}".encode()


class SealedKeyUnreadable(Exception):
    """The key-encryption key in settings is not the one the key was sealed with."""

    def __init__(self, key_id: int) -> None:
        super().__init__(f"issuer key {key_id} cannot be opened with the configured KEK")
