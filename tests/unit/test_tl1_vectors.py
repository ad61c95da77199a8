"""The TL1 test vectors of spec/qr-vectors.json, made by an independent implementation."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.vectors import QR_VECTORS_PATH
from ticketing.tl1.certificate_cache import CertificateCache
from ticketing.tl1.device import sign_code
from ticketing.tl1.issuing import compress_p256, issue_certificate
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import Certificate, code_from_text, code_to_text, parse_certificate
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Decision, Verifier

VECTORS: dict[str, Any] = json.loads(QR_VECTORS_PATH.read_text())
CASES: list[dict[str, Any]] = VECTORS["vectors"]
VALID = next(case for case in CASES if case["name"] == "valid")
# A fresh code of our own: a few seconds old, with a counter the vectors do not use.
OWN_CODE_AGE_S = 5
OWN_CODE_COUNTER = 1_000


def key_set() -> IssuerKeySet:
    return IssuerKeySet.from_bytes(
        {int(key_id): hex_key for key_id, hex_key in VECTORS["issuer_keys"].items()}
    )


def verifier(denied: list[str] | None = None, cache: CertificateCache | None = None) -> Verifier:
    return Verifier(
        key_set(),
        {UUID(card) for card in denied or []},
        replay_window=ReplayWindow(horizon_s=VECTORS["stale_after_s"]),
        certificate_cache=cache,
        stale_after_s=VECTORS["stale_after_s"],
        future_tolerance_s=VECTORS["future_tolerance_s"],
    )


def warm_cache() -> CertificateCache:
    """A cache holding the vectors' certificate, filled by another validator's replay window."""
    cache = CertificateCache()
    warmed = verifier(cache=cache).verify(VALID["code"], VALID["now"])
    assert warmed.decision is Decision.ACCEPTED
    assert len(cache) == 1
    return cache


def issuer_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["issuer_private_seed_hex"]))


def published_certificate() -> Certificate:
    return parse_certificate(bytes.fromhex(VECTORS["certificate_hex"]))


def device_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(VECTORS["device_private_scalar_hex"], 16), ec.SECP256R1())


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_each_vector_gives_its_decision_with_a_cold_cache(case: dict[str, Any]) -> None:
    result = verifier(case["denied_cards"], CertificateCache()).verify(case["code"], case["now"])
    assert result.decision == case["expect"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_each_vector_gives_its_decision_with_a_warm_cache(case: dict[str, Any]) -> None:
    result = verifier(case["denied_cards"], warm_cache()).verify(case["code"], case["now"])
    assert result.decision == case["expect"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_each_vector_gives_its_decision_without_a_cache(case: dict[str, Any]) -> None:
    result = verifier(case["denied_cards"]).verify(case["code"], case["now"])
    assert result.decision == case["expect"]


@pytest.mark.parametrize("cache", [None, CertificateCache()], ids=["uncached", "cached"])
def test_the_same_code_twice_is_accepted_then_refused_as_replayed(
    cache: CertificateCache | None,
) -> None:
    sequence = VECTORS["replay_sequence"]
    checker = verifier(cache=cache)
    decisions = [checker.verify(code, sequence["now"]).decision for code in sequence["codes"]]
    assert decisions == sequence["expect"]


def test_decisions_are_accepted_and_the_twelve_reason_codes_of_the_spec() -> None:
    assert [decision.value for decision in Decision] == [
        "accepted",
        "malformed",
        "unsupported_format",
        "unknown_issuer_key",
        "revoked_issuer_key",
        "bad_issuer_signature",
        "certificate_not_yet_valid",
        "certificate_expired",
        "card_denied",
        "bad_device_signature",
        "code_stale",
        "code_from_future",
        "code_replayed",
    ]


def test_every_decision_in_the_vectors_is_a_known_reason_code() -> None:
    expected = {case["expect"] for case in CASES} | set(VECTORS["replay_sequence"]["expect"])
    assert expected <= {decision.value for decision in Decision}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_the_parsed_code_comes_back_exactly_when_the_text_got_past_steps_1_and_2(
    case: dict[str, Any],
) -> None:
    result = verifier(case["denied_cards"]).verify(case["code"], case["now"])
    unparsed = {Decision.MALFORMED, Decision.UNSUPPORTED_FORMAT}
    assert (result.code is None) == (result.decision in unparsed)


def test_a_parsed_code_carries_the_vectors_card_and_certificate() -> None:
    result = verifier().verify(VALID["code"], VALID["now"])
    assert result.code is not None
    assert result.code.certificate.card_id == UUID(VECTORS["card_id"])
    assert result.code.certificate.raw.hex() == VECTORS["certificate_hex"]


def test_issuer_seed_gives_the_published_issuer_key() -> None:
    key_id = published_certificate().issuer_key_id
    public_key = issuer_private_key().public_key().public_bytes_raw()
    assert public_key.hex() == VECTORS["issuer_keys"][str(key_id)]


def test_issue_certificate_reproduces_the_vectors_certificate() -> None:
    published = published_certificate()
    certificate = issue_certificate(
        issuer_private_key(),
        issuer_key_id=published.issuer_key_id,
        card_id=UUID(VECTORS["card_id"]),
        rider_category=published.rider_category,
        flags=published.flags,
        not_before=published.not_before,
        not_after=published.not_after,
        device_key=compress_p256(device_private_key().public_key()),
    )
    # Ed25519 is deterministic, so equal inputs give byte-equal certificates.
    assert certificate.hex() == VECTORS["certificate_hex"]


def test_sign_code_with_the_vectors_device_key_makes_an_accepted_code() -> None:
    now = VALID["now"]
    text = sign_code(
        certificate=bytes.fromhex(VECTORS["certificate_hex"]),
        device_private_key=device_private_key(),
        generated_at=now - OWN_CODE_AGE_S,
        counter=OWN_CODE_COUNTER,
    )
    result = verifier().verify(text, now)
    assert result.decision is Decision.ACCEPTED
    assert result.code is not None
    assert (result.code.generated_at, result.code.counter) == (
        now - OWN_CODE_AGE_S,
        OWN_CODE_COUNTER,
    )


DECODABLE = [case for case in CASES if case["expect"] != Decision.MALFORMED]


@pytest.mark.parametrize("case", DECODABLE, ids=[case["name"] for case in DECODABLE])
def test_base45_encoding_reproduces_the_vectors_text_exactly(case: dict[str, Any]) -> None:
    assert code_to_text(code_from_text(case["code"])) == case["code"]
