"""The 196-byte TL1 code (spec/QR.md): named offsets, parsing, and its `TL1:` text form.

Parsing only cuts bytes into fields; it judges nothing a signature covers (category, flags,
lifetime), because the verifier's table has no step for them and the issuer vouches for them.
"""

import struct
from dataclasses import dataclass
from itertools import pairwise
from uuid import UUID

from ticketing.shared.domain.invariants import require
from ticketing.tl1 import base45

FORMAT_VERSION = 1

FORMAT_OFFSET = 0
ISSUER_KEY_ID_OFFSET = 1
CARD_ID_OFFSET = 3
RIDER_CATEGORY_OFFSET = 19
FLAGS_OFFSET = 20
NOT_BEFORE_OFFSET = 21
NOT_AFTER_OFFSET = 25
DEVICE_KEY_OFFSET = 29
ISSUER_SIGNATURE_OFFSET = 62
GENERATED_AT_OFFSET = 126
COUNTER_OFFSET = 130
DEVICE_SIGNATURE_OFFSET = 132

FORMAT_BYTES = 1
ISSUER_KEY_ID_BYTES = 2
CARD_ID_BYTES = 16
RIDER_CATEGORY_BYTES = 1
FLAGS_BYTES = 1
TIMESTAMP_BYTES = 4
DEVICE_KEY_BYTES = 33
ISSUER_SIGNATURE_BYTES = 64
COUNTER_BYTES = 2
DEVICE_SIGNATURE_BYTES = 64
# The issuer signs bytes 0..61, everything before its own signature.
CERTIFICATE_SIGNED_BYTES = ISSUER_SIGNATURE_OFFSET
CERTIFICATE_BYTES = 126
# The phone signs bytes 0..131: the whole certificate and the dynamic fields.
CODE_SIGNED_BYTES = DEVICE_SIGNATURE_OFFSET
CODE_BYTES = 196

FLAG_CONCESSION_CHECKED = 0x01
FLAGS_KNOWN = FLAG_CONCESSION_CHECKED
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF

TEXT_PREFIX = "TL1:"
# 196 bytes are 98 Base45 groups of 3 characters; any other length cannot decode to 196 bytes,
# so checking it first refuses a huge or cut text without decoding it.
TEXT_CHARS = len(TEXT_PREFIX) + CODE_BYTES // base45.GROUP_BYTES * base45.GROUP_CHARS

# One C call per part instead of a slice and int.from_bytes per field.
_BODY_FORMAT = f">BH{CARD_ID_BYTES}sBBII{DEVICE_KEY_BYTES}s"
CERTIFICATE_BODY = struct.Struct(_BODY_FORMAT)
_CERTIFICATE = struct.Struct(f"{_BODY_FORMAT}{ISSUER_SIGNATURE_BYTES}s")
_DYNAMIC = struct.Struct(f">IH{DEVICE_SIGNATURE_BYTES}s")
# The table of spec/QR.md, field by field: each field starts where the one before it ends.
_FIELDS = (
    (FORMAT_OFFSET, FORMAT_BYTES),
    (ISSUER_KEY_ID_OFFSET, ISSUER_KEY_ID_BYTES),
    (CARD_ID_OFFSET, CARD_ID_BYTES),
    (RIDER_CATEGORY_OFFSET, RIDER_CATEGORY_BYTES),
    (FLAGS_OFFSET, FLAGS_BYTES),
    (NOT_BEFORE_OFFSET, TIMESTAMP_BYTES),
    (NOT_AFTER_OFFSET, TIMESTAMP_BYTES),
    (DEVICE_KEY_OFFSET, DEVICE_KEY_BYTES),
    (ISSUER_SIGNATURE_OFFSET, ISSUER_SIGNATURE_BYTES),
    (GENERATED_AT_OFFSET, TIMESTAMP_BYTES),
    (COUNTER_OFFSET, COUNTER_BYTES),
    (DEVICE_SIGNATURE_OFFSET, DEVICE_SIGNATURE_BYTES),
    (CODE_BYTES, 0),
)
require(
    all(start + size == end for (start, size), (end, _) in pairwise(_FIELDS)),
    "the field offsets follow each other",
)
require(CERTIFICATE_BODY.size == CERTIFICATE_SIGNED_BYTES, "the issuer signs bytes 0..61")
require(_CERTIFICATE.size == CERTIFICATE_BYTES == GENERATED_AT_OFFSET, "certificate layout")
require(_DYNAMIC.size == CODE_BYTES - CERTIFICATE_BYTES, "dynamic part layout")


