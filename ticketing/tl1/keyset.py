"""The issuer public keys a validator trusts: one immutable set per distribution, replaced whole.

A validator verifies certificates against an `IssuerKeySet`. Rotation and revocation never change
a set in place: `with_key` and `revoke` return the next version, which the `Verifier` is given.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ticketing.tl1.layout import U16_MAX

ED25519_PUBLIC_KEY_BYTES = 32


# Compared by identity (eq=False): a set is one distribution of keys, named by its `version`.
@dataclass(frozen=True, eq=False)
class IssuerKeySet:
    """The issuer public keys a validator trusts, by `issuer_key_id`; immutable, replaced whole."""

    keys: Mapping[int, Ed25519PublicKey]
    revoked: frozenset[int] = frozenset()
    version: int = 0
    _raw: Mapping[int, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key_id in (*self.keys, *self.revoked):
            if not 0 <= key_id <= U16_MAX:
                raise InvalidIssuerKey(f"issuer key id {key_id} is not a u16")
        # A private copy, so the caller's dict cannot change a set that claims to be immutable.
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))
        object.__setattr__(self, "revoked", frozenset(self.revoked))
        raw = {key_id: key.public_bytes_raw() for key_id, key in self.keys.items()}
        object.__setattr__(self, "_raw", MappingProxyType(raw))

    @classmethod
    def from_bytes(
        cls, keys: Mapping[int, bytes | str], *, revoked: Iterable[int] = (), version: int = 0
    ) -> "IssuerKeySet":
        """From raw 32-byte keys or their hex, as configuration and the vectors file hold them."""
        return cls(
            {key_id: _ed25519_key(value) for key_id, value in keys.items()},
            frozenset(revoked),
            version,
        )

    def raw_key(self, key_id: int) -> bytes | None:
        """A key's 32 raw bytes: the cache's cheap test that an id still names the same key."""
        return self._raw.get(key_id)

    def with_key(self, key_id: int, key: Ed25519PublicKey) -> "IssuerKeySet":
        """A new set with `key_id` added (or replaced), one version later."""
        return IssuerKeySet({**self.keys, key_id: key}, self.revoked, self.version + 1)

    def revoke(self, key_id: int) -> "IssuerKeySet":
        """A new set refusing `key_id` with `revoked_issuer_key`, one version later."""
        return IssuerKeySet(self.keys, self.revoked | {key_id}, self.version + 1)


def _ed25519_key(value: bytes | str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else value
        if len(raw) != ED25519_PUBLIC_KEY_BYTES:
            raise InvalidIssuerKey(f"an Ed25519 key has 32 bytes, not {len(raw)}")
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as error:
        raise InvalidIssuerKey(str(error)) from error


class InvalidIssuerKey(ValueError):
    """A configured issuer key is not a 32-byte Ed25519 public key, or its id is not a u16."""
