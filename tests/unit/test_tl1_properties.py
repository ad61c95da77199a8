"""Properties of TL1 over generated input: the verifier never raises, tampering never passes,
Base45 is RFC 9285, and the issuing checks refuse what spec/QR.md forbids."""

from __future__ import annotations

import string
import threading
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ticketing.shared.domain.invariants import InvariantViolated
from ticketing.tl1 import base45
from ticketing.tl1.certificate_cache import (
    CertificateCache,
    SharedCertificateCache,
    VerifiedCertificate,
)
from ticketing.tl1.device import next_counter, sign_code
from ticketing.tl1.issuing import (
    CERTIFICATE_LIFETIME_MAX_S,
    InvalidCertificateFields,
    InvalidDeviceKey,
    certificate_body,
    compress_p256,
    device_key_from_bytes,
    issue_certificate,
)
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import (
    CERTIFICATE_BODY,
    CERTIFICATE_BYTES,
    CODE_BYTES,
    DEVICE_SIGNATURE_BYTES,
    FORMAT_OFFSET,
    FORMAT_VERSION,
    ISSUER_KEY_ID_BYTES,
    ISSUER_KEY_ID_OFFSET,
    ISSUER_SIGNATURE_OFFSET,
    TEXT_CHARS,
    TEXT_PREFIX,
    U16_MAX,
    code_from_text,
    code_to_text,
)
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Decision, Verifier

NOW = 1_800_000_000
KEY_ID = 7
CARD_ID = UUID("0b5e3c1a-7d2f-4e6a-9c8b-112233445566")
ISSUER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
DEVICE = ec.derive_private_key(0x1234_5678_9ABC_DEF0, ec.SECP256R1())
DEVICE_KEY = compress_p256(DEVICE.public_key())
LIFETIME_S = 24 * 3600
CERTIFICATE = issue_certificate(
    ISSUER,
    issuer_key_id=KEY_ID,
    card_id=CARD_ID,
    rider_category=0,
    flags=0,
    not_before=NOW - 3600,
    not_after=NOW - 3600 + LIFETIME_S,
    device_key=DEVICE_KEY,
)
VALID_TEXT = sign_code(
    certificate=CERTIFICATE, device_private_key=DEVICE, generated_at=NOW - 1, counter=1
)
VALID_RAW = code_from_text(VALID_TEXT)
BITS_PER_BYTE = 8
# Everything after the certificate body: the issuer signature, the dynamic part, its signature.
SIGNED_TAIL_BYTES = CODE_BYTES - ISSUER_SIGNATURE_OFFSET
HUGE_TEXT_CHARS = 100_000
BODY_CHARS = TEXT_CHARS - len(TEXT_PREFIX)
ALPHANUMERIC = string.ascii_letters + string.digits
TRIPLE_VALUE_MAX = base45.BASE**3 - 1
PAIR_VALUE_MAX = base45.BASE**2 - 1
# Verifying costs a signature check, so generated inputs are capped to keep the suite quick.
EXAMPLES = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def verifier(cache: CertificateCache | None = None) -> Verifier:
    keys = IssuerKeySet({KEY_ID: ISSUER.public_key()})
    return Verifier(keys, set(), replay_window=ReplayWindow(), certificate_cache=cache)


def warm_cache() -> CertificateCache:
    cache = CertificateCache()
    assert verifier(cache).verify(VALID_TEXT, NOW).decision is Decision.ACCEPTED
    return cache


def is_a_point(data: bytes) -> bool:
    try:
        device_key_from_bytes(data)
    except InvalidDeviceKey:
        return False
    return True


