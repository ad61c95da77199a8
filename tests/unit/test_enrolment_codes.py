"""One-time enrolment codes and revocation, in the domain and in the application on the
in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketing.taps.application.ingestion import TapIngestion
from ticketing.taps.domain.enrolment_code import (
    CODE_ALPHABET,
    CODE_CHARS,
    ENROLMENT_CODE_TTL_S,
    EnrolmentCode,
    EnrolmentCodeExpired,
    EnrolmentCodeRevoked,
    EnrolmentCodeUnknown,
    EnrolmentCodeUsed,
    code_digest,
    new_code,
)
from ticketing.taps.domain.validator import Validator, ValidatorRevoked

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BUS = 17


def test_a_new_code_carries_at_least_64_random_bits_in_four_readable_groups() -> None:
    code = new_code()
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4]
    assert set("".join(groups)) <= set(CODE_ALPHABET)
    assert CODE_CHARS * (len(CODE_ALPHABET).bit_length() - 1) >= 64
    assert len({new_code() for _ in range(1000)}) == 1000


def test_a_code_is_known_by_its_digest_whatever_its_case_dashes_or_spaces() -> None:
    code = "ABCD-EFGH-JKMN-PQRS"
    assert code_digest(" abcd efgh-jkmn-pqrs ") == code_digest(code)
    assert code_digest("ABCD-EFGH-JKMN-PQRT") != code_digest(code)


def test_a_code_enrols_once_then_is_refused_as_used() -> None:
    code = new_code()
    enrolment = EnrolmentCode.issue(validator_id=BUS, code=code, at=T0)
    assert code not in str(vars(enrolment))  # only the hash is kept
    enrolment.use(code, epoch=1, at=T0, revoked_at=None)
    with pytest.raises(EnrolmentCodeUsed):
        enrolment.use(code, epoch=2, at=T0, revoked_at=None)


def test_a_code_expires_after_its_time_to_live() -> None:
    code = new_code()
    enrolment = EnrolmentCode.issue(validator_id=BUS, code=code, at=T0)
    last_moment = T0 + timedelta(seconds=ENROLMENT_CODE_TTL_S - 1)
    enrolment.check_usable(code, at=last_moment, revoked_at=None)
    with pytest.raises(EnrolmentCodeExpired):
        enrolment.check_usable(code, at=last_moment + timedelta(seconds=1), revoked_at=None)


def test_a_code_made_before_the_validators_revocation_is_refused() -> None:
    code = new_code()
    enrolment = EnrolmentCode.issue(validator_id=BUS, code=code, at=T0)
    with pytest.raises(EnrolmentCodeRevoked):
        enrolment.check_usable(code, at=T0, revoked_at=T0)
    enrolment.check_usable(code, at=T0, revoked_at=T0 - timedelta(seconds=1))


def test_another_code_than_the_one_hashed_is_unknown() -> None:
    enrolment = EnrolmentCode.issue(validator_id=BUS, code=new_code(), at=T0)
    with pytest.raises(EnrolmentCodeUnknown):
        enrolment.check_usable(new_code(), at=T0, revoked_at=None)


def test_a_revoked_validator_is_revoked_once_and_an_enrolment_lets_it_back() -> None:
    validator = Validator.register(validator_id=BUS, kind="bus", network_id=1, location=1, at=T0)
    assert validator.revoke(at=T0) is True
    assert validator.revoke(at=T0 + timedelta(seconds=1)) is False
    assert validator.revoked_at == T0
    with pytest.raises(ValidatorRevoked):
        validator.check_not_revoked()
    validator.enrol(at=T0)
    validator.check_not_revoked()
    assert (validator.epoch, validator.revoked) == (1, False)


class _Verifier:
    """No tap is verified here."""


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_revoked_validator_is_let_back_by_a_code_made_after_its_revocation_only() -> None:
    clock = _Clock()
    taps = TapIngestion(verifier=_Verifier(), clock=clock)  # type: ignore[arg-type]
    taps.register_validator(validator_id=BUS, kind="bus", network_id=1, location=1)
    taps.revoke_validator(BUS)
    code, _ = taps.issue_enrolment_code(BUS)
    # A code made at the same instant as the revocation is not newer than it.
    with pytest.raises(EnrolmentCodeRevoked):
        taps.exchange_enrolment_code(code)
    clock.now = T0 + timedelta(seconds=1)
    code, _ = taps.issue_enrolment_code(BUS)
    enrolled = taps.exchange_enrolment_code(code)
    assert (enrolled.epoch, enrolled.revoked) == (1, False)
    stored = taps.get_validator(BUS, fresh=True)  # as replayed from the store
    assert (stored.epoch, stored.revoked_at) == (1, None)
    taps.close()
