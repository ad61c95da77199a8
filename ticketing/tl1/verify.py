"""The validator's half of TL1: deciding offline whether a scanned code is genuine, fresh and new.

`Verifier.verify` runs the twelve checks of spec/QR.md in the table's order, and the first failure
is the decision. It never raises on a scanned text: every way a text can be wrong is a `Decision`.

Key rotation: assign a new `IssuerKeySet` to `verifier.keys`. The next `verify` uses it, and
every cached certificate is checked against the current set each time it is used, so a
revocation or a removed key takes effect on the very next code without flushing anything.
"""

import heapq
from collections import OrderedDict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ticketing.domain.invariants import require
from ticketing.tl1.issuing import InvalidDeviceKey, device_key_from_bytes
from ticketing.tl1.layout import (
    CERTIFICATE_BYTES,
    DEVICE_SIGNATURE_BYTES,
    FORMAT_OFFSET,
    FORMAT_VERSION,
    U16_MAX,
    Certificate,
    Code,
    MalformedCode,
    code_from_text,
    parse_certificate,
    parse_dynamic_part,
)

STALE_AFTER_S_DEFAULT = 60
FUTURE_TOLERANCE_S_DEFAULT = 10
# Codes a validator accepts within one staleness window; a gate or a bus accepts a few a second,
# and each entry costs a few hundred bytes (about 6 MB when full).
REPLAY_WINDOW_ENTRIES_MAX = 16_384
# Distinct certificates kept verified; a busy line sees a few thousand riders within a
# certificate's 72 h, and each entry holds a parsed certificate and a P-256 key (about 1 KB).
CERTIFICATE_CACHE_MAX = 4_096
ED25519_PUBLIC_KEY_BYTES = 32
SIGNATURE_HALF_BYTES = DEVICE_SIGNATURE_BYTES // 2
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

ReplayKey = tuple[UUID, int, int]
"""`(card_id, generated_at, counter)`: what makes a code unique (spec/QR.md, step 12)."""


class Decision(StrEnum):
    """The outcome of `Verifier.verify`: accepted, or the reason code of the first failed step."""

    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNKNOWN_ISSUER_KEY = "unknown_issuer_key"
    REVOKED_ISSUER_KEY = "revoked_issuer_key"
    BAD_ISSUER_SIGNATURE = "bad_issuer_signature"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CARD_DENIED = "card_denied"
    BAD_DEVICE_SIGNATURE = "bad_device_signature"
    CODE_STALE = "code_stale"
    CODE_FROM_FUTURE = "code_from_future"
    CODE_REPLAYED = "code_replayed"


@dataclass(frozen=True, slots=True)
class Verification:
    """A decision, and the parsed code when the text got past steps 1 and 2."""

    decision: Decision
    code: Code | None = None

    @property
    def accepted(self) -> bool:
        return self.decision is Decision.ACCEPTED


class InvalidIssuerKey(ValueError):
    """A configured issuer key is not a 32-byte Ed25519 public key, or its id is not a u16."""


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


class ReplayWindow:
    """The codes accepted lately, so that showing the same code twice is refused.

    An entry is forgotten once its `generated_at` is older than `horizon_s`: such a code is
    refused as stale before the replay check, so remembering it buys nothing. Time only comes in
    as `now`; if a validator's clock jumps forward and back, codes forgotten in between can be
    replayed until they go stale, and the backend's de-duplication catches them afterwards.

    When full, the entry with the oldest `generated_at` is evicted. That is the entry nearest to
    going stale anyway, so the cost is the shortest possible gap: its code could be shown again at
    this validator for the rest of its window (at most `horizon_s` plus the future tolerance), and
    the backend, which de-duplicates across validators, would still refuse the second tap.
    """

    def __init__(
        self,
        *,
        horizon_s: int = STALE_AFTER_S_DEFAULT,
        entries_max: int = REPLAY_WINDOW_ENTRIES_MAX,
    ) -> None:
        require(horizon_s >= 0, "the horizon is a duration")
        require(1 <= entries_max <= REPLAY_WINDOW_ENTRIES_MAX, "replay window size out of bounds")
        self.horizon_s = horizon_s
        self.entries_max = entries_max
        self._keys: set[ReplayKey] = set()
        # A heap ordered by generated_at, so the oldest entry is found in O(1), removed in O(log n).
        self._by_age: list[tuple[int, UUID, int]] = []

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, key: ReplayKey, now: int) -> bool:
        self._forget_before(now - self.horizon_s)
        return key in self._keys

    def remember(self, key: ReplayKey, now: int) -> None:
        self._forget_before(now - self.horizon_s)
        if key in self._keys:
            return
        if len(self._keys) >= self.entries_max:
            self._evict_oldest()
        card_id, generated_at, counter = key
        self._keys.add(key)
        heapq.heappush(self._by_age, (generated_at, card_id, counter))

    def _forget_before(self, oldest_kept: int) -> None:
        while self._by_age and self._by_age[0][0] < oldest_kept:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        generated_at, card_id, counter = heapq.heappop(self._by_age)
        self._keys.discard((card_id, generated_at, counter))


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

    def __init__(self, entries_max: int = CERTIFICATE_CACHE_MAX) -> None:
        require(1 <= entries_max <= CERTIFICATE_CACHE_MAX, "certificate cache size out of bounds")
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


