"""Issuer key rotation, revocation, the deny list and expiry, with and without a warm cache."""

from __future__ import annotations

from uuid import UUID, uuid5

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.validator_fakes import Phone
from ticketing.tl1.certificate_cache import CertificateCache
from ticketing.tl1.issuing import compress_p256, issue_certificate
from ticketing.tl1.keyset import InvalidIssuerKey, IssuerKeySet
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Decision, Verifier

NOW = 1_800_000_000
OLD_KEY_ID = 1
NEW_KEY_ID = 2
UNKNOWN_KEY_ID = 99
LIFETIME_S = 24 * 3600
ISSUED_AGO_S = 3600
CARDS = UUID("5f0c7a52-1d0e-4c0b-9a43-0c1f2e3d4c5b")
OLD_ISSUER = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
NEW_ISSUER = Ed25519PrivateKey.from_private_bytes(bytes([2]) * 32)
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes([3]) * 32)


def phone(issuer: Ed25519PrivateKey, key_id: int, name: str, not_after: int | None = None) -> Phone:
    key = ec.derive_private_key(int.from_bytes(name.encode()), ec.SECP256R1())
    card_id = uuid5(CARDS, name)
    not_before = NOW - ISSUED_AGO_S
    certificate = issue_certificate(
        issuer,
        issuer_key_id=key_id,
        card_id=card_id,
        rider_category=0,
        flags=0,
        not_before=not_before,
        not_after=not_before + LIFETIME_S if not_after is None else not_after,
        device_key=compress_p256(key.public_key()),
    )
    return Phone(card_id, key, certificate)


def overlap() -> IssuerKeySet:
    """Both keys live: the rotation window in which phones still carry old certificates."""
    return IssuerKeySet({OLD_KEY_ID: OLD_ISSUER.public_key(), NEW_KEY_ID: NEW_ISSUER.public_key()})


def verifier(
    keys: IssuerKeySet, cache: CertificateCache | None, denied: set[UUID] | None = None
) -> Verifier:
    return Verifier(
        keys,
        set() if denied is None else denied,
        replay_window=ReplayWindow(),
        certificate_cache=cache,
    )


CACHES = pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])


def cache_if(cached: bool) -> CertificateCache | None:
    return CertificateCache() if cached else None


@CACHES
def test_both_keys_are_accepted_during_the_overlap(cached: bool) -> None:
    checker = verifier(overlap(), cache_if(cached))
    old, new = phone(OLD_ISSUER, OLD_KEY_ID, "old"), phone(NEW_ISSUER, NEW_KEY_ID, "new")
    assert checker.verify(old.code(NOW), NOW).decision is Decision.ACCEPTED
    assert checker.verify(new.code(NOW), NOW).decision is Decision.ACCEPTED


@CACHES
def test_codes_under_a_revoked_key_are_refused_even_when_their_certificate_was_cached(
    cached: bool,
) -> None:
    cache = cache_if(cached)
    checker = verifier(overlap(), cache)
    old, new = phone(OLD_ISSUER, OLD_KEY_ID, "old"), phone(NEW_ISSUER, NEW_KEY_ID, "new")
    assert checker.verify(old.code(NOW), NOW).decision is Decision.ACCEPTED
    assert checker.verify(new.code(NOW), NOW).decision is Decision.ACCEPTED

    checker.keys = checker.keys.revoke(OLD_KEY_ID)

    assert checker.verify(old.code(NOW + 1), NOW + 1).decision is Decision.REVOKED_ISSUER_KEY
    assert checker.verify(new.code(NOW + 1), NOW + 1).decision is Decision.ACCEPTED
    if cache is not None:
        assert len(cache) == 1


@CACHES
def test_a_key_id_the_validator_does_not_know_is_refused(cached: bool) -> None:
    checker = verifier(overlap(), cache_if(cached))
    stranger = phone(STRANGER, UNKNOWN_KEY_ID, "stranger")
    assert checker.verify(stranger.code(NOW), NOW).decision is Decision.UNKNOWN_ISSUER_KEY


@CACHES
def test_a_key_dropped_from_the_set_is_unknown_even_when_its_certificate_was_cached(
    cached: bool,
) -> None:
    checker = verifier(overlap(), cache_if(cached))
    old = phone(OLD_ISSUER, OLD_KEY_ID, "old")
    assert checker.verify(old.code(NOW), NOW).decision is Decision.ACCEPTED

    checker.keys = IssuerKeySet({NEW_KEY_ID: NEW_ISSUER.public_key()}, version=2)

    assert checker.verify(old.code(NOW), NOW).decision is Decision.UNKNOWN_ISSUER_KEY


