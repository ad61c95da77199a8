"""The backend's half of TL1: certifying a phone's P-256 key for a virtual card.

The device key arrives from a phone, so it is untrusted input and refused with `InvalidDeviceKey`;
the other fields come from the issuing request and are refused with `InvalidCertificateFields`,
so the service can answer both as a client error.
"""

from uuid import UUID

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ticketing.shared.domain.invariants import require
from ticketing.shared.domain.rider import RiderCategory
from ticketing.tl1.layout import (
    CERTIFICATE_BODY,
    CERTIFICATE_BYTES,
    DEVICE_KEY_BYTES,
    FLAGS_KNOWN,
    FORMAT_VERSION,
    U16_MAX,
    U32_MAX,
)

CERTIFICATE_LIFETIME_MAX_S = 72 * 3600
UNCOMPRESSED_POINT_BYTES = 65
COMPRESSED_POINT_PREFIXES = (0x02, 0x03)
UNCOMPRESSED_POINT_PREFIX = 0x04
RIDER_CATEGORY_MAX = int(max(RiderCategory))


class InvalidDeviceKey(ValueError):
    """Not a P-256 public key in SEC1 form (33-byte compressed or 65-byte uncompressed)."""


class InvalidCertificateFields(ValueError):
    """A certificate field out of its range: key id, category, flags or validity period."""


def compress_p256(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The 33-byte SEC1 compressed form the certificate carries."""
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise InvalidDeviceKey(f"the device key is on {public_key.curve.name}, not P-256")
    return public_key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def device_key_from_bytes(data: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 point from SEC1 bytes; WebCrypto exports the 65-byte uncompressed form."""
    compressed = len(data) == DEVICE_KEY_BYTES and data[0] in COMPRESSED_POINT_PREFIXES
    uncompressed = len(data) == UNCOMPRESSED_POINT_BYTES and data[0] == UNCOMPRESSED_POINT_PREFIX
    if not (compressed or uncompressed):
        raise InvalidDeviceKey(f"{len(data)} bytes are not a SEC1 P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError as error:
        raise InvalidDeviceKey("the bytes are not a point on P-256") from error


def certificate_body(
    *,
    issuer_key_id: int,
    card_id: UUID,
    rider_category: int,
    flags: int,
    not_before: int,
    not_after: int,
    device_key: bytes,
) -> bytes:
    """The 62 bytes the issuer signs, after checking every field against spec/QR.md."""
    _check_fields(issuer_key_id, rider_category, flags, not_before, not_after)
    if len(device_key) != DEVICE_KEY_BYTES:
        raise InvalidDeviceKey(
            f"the certificate carries a {DEVICE_KEY_BYTES}-byte point, not {len(device_key)} bytes"
        )
    device_key_from_bytes(device_key)
    return CERTIFICATE_BODY.pack(
        FORMAT_VERSION,
        issuer_key_id,
        card_id.bytes,
        rider_category,
        flags,
        not_before,
        not_after,
        device_key,
    )


def issue_certificate(
    issuer_private_key: Ed25519PrivateKey,
    *,
    issuer_key_id: int,
    card_id: UUID,
    rider_category: int,
    flags: int,
    not_before: int,
    not_after: int,
    device_key: bytes,
) -> bytes:
    """The 126-byte certificate: the checked body and the issuer's Ed25519 signature over it."""
    body = certificate_body(
        issuer_key_id=issuer_key_id,
        card_id=card_id,
        rider_category=rider_category,
        flags=flags,
        not_before=not_before,
        not_after=not_after,
        device_key=device_key,
    )
    certificate = body + issuer_private_key.sign(body)
    require(len(certificate) == CERTIFICATE_BYTES, "Ed25519 signatures have 64 bytes")
    return certificate


def _check_fields(
    issuer_key_id: int, rider_category: int, flags: int, not_before: int, not_after: int
) -> None:
    if not 0 <= issuer_key_id <= U16_MAX:
        raise InvalidCertificateFields(f"issuer key id {issuer_key_id} is not a u16")
    if not 0 <= rider_category <= RIDER_CATEGORY_MAX:
        raise InvalidCertificateFields(
            f"rider category {rider_category} is not 0..{RIDER_CATEGORY_MAX}"
        )
    if flags & ~FLAGS_KNOWN:
        raise InvalidCertificateFields(f"flags {flags:#x} set bits other than bit 0")
    if not (0 <= not_before <= U32_MAX and 0 <= not_after <= U32_MAX):
        raise InvalidCertificateFields("validity times must be u32 unix seconds")
    if not 0 <= not_after - not_before <= CERTIFICATE_LIFETIME_MAX_S:
        raise InvalidCertificateFields(
            f"validity of {not_after - not_before} s is not within 0..{CERTIFICATE_LIFETIME_MAX_S}"
        )