def flipped(raw: bytes, bit: int) -> bytes:
    tampered = bytearray(raw)
    tampered[bit // BITS_PER_BYTE] ^= 1 << (bit % BITS_PER_BYTE)
    return bytes(tampered)


def chars_of(value: int, count: int) -> str:
    """`value` as `count` Base45 digits, least significant first, as RFC 9285 lays them out."""
    digits = []
    for _ in range(count):
        value, digit = divmod(value, base45.BASE)
        digits.append(base45.ALPHABET[digit])
    return "".join(digits)


# The verifier never raises


@EXAMPLES
@given(st.text())
def test_any_unicode_text_gets_a_decision(text: str) -> None:
    assert verifier().verify(text, NOW).decision is not Decision.ACCEPTED


@EXAMPLES
@given(st.sampled_from(["", TEXT_PREFIX, "TL1", "tl1:"]), st.text(alphabet=ALPHANUMERIC))
def test_any_alphanumeric_text_gets_a_decision(prefix: str, body: str) -> None:
    assert verifier().verify(prefix + body, NOW).decision is not Decision.ACCEPTED


@EXAMPLES
@given(st.text(alphabet=base45.ALPHABET, min_size=BODY_CHARS, max_size=BODY_CHARS))
def test_any_base45_text_of_the_right_length_gets_a_decision(body: str) -> None:
    result = verifier().verify(TEXT_PREFIX + body, NOW)
    assert result.decision is not Decision.ACCEPTED


@EXAMPLES
@given(st.binary(min_size=CODE_BYTES, max_size=CODE_BYTES))
def test_any_196_bytes_get_a_decision(raw: bytes) -> None:
    result = verifier().verify(code_to_text(raw), NOW)
    assert result.decision is not Decision.ACCEPTED


@EXAMPLES
@given(st.binary(min_size=SIGNED_TAIL_BYTES, max_size=SIGNED_TAIL_BYTES))
def test_random_signatures_behind_a_known_key_id_are_refused(tail: bytes) -> None:
    # Keeps the real certificate body, so the checks reach the signatures themselves.
    text = code_to_text(VALID_RAW[:ISSUER_SIGNATURE_OFFSET] + tail)
    assert verifier(warm_cache()).verify(text, NOW).decision is Decision.BAD_ISSUER_SIGNATURE


@EXAMPLES
@given(st.integers(min_value=0, max_value=len(VALID_TEXT) - 1))
def test_a_truncated_code_is_malformed(length: int) -> None:
    assert verifier().verify(VALID_TEXT[:length], NOW).decision is Decision.MALFORMED


@EXAMPLES
@given(st.text(min_size=1))
def test_an_extended_code_is_malformed(extra: str) -> None:
    assert verifier().verify(VALID_TEXT + extra, NOW).decision is Decision.MALFORMED


@pytest.mark.parametrize("filler", ["A", "é", ":", "\x00"])
def test_a_huge_text_is_malformed(filler: str) -> None:
    for text in (filler * HUGE_TEXT_CHARS, TEXT_PREFIX + filler * HUGE_TEXT_CHARS):
        assert verifier().verify(text, NOW).decision is Decision.MALFORMED


@pytest.mark.parametrize("odd", ["é", "a", "\n", "\x00", "\ud800"])
def test_a_code_length_text_with_a_foreign_character_is_malformed(odd: str) -> None:
    for at in (len(TEXT_PREFIX), TEXT_CHARS // 2, TEXT_CHARS - 1):
        text = VALID_TEXT[:at] + odd + VALID_TEXT[at + 1 :]
        assert len(text) == TEXT_CHARS
        assert verifier().verify(text, NOW).decision is Decision.MALFORMED


@pytest.mark.parametrize(
    "signature",
    [bytes(DEVICE_SIGNATURE_BYTES), b"\xff" * DEVICE_SIGNATURE_BYTES],
    ids=["zeros", "ones"],
)
def test_degenerate_device_signatures_are_refused(signature: bytes) -> None:
    text = code_to_text(VALID_RAW[: CODE_BYTES - DEVICE_SIGNATURE_BYTES] + signature)
    assert verifier().verify(text, NOW).decision is Decision.BAD_DEVICE_SIGNATURE


@EXAMPLES
@given(st.sampled_from([b"\x02", b"\x03"]), st.binary(min_size=32, max_size=32))
def test_an_issuer_signed_device_key_that_is_no_point_fails_the_device_signature(
    prefix: bytes, x: bytes
) -> None:
    # An issuer bug, not an attack: the certificate is genuine but its key cannot verify anything.
    assume(not is_a_point(prefix + x))
    body = CERTIFICATE_BODY.pack(
        FORMAT_VERSION, KEY_ID, CARD_ID.bytes, 0, 0, NOW - 60, NOW + 60, prefix + x
    )
    certificate = body + ISSUER.sign(body)
    text = code_to_text(certificate + VALID_RAW[CERTIFICATE_BYTES:])
    cache = CertificateCache()
    for checker in (verifier(), verifier(cache), verifier(cache)):
        assert checker.verify(text, NOW).decision is Decision.BAD_DEVICE_SIGNATURE


@EXAMPLES
@given(st.sampled_from([b"\x02", b"\x03", b"\x04"]), st.binary(min_size=32, max_size=64))
def test_device_key_from_bytes_takes_a_point_or_raises_invalid_device_key(
    prefix: bytes, coordinates: bytes
) -> None:
    try:
        key = device_key_from_bytes(prefix + coordinates)
    except InvalidDeviceKey:
        return
    assert compress_p256(key)[1:] == coordinates[:32]


# Tampering never passes. All 1,568 bits, cold and warm: each costs one signature check or less,
# about half a second in all, so there is no need to sample.


def expected_after_flip(bit: int) -> Decision:
    byte = bit // BITS_PER_BYTE
    if byte == FORMAT_OFFSET:
        return Decision.UNSUPPORTED_FORMAT
    if byte < ISSUER_KEY_ID_OFFSET + ISSUER_KEY_ID_BYTES:
        return Decision.UNKNOWN_ISSUER_KEY
    if byte < CERTIFICATE_BYTES:
        return Decision.BAD_ISSUER_SIGNATURE
    return Decision.BAD_DEVICE_SIGNATURE


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_flipping_any_single_bit_is_refused_at_the_step_it_breaks(warm: bool) -> None:
    checker = verifier(warm_cache() if warm else None)
    wrong = {
        bit: decision
        for bit in range(CODE_BYTES * BITS_PER_BYTE)
        if (decision := checker.verify(code_to_text(flipped(VALID_RAW, bit)), NOW).decision)
        is not expected_after_flip(bit)
    }
    assert wrong == {}
    assert checker.verify(VALID_TEXT, NOW).decision is Decision.ACCEPTED


# Base45 is RFC 9285


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
    ],
)
def test_base45_matches_the_rfc_examples(data: bytes, text: str) -> None:
    assert base45.encode(data) == text
    assert base45.decode(text) == data