_MALFORMED = Verification(Decision.MALFORMED)
_UNSUPPORTED_FORMAT = Verification(Decision.UNSUPPORTED_FORMAT)


class Verifier:
    """Checks scanned TL1 texts offline; see the module docstring for swapping `keys`."""

    def __init__(
        self,
        keys: IssuerKeySet,
        deny_list: Container[UUID],
        *,
        replay_window: ReplayWindow,
        certificate_cache: CertificateCache | None,
        stale_after_s: int = STALE_AFTER_S_DEFAULT,
        future_tolerance_s: int = FUTURE_TOLERANCE_S_DEFAULT,
    ) -> None:
        require(stale_after_s >= 0 and future_tolerance_s >= 0, "tolerances are durations")
        # A window forgetting codes that are not yet stale would let them be replayed.
        require(replay_window.horizon_s >= stale_after_s, "the replay window outlives staleness")
        self.keys = keys
        self.deny_list = deny_list
        self.replay_window = replay_window
        self.certificate_cache = certificate_cache
        self.stale_after_s = stale_after_s
        self.future_tolerance_s = future_tolerance_s

    def verify(self, text: str, now: int) -> Verification:
        """The decision on `text` scanned at `now` (unix s); an accepted code is remembered."""
        try:
            raw = code_from_text(text)
        except MalformedCode:
            return _MALFORMED
        if raw[FORMAT_OFFSET] != FORMAT_VERSION:
            return _UNSUPPORTED_FORMAT
        keys = self.keys
        certificate_raw = raw[:CERTIFICATE_BYTES]
        cache = self.certificate_cache
        verified = cache.get(certificate_raw, keys, now) if cache is not None else None
        if verified is None:
            certificate = parse_certificate(certificate_raw)
            code = parse_dynamic_part(raw, certificate)
            outcome = self._verify_certificate(certificate, keys)
            if isinstance(outcome, Decision):
                return Verification(outcome, code)
            verified = outcome
            if cache is not None:
                cache.put(verified, now)
        else:
            code = parse_dynamic_part(raw, verified.certificate)
        return Verification(self._check_code(code, verified, now), code)

    def _verify_certificate(
        self, certificate: Certificate, keys: IssuerKeySet
    ) -> Decision | VerifiedCertificate:
        """Steps 3 to 5, which a cache hit skips."""
        key_id = certificate.issuer_key_id
        raw_issuer_key = keys.raw_key(key_id)
        if raw_issuer_key is None:
            return Decision.UNKNOWN_ISSUER_KEY
        if key_id in keys.revoked:
            return Decision.REVOKED_ISSUER_KEY
        # libsodium verifies Ed25519 in about half the time OpenSSL takes here, and the issuer
        # signature is most of a cold verification (docs/benchmarks.md, bench_qr).
        try:
            crypto_sign_open(
                certificate.issuer_signature + certificate.signed_bytes, raw_issuer_key
            )
        except BadSignatureError:
            return Decision.BAD_ISSUER_SIGNATURE
        try:
            device_key: ec.EllipticCurvePublicKey | None = device_key_from_bytes(
                certificate.device_key
            )
        except InvalidDeviceKey:
            device_key = None
        return VerifiedCertificate(certificate, raw_issuer_key, device_key)

    def _check_code(self, code: Code, verified: VerifiedCertificate, now: int) -> Decision:
        """Steps 6 to 12, run on every code whether its certificate came from the cache or not."""
        certificate = verified.certificate
        if now < certificate.not_before:
            return Decision.CERTIFICATE_NOT_YET_VALID
        if now > certificate.not_after:
            return Decision.CERTIFICATE_EXPIRED
        if certificate.card_id in self.deny_list:
            return Decision.CARD_DENIED
        if verified.device_key is None or not _device_signature_valid(code, verified.device_key):
            return Decision.BAD_DEVICE_SIGNATURE
        if code.generated_at < now - self.stale_after_s:
            return Decision.CODE_STALE
        if code.generated_at > now + self.future_tolerance_s:
            return Decision.CODE_FROM_FUTURE
        replay_key = (certificate.card_id, code.generated_at, code.counter)
        if self.replay_window.seen(replay_key, now):
            return Decision.CODE_REPLAYED
        self.replay_window.remember(replay_key, now)
        return Decision.ACCEPTED


def _device_signature_valid(code: Code, device_key: ec.EllipticCurvePublicKey) -> bool:
    # The layout carries raw r ‖ s; OpenSSL verifies DER, so re-encode (under a microsecond).
    signature = code.device_signature
    r = int.from_bytes(signature[:SIGNATURE_HALF_BYTES], "big")
    s = int.from_bytes(signature[SIGNATURE_HALF_BYTES:], "big")
    try:
        device_key.verify(encode_dss_signature(r, s), code.signed_bytes, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True
