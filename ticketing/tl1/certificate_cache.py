"""Certificates the validator has already verified, so a rider's next code skips that work.

Checking a certificate (parsing, the issuer's Ed25519 signature, decompressing the device's
P-256 point) is most of a cold verification; a rider shows many codes under one certificate.
The cache never changes a decision: an entry is used only while the current `IssuerKeySet`
would still accept it, so rotation and revocation take effect without flushing anything.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from ticketing.shared.domain.invariants import require
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import Certificate

# Distinct certificates kept verified; a busy line sees a few thousand riders within a
# certificate's 72 h, and each entry holds a parsed certificate and a P-256 key (about 1 KB).
CERTIFICATE_CACHE_MAX = 4_096
# A backend re-verifying a city's taps sees far more riders; shared by a process's threads.
SHARED_CERTIFICATE_CACHE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class VerifiedCertificate:
    """A certificate whose issuer signature passed, with what later codes need from it."""

    certificate: Certificate
    # The raw issuer key that verified it: a hit is valid only while the id means this key.
    issuer_key: bytes
    # None when the signed bytes are not a P-256 point (an issuer bug): every code fails step 9.
    device_key: ec.EllipticCurvePublicKey | None


class CertificateCache:
    """Verified certificates by their 126 bytes, least recently used evicted first.

    A hit lets a code skip certificate parsing, the Ed25519 check and the point decompression.
    `get` returns an entry only if the uncached path would pass steps 3 to 5 and 7 with it: its
    key id is still known, still the same key, not revoked, and `now` is not past `not_after`.
    Any other entry is dropped, and the caller's uncached path then gives the right refusal.
    """

    entries_max_allowed = CERTIFICATE_CACHE_MAX

    def __init__(self, entries_max: int = CERTIFICATE_CACHE_MAX) -> None:
        require(
            1 <= entries_max <= self.entries_max_allowed, "certificate cache size out of bounds"
        )
        self.entries_max = entries_max
        self._entries: OrderedDict[bytes, VerifiedCertificate] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, raw: bytes, keys: IssuerKeySet, now: int) -> VerifiedCertificate | None:
        entry = self._entries.get(raw)
        if entry is None:
            return None
        certificate = entry.certificate
        key_id = certificate.issuer_key_id
        if (
            keys.raw_key(key_id) != entry.issuer_key
            or key_id in keys.revoked
            or now > certificate.not_after
        ):
            del self._entries[raw]
            return None
        self._entries.move_to_end(raw)
        return entry

    def put(self, entry: VerifiedCertificate, now: int) -> None:
        """Keeps `entry` unless it has already expired, evicting the least recently used."""
        certificate = entry.certificate
        if now > certificate.not_after:
            return
        self._entries[certificate.raw] = entry
        self._entries.move_to_end(certificate.raw)
        while len(self._entries) > self.entries_max:
            self._entries.popitem(last=False)


class SharedCertificateCache(CertificateCache):
    """A `CertificateCache` the threads of one process share, so a rider's certificate is
    checked once per process rather than once per thread."""

    entries_max_allowed = SHARED_CERTIFICATE_CACHE_MAX

    def __init__(self, entries_max: int = SHARED_CERTIFICATE_CACHE_MAX) -> None:
        super().__init__(entries_max)
        self._lock = threading.Lock()

    def get(self, raw: bytes, keys: IssuerKeySet, now: int) -> VerifiedCertificate | None:
        with self._lock:
            return super().get(raw, keys, now)

    def put(self, entry: VerifiedCertificate, now: int) -> None:
        with self._lock:
            super().put(entry, now)