@given(st.binary(max_size=400))
def test_base45_round_trips_any_bytes(data: bytes) -> None:
    text = base45.encode(data)
    assert set(text) <= set(base45.ALPHABET)
    assert base45.decode(text) == data


@given(st.integers(min_value=0, max_value=base45.GROUP_VALUE_MAX))
def test_base45_accepts_every_group_up_to_0xffff(value: int) -> None:
    assert base45.decode(chars_of(value, 3)) == value.to_bytes(2, "big")


@given(st.integers(min_value=base45.GROUP_VALUE_MAX + 1, max_value=TRIPLE_VALUE_MAX))
def test_base45_rejects_a_group_above_0xffff(value: int) -> None:
    with pytest.raises(base45.Base45Error):
        base45.decode("BB8" + chars_of(value, 3) + "BB8")


@given(st.integers(min_value=base45.TAIL_VALUE_MAX + 1, max_value=PAIR_VALUE_MAX))
def test_base45_rejects_a_final_pair_above_0xff(value: int) -> None:
    with pytest.raises(base45.Base45Error):
        base45.decode("BB8" + chars_of(value, 2))


@given(st.text(alphabet=base45.ALPHABET).filter(lambda text: len(text) % 3 == 1))
def test_base45_rejects_a_length_of_one_more_than_a_multiple_of_three(text: str) -> None:
    with pytest.raises(base45.Base45Error):
        base45.decode(text)


@given(
    st.text(alphabet=base45.ALPHABET, max_size=30),
    st.characters().filter(lambda char: char not in base45.ALPHABET),
    st.text(alphabet=base45.ALPHABET, max_size=30),
)
def test_base45_rejects_a_character_outside_the_alphabet(before: str, odd: str, after: str) -> None:
    with pytest.raises(base45.Base45Error):
        base45.decode(before + odd + after)


def test_base45_decodes_the_empty_text_to_no_bytes() -> None:
    assert base45.decode("") == b""


# The replay window


@given(st.lists(st.integers(min_value=NOW - 60, max_value=NOW + 10), min_size=1, max_size=200))
def test_the_replay_window_remembers_codes_within_its_horizon(generated: list[int]) -> None:
    window = ReplayWindow(horizon_s=60)
    for counter, generated_at in enumerate(generated):
        window.remember((CARD_ID, generated_at, counter), NOW)
    assert all(window.seen((CARD_ID, at, counter), NOW) for counter, at in enumerate(generated))


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=200))
def test_the_replay_window_never_holds_more_than_its_bound(bound: int, codes: int) -> None:
    window = ReplayWindow(entries_max=bound)
    for counter in range(codes):
        window.remember((CARD_ID, NOW - counter % 60, counter), NOW)
    assert len(window) == min(bound, codes)


def test_the_replay_window_evicts_the_oldest_code_when_full() -> None:
    window = ReplayWindow(entries_max=2)
    window.remember((CARD_ID, NOW - 5, 1), NOW)
    window.remember((CARD_ID, NOW - 9, 2), NOW)
    window.remember((CARD_ID, NOW, 3), NOW)
    assert not window.seen((CARD_ID, NOW - 9, 2), NOW)
    assert window.seen((CARD_ID, NOW - 5, 1), NOW)
    assert window.seen((CARD_ID, NOW, 3), NOW)


