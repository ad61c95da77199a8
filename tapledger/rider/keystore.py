"""The phone's private files: its P-256 device key and the wallet state, in one directory.

Both files hold secrets (the key, the rider's API token), so each is written with mode 0600 from
the moment it exists, and replaced all at once: a crash leaves the old file or the new, never half.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from tapledger.rider.errors import WalletError
from tapledger.rider.state import WalletState
from ticketing.tl1.issuing import compress_p256

KEY_FILE_NAME = "device-key.pem"
STATE_FILE_NAME = "wallet.json"
# Owner read and write only: the key file holds the device's private key, the state file the
# rider's API token.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
TEMP_NAME_RANDOM_BYTES = 8
# A state file is a few hundred bytes; anything much larger is not ours and is not parsed.
STATE_FILE_MAX_BYTES = 64 * 1024


class DeviceKeyStore:
    """The device's P-256 key (PEM, mode 0600) and the wallet state beside it, in one directory.

    The key is made on first use and loaded afterwards; nothing here prints or logs it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key_path = path / KEY_FILE_NAME
        self.state_path = path / STATE_FILE_NAME
        self._key: ec.EllipticCurvePrivateKey | None = None

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            self._key = self._load_key() if self.key_path.exists() else self._create_key()
        return self._key

    def public_key_sec1(self) -> bytes:
        """The 33-byte compressed public key the certificate carries."""
        return compress_p256(self.private_key().public_key())

    def load_state(self) -> WalletState:
        if not self.state_path.exists():
            return WalletState()
        if self.state_path.stat().st_size > STATE_FILE_MAX_BYTES:
            raise WalletError("state_unreadable", f"{self.state_path} is too large")
        try:
            return WalletState.model_validate_json(self.state_path.read_bytes())
        except ValidationError:
            raise WalletError(
                "state_unreadable", f"{self.state_path} is not a wallet state file"
            ) from None

    def save_state(self, state: WalletState) -> None:
        _write_private(self.state_path, state.model_dump_json(indent=2).encode())

    def _create_key(self) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.key_path, pem)
        return key

    def _load_key(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        # TypeError: the file holds an encrypted key, which this store never writes.
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise WalletError("device_key_unreadable", f"{self.key_path} is not a key") from None
        if not (
            isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
        ):
            raise WalletError("device_key_unreadable", f"{self.key_path} is not a P-256 key")
        return key


def _write_private(path: Path, data: bytes) -> None:
    """Writes `data` to `path` with mode 0600, all or nothing: readers see the old or new file."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(TEMP_NAME_RANDOM_BYTES)}.tmp")
    # The mode is given at creation, so the secret is never readable by others, not even briefly.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
