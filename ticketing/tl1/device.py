"""The phone's half of TL1: signing a fresh code over the certificate every few seconds.

Used by the reference app and the tests; a real phone signs inside its hardware keystore, which
returns DER, hence the conversion to the fixed-width `r ‖ s` the layout carries.
"""

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ticketing.shared.domain.invariants import require
from ticketing.tl1.issuing import compress_p256
from ticketing.tl1.layout import (
    CERTIFICATE_BYTES,
    CODE_BYTES,
    COUNTER_BYTES,
    DEVICE_KEY_BYTES,
    DEVICE_KEY_OFFSET,
    DEVICE_SIGNATURE_BYTES,
    TIMESTAMP_BYTES,
    U16_MAX,
    U32_MAX,
    code_to_text,
)

COUNTER_MODULUS = U16_MAX + 1
SIGNATURE_HALF_BYTES = DEVICE_SIGNATURE_BYTES // 2
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class CertificateKeyMismatch(ValueError):
    """The certificate names another device key: the phone must fetch a new certificate."""


def next_counter(counter: int) -> int:
    """The counter of the next code; after 65535 comes 0 again."""
    require(0 <= counter <= U16_MAX, "a counter is a u16")
    return (counter + 1) % COUNTER_MODULUS


def sign_code(
    *,
    certificate: bytes,
    device_private_key: ec.EllipticCurvePrivateKey,
    generated_at: int,
    counter: int,
) -> str:
    """The `TL1:` text of a code made now (`generated_at`, already clock-corrected)."""
    require(len(certificate) == CERTIFICATE_BYTES, "a certificate has 126 bytes")
    require(0 <= generated_at <= U32_MAX, "generated_at is u32 unix seconds")
    require(0 <= counter <= U16_MAX, "a counter is a u16")
    # Codes signed by a key the certificate does not name would all be refused at the gate;
    # refusing here tells the app to re-enrol instead.
    certified_key = certificate[DEVICE_KEY_OFFSET : DEVICE_KEY_OFFSET + DEVICE_KEY_BYTES]
    if compress_p256(device_private_key.public_key()) != certified_key:
        raise CertificateKeyMismatch("the certificate was issued for another device key")
    signed = (
        certificate
        + generated_at.to_bytes(TIMESTAMP_BYTES, "big")
        + counter.to_bytes(COUNTER_BYTES, "big")
    )
    r, s = decode_dss_signature(device_private_key.sign(signed, _ECDSA_SHA256))
    raw = signed + r.to_bytes(SIGNATURE_HALF_BYTES, "big") + s.to_bytes(SIGNATURE_HALF_BYTES, "big")
    require(len(raw) == CODE_BYTES, "a code has 196 bytes")
    return code_to_text(raw)