def test_the_replay_window_forgets_codes_that_would_be_stale_anyway() -> None:
    window = ReplayWindow(horizon_s=60)
    window.remember((CARD_ID, NOW - 60, 1), NOW)
    assert window.seen((CARD_ID, NOW - 60, 1), NOW)
    assert not window.seen((CARD_ID, NOW - 60, 1), NOW + 1)
    assert len(window) == 0


# Issuing refuses what the spec forbids, and takes both SEC1 forms of a device key


FIELDS: dict[str, Any] = {
    "issuer_key_id": KEY_ID,
    "card_id": CARD_ID,
    "rider_category": 0,
    "flags": 0,
    "not_before": NOW,
    "not_after": NOW + CERTIFICATE_LIFETIME_MAX_S,
    "device_key": DEVICE_KEY,
}


@pytest.mark.parametrize(
    "change",
    [
        {"issuer_key_id": -1},
        {"issuer_key_id": U16_MAX + 1},
        {"rider_category": -1},
        {"rider_category": 7},
        {"flags": 0b10},
        {"flags": 0x80},
        {"not_after": NOW + CERTIFICATE_LIFETIME_MAX_S + 1},
        {"not_after": NOW - 1},
        {"not_before": -1, "not_after": 0},
        {"not_before": 2**32, "not_after": 2**32},
    ],
)
def test_certificate_body_refuses_fields_out_of_range(change: dict[str, int]) -> None:
    with pytest.raises(InvalidCertificateFields):
        certificate_body(**{**FIELDS, **change})


@pytest.mark.parametrize(
    "device_key",
    [
        b"",
        DEVICE_KEY[:-1],
        b"\x04" + DEVICE_KEY[1:],
        b"\x05" + DEVICE_KEY[1:],
        b"\x02" + b"\xff" * 32,
        DEVICE.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint),
    ],
    ids=["empty", "short", "wrong-prefix-04", "wrong-prefix-05", "x-above-p", "uncompressed"],
)
def test_certificate_body_refuses_anything_but_a_compressed_p256_point(device_key: bytes) -> None:
    with pytest.raises(InvalidDeviceKey):
        certificate_body(**{**FIELDS, "device_key": device_key})


def test_certificate_body_takes_the_extreme_allowed_values() -> None:
    body = certificate_body(**{**FIELDS, "issuer_key_id": U16_MAX, "rider_category": 6, "flags": 1})
    assert body[ISSUER_KEY_ID_OFFSET : ISSUER_KEY_ID_OFFSET + 2] == b"\xff\xff"


@EXAMPLES
@given(st.integers(min_value=1, max_value=2**255))
def test_device_keys_load_from_either_sec1_form(scalar: int) -> None:
    public_key = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
    compressed = compress_p256(public_key)
    uncompressed = public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert compress_p256(device_key_from_bytes(compressed)) == compressed
    assert compress_p256(device_key_from_bytes(uncompressed)) == compressed


@given(st.binary(max_size=70))
def test_device_key_from_bytes_accepts_only_points(data: bytes) -> None:
    try:
        key = device_key_from_bytes(data)
    except InvalidDeviceKey:
        return
    assert len(data) in (33, 65)
    assert isinstance(key.curve, ec.SECP256R1)


def test_compress_refuses_a_key_on_another_curve() -> None:
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(InvalidDeviceKey):
        compress_p256(other)


@given(st.integers(min_value=0, max_value=U16_MAX))
def test_the_counter_steps_by_one_and_wraps_after_65535(counter: int) -> None:
    assert next_counter(counter) == (0 if counter == U16_MAX else counter + 1)


def test_a_shared_cache_serves_a_certificate_checked_by_another_thread() -> None:
    hits: list[bool] = []

    class Counting(SharedCertificateCache):
        def get(self, raw: bytes, keys: IssuerKeySet, now: int) -> VerifiedCertificate | None:
            entry = super().get(raw, keys, now)
            hits.append(entry is not None)
            return entry

    cache = Counting()
    second_code = sign_code(
        certificate=CERTIFICATE, device_private_key=DEVICE, generated_at=NOW - 1, counter=2
    )
    decisions: list[Decision] = []
    for text in (VALID_TEXT, second_code):
        thread = threading.Thread(
            target=lambda t=text: decisions.append(verifier(cache).verify(t, NOW).decision)
        )
        thread.start()
        thread.join()
    assert decisions == [Decision.ACCEPTED, Decision.ACCEPTED]
    assert hits == [False, True]
    assert len(cache) == 1


def test_a_shared_cache_holds_more_certificates_than_a_validators() -> None:
    assert SharedCertificateCache().entries_max > CertificateCache().entries_max
    with pytest.raises(InvariantViolated):
        CertificateCache(SharedCertificateCache().entries_max)