class MalformedCode(ValueError):
    """Not a TL1 code at all: wrong prefix, not Base45, or not exactly 196 bytes."""


class UnsupportedFormat(ValueError):
    """196 bytes, but of a format version this code does not know."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """Bytes 0..125: the issuer's statement that `device_key` speaks for `card_id`."""

    issuer_key_id: int
    card_id: UUID
    rider_category: int
    flags: int
    not_before: int
    not_after: int
    device_key: bytes
    issuer_signature: bytes
    raw: bytes

    @property
    def signed_bytes(self) -> bytes:
        return self.raw[:CERTIFICATE_SIGNED_BYTES]


@dataclass(frozen=True, slots=True)
class Code:
    """All 196 bytes: a certificate and the phone's signed, dated, counted dynamic part."""

    certificate: Certificate
    generated_at: int
    counter: int
    device_signature: bytes
    raw: bytes

    @property
    def signed_bytes(self) -> bytes:
        return self.raw[:CODE_SIGNED_BYTES]


def parse_certificate(raw: bytes) -> Certificate:
    """The fields of a 126-byte certificate; signatures are not checked here."""
    if len(raw) != CERTIFICATE_BYTES:
        raise MalformedCode(f"a certificate has {CERTIFICATE_BYTES} bytes, not {len(raw)}")
    fields = _CERTIFICATE.unpack(raw)
    if fields[0] != FORMAT_VERSION:
        raise UnsupportedFormat(f"format {fields[0]}")
    return Certificate(
        issuer_key_id=fields[1],
        card_id=UUID(bytes=fields[2]),
        rider_category=fields[3],
        flags=fields[4],
        not_before=fields[5],
        not_after=fields[6],
        device_key=fields[7],
        issuer_signature=fields[8],
        raw=bytes(raw),
    )


def parse_code(raw: bytes) -> Code:
    """The fields of a 196-byte code; signatures are not checked here."""
    if len(raw) != CODE_BYTES:
        raise MalformedCode(f"a code has {CODE_BYTES} bytes, not {len(raw)}")
    return parse_dynamic_part(raw, parse_certificate(raw[:CERTIFICATE_BYTES]))


def parse_dynamic_part(raw: bytes, certificate: Certificate) -> Code:
    """The code `raw`, reusing an already parsed `certificate` (the verifier's cache hit)."""
    require(len(raw) == CODE_BYTES, "a code has 196 bytes")
    require(raw[:CERTIFICATE_BYTES] == certificate.raw, "the code carries this certificate")
    generated_at, counter, device_signature = _DYNAMIC.unpack_from(raw, GENERATED_AT_OFFSET)
    return Code(certificate, generated_at, counter, device_signature, bytes(raw))


def code_to_text(raw: bytes) -> str:
    """The text a phone shows as a QR code: `TL1:` and the Base45 of the 196 bytes."""
    require(len(raw) == CODE_BYTES, "a code has 196 bytes")
    return TEXT_PREFIX + base45.encode(raw)


def code_from_text(text: str) -> bytes:
    """The 196 bytes of a scanned text; raises `MalformedCode` for anything else."""
    if len(text) != TEXT_CHARS or not text.startswith(TEXT_PREFIX):
        raise MalformedCode(f"not {TEXT_PREFIX} followed by {TEXT_CHARS - len(TEXT_PREFIX)} chars")
    try:
        return base45.decode(text[len(TEXT_PREFIX) :])
    except base45.Base45Error as error:
        raise MalformedCode(str(error)) from error