@CACHES
def test_a_key_id_given_to_another_key_does_not_reuse_cached_certificates(cached: bool) -> None:
    checker = verifier(overlap(), cache_if(cached))
    old = phone(OLD_ISSUER, OLD_KEY_ID, "old")
    assert checker.verify(old.code(NOW), NOW).decision is Decision.ACCEPTED

    checker.keys = checker.keys.with_key(OLD_KEY_ID, STRANGER.public_key())

    assert checker.verify(old.code(NOW), NOW).decision is Decision.BAD_ISSUER_SIGNATURE


@CACHES
def test_a_denied_card_is_refused_also_from_a_warm_cache(cached: bool) -> None:
    denied: set[UUID] = set()
    checker = verifier(overlap(), cache_if(cached), denied)
    rider = phone(NEW_ISSUER, NEW_KEY_ID, "rider")
    assert checker.verify(rider.code(NOW), NOW).decision is Decision.ACCEPTED

    denied.add(rider.card_id)

    assert checker.verify(rider.code(NOW), NOW).decision is Decision.CARD_DENIED


@CACHES
def test_a_cached_certificate_is_not_used_after_not_after(cached: bool) -> None:
    cache = cache_if(cached)
    checker = verifier(overlap(), cache)
    not_after = NOW + 30
    rider = phone(NEW_ISSUER, NEW_KEY_ID, "rider", not_after=not_after)
    assert checker.verify(rider.code(not_after), not_after).decision is Decision.ACCEPTED

    later = not_after + 1
    assert checker.verify(rider.code(later), later).decision is Decision.CERTIFICATE_EXPIRED
    if cache is not None:
        assert len(cache) == 0


@CACHES
def test_a_cached_certificate_is_not_used_before_not_before(cached: bool) -> None:
    checker = verifier(overlap(), cache_if(cached))
    rider = phone(NEW_ISSUER, NEW_KEY_ID, "rider")
    assert checker.verify(rider.code(NOW), NOW).decision is Decision.ACCEPTED

    early = NOW - ISSUED_AGO_S - 1
    assert checker.verify(rider.code(early), early).decision is Decision.CERTIFICATE_NOT_YET_VALID


def test_a_warm_cache_skips_the_issuer_check_for_the_next_code_of_the_same_card() -> None:
    cache = CertificateCache()
    checker = verifier(overlap(), cache)
    rider = phone(NEW_ISSUER, NEW_KEY_ID, "rider")
    first = checker.verify(rider.code(NOW), NOW)
    second = checker.verify(rider.code(NOW + 1), NOW + 1)
    assert first.code is not None
    assert second.code is not None
    # The same parsed certificate object: the second code did not parse or verify it again.
    assert second.code.certificate is first.code.certificate
    assert len(cache) == 1


def test_the_cache_evicts_the_least_recently_used_certificate() -> None:
    cache = CertificateCache(entries_max=2)
    checker = verifier(overlap(), cache)
    first, second, third = (phone(NEW_ISSUER, NEW_KEY_ID, name) for name in ("a", "b", "c"))
    for rider in (first, second, first, third):
        assert checker.verify(rider.code(NOW), NOW).decision is Decision.ACCEPTED
    assert len(cache) == 2
    assert cache.get(first.certificate, checker.keys, NOW) is not None
    assert cache.get(second.certificate, checker.keys, NOW) is None
    assert cache.get(third.certificate, checker.keys, NOW) is not None


def test_revoking_returns_a_new_set_one_version_later() -> None:
    keys = overlap()
    revoked = keys.revoke(OLD_KEY_ID)
    assert keys.revoked == frozenset()
    assert revoked.revoked == {OLD_KEY_ID}
    assert revoked.version == keys.version + 1


def test_a_key_set_reads_hex_and_raw_keys() -> None:
    raw = NEW_ISSUER.public_key().public_bytes_raw()
    keys = IssuerKeySet.from_bytes({OLD_KEY_ID: raw.hex(), NEW_KEY_ID: raw})
    assert keys.raw_key(OLD_KEY_ID) == keys.raw_key(NEW_KEY_ID) == raw


@pytest.mark.parametrize(
    "keys",
    [{1: "zz"}, {1: b"\x00" * 31}, {1: "00" * 33}, {-1: "00" * 32}, {0x1_0000: "00" * 32}],
    ids=["not-hex", "short", "long", "negative-id", "id-above-u16"],
)
def test_a_key_set_refuses_bad_configuration(keys: dict[int, bytes | str]) -> None:
    with pytest.raises(InvalidIssuerKey):
        IssuerKeySet.from_bytes(keys)


def test_a_key_set_is_not_changed_through_the_dict_it_was_made_from() -> None:
    source = {OLD_KEY_ID: OLD_ISSUER.public_key()}
    keys = IssuerKeySet(source)
    source[NEW_KEY_ID] = NEW_ISSUER.public_key()
    assert set(keys.keys) == {OLD_KEY_ID}
