"""The validator's half of TL1: deciding offline whether a scanned code is genuine, fresh and new.

`Verifier.verify` runs the twelve checks of spec/QR.md in the table's order, and the first failure
is the decision. It never raises on a scanned text: every way a text can be wrong is a `Decision`.
The issuer keys it trusts are an `IssuerKeySet` (`keyset`), codes already accepted are kept in a
`ReplayWindow` (`replay`), and certificates already checked in a `CertificateCache`
(`certificate_cache`).

Key rotation: assign a new `IssuerKeySet` to `verifier.keys`. The next `verify` uses it, and
every cached certificate is checked against the current set each time it is used, so a
revocation or a removed key takes effect on the very next code without flushing anything.
"""

from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ticketing.shared.domain.invariants import require
from ticketing.tl1.certificate_cache import CertificateCache, VerifiedCertificate
from ticketing.tl1.issuing import InvalidDeviceKey, device_key_from_bytes
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import (
    CERTIFICATE_BYTES,
    DEVICE_SIGNATURE_BYTES,
    FORMAT_OFFSET,
    FORMAT_VERSION,
    Certificate,
    Code,
    MalformedCode,
    code_from_text,
    parse_certificate,
    parse_dynamic_part,
)
from ticketing.tl1.replay import STALE_AFTER_S_DEFAULT, ReplayWindow

FUTURE_TOLERANCE_S_DEFAULT = 10
SIGNATURE_HALF_BYTES = DEVICE_SIGNATURE_BYTES // 2
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


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
        # Revocation first: a published key set lists a revoked key's id, never the key.
        if key_id in keys.revoked:
            return Decision.REVOKED_ISSUER_KEY
        raw_issuer_key = keys.raw_key(key_id)
        if raw_issuer_key is None:
            return Decision.UNKNOWN_ISSUER_KEY
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
