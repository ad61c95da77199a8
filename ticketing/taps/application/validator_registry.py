"""The validators' use cases: register, enrol again, revoke, enrolment codes, and the record of
what a device was refused. `TapIngestion` is one with them, so taps and validators share a store
and a validator's registration is read by the tap path from the same process's memory.

Revoking here records the fact and refuses the validator's uploads in this process; its tokens
are revoked by the product (`DeviceTokenIssuer.revoke_device_tokens`), whose invalidation
channel makes every process forget them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.observed import ObservedApplication
from ticketing.shared.optimistic import save_with_retries
from ticketing.taps.domain.device_refusal import DeviceRefusal, RefusalFacts, RefusedRequest
from ticketing.taps.domain.enrolment_code import (
    EnrolmentCode,
    EnrolmentCodeUnknown,
    EnrolmentRefused,
    code_digest,
    new_code,
)
from ticketing.taps.domain.validator import (
    DeviceTokenRevoked,
    Validator,
    ValidatorAlreadyRegistered,
    ValidatorBusy,
    ValidatorNotFound,
    ValidatorRevoked,
    check_validator_id,
)

# Registrations remembered per process (only an enrolment or a revocation changes one, and an
# upload naming a newer epoch reads it again); cleared when full.
VALIDATORS_REMEMBERED_MAX = 100_000
# A device whose revoked token keeps knocking is recorded once in this window, not per retry.
REVOKED_TOKEN_RECORD_WINDOW_S = 3600


class ValidatorRegistry(ObservedApplication):
    """Validators and what their devices were refused (the base of `TapIngestion`)."""

    clock: Callable[[], datetime]
    _validators: dict[int, Validator]

    def now(self) -> datetime:
        raise NotImplementedError  # `TapIngestion.now`

    def register_validator(
        self,
        *,
        validator_id: int,
        kind: str,
        network_id: int,
        location: int,
        stop_id: str = "",
        route_id: str = "",
        direction: str = "",
    ) -> Validator:
        """Registers a validator; `stop_id`, `route_id` and a metro gate's `direction` say
        where it stands in fare terms, so its taps can be priced."""
        validator = Validator.register(
            validator_id=validator_id,
            kind=kind,
            network_id=network_id,
            location=location,
            at=self.now(),
            stop_id=stop_id,
            route_id=route_id,
            direction=direction,
        )
        try:
            self.save(validator)
        except IntegrityError:
            raise ValidatorAlreadyRegistered(validator_id) from None
        return validator

    def enrol_validator(self, validator_id: int) -> Validator:
        """Enrols a registered validator again, in a new epoch: for a device whose state was
        wiped (or a new device in its place), which numbers its taps from 1 again. A revoked
        validator enrolled again may upload again."""

        def attempt() -> Validator:
            # A conflict means another request enrolled it at the same moment: read it again.
            validator = self.get_validator(validator_id, fresh=True)
            validator.enrol(at=self.now())
            self.save(validator)
            self._validators[validator_id] = validator
            return validator

        return save_with_retries(attempt, what=f"validator {validator_id}", contended=ValidatorBusy)

    def revoke_validator(self, validator_id: int) -> Validator:
        """Revokes a validator (a stolen or retired device); revoking it again changes nothing."""

        def attempt() -> Validator:
            validator = self.get_validator(validator_id, fresh=True)
            if validator.revoke(at=self.now()):
                self.save(validator)
            self._validators[validator_id] = validator
            return validator

        return save_with_retries(attempt, what=f"validator {validator_id}", contended=ValidatorBusy)

    def check_may_hold_token(self, validator_id: int) -> Validator:
        """The validator, if a token may be issued to it now (it is not revoked)."""
        validator = self.get_validator(validator_id, fresh=True)
        validator.check_not_revoked()
        return validator

    def get_validator(self, validator_id: int, *, fresh: bool = False) -> Validator:
        """The validator as remembered by this process, or as stored when `fresh`: only its
        epoch and revocation ever change, and the tap path reads it `fresh` when an upload
        names a newer epoch."""
        known = None if fresh else self._validators.get(validator_id)
        if known is not None:
            return known
        check_validator_id(validator_id)
        try:
            validator: object = self.repository.get(Validator.create_id(validator_id))
        except AggregateNotFoundError:
            raise ValidatorNotFound(validator_id) from None
        if not isinstance(validator, Validator):
            raise ValidatorNotFound(validator_id)
        if len(self._validators) >= VALIDATORS_REMEMBERED_MAX:
            self._validators.clear()
        self._validators[validator_id] = validator
        return validator

    # Enrolment codes

    def issue_enrolment_code(self, validator_id: int) -> tuple[str, EnrolmentCode]:
        """A one-time code for a registered validator (revoked or not), shown once."""
        self.get_validator(validator_id, fresh=True)
        code = new_code()
        enrolment = EnrolmentCode.issue(validator_id=validator_id, code=code, at=self.now())
        self.save(enrolment)
        return code, enrolment

    def exchange_enrolment_code(self, code: str) -> Validator:
        """Uses a code once: its validator is enrolled in a new epoch (a fresh device numbers
        its taps from 1) and may upload again if it was revoked. A refusal is recorded with
        its reason, then raised (`EnrolmentRefused`)."""

        def attempt() -> Validator:
            try:
                enrolment: object = self.repository.get(EnrolmentCode.create_id(code_digest(code)))
            except AggregateNotFoundError:
                raise EnrolmentCodeUnknown() from None
            if not isinstance(enrolment, EnrolmentCode):
                raise EnrolmentCodeUnknown()
            validator = self.get_validator(enrolment.validator_id, fresh=True)
            at = self.now()
            enrolment.use(code, epoch=validator.epoch + 1, at=at, revoked_at=validator.revoked_at)
            validator.enrol(at=at)
            # Both or neither: a code is used exactly when its enrolment happened.
            self.save(enrolment, validator)
            self._validators[validator.validator_id] = validator
            return validator

        try:
            return save_with_retries(attempt, what="enrolment code", contended=ValidatorBusy)
        except EnrolmentRefused as refused:
            facts = RefusalFacts(
                RefusedRequest.ENROLMENT.value, refused.code, validator_id=refused.validator_id
            )
            self.record_refusal(facts, key=f"enrolment/{uuid4().hex}")
            raise

    # Refusals

    def record_refusal(self, facts: RefusalFacts, *, key: str) -> DeviceRefusal | None:
        """Records a refused request once per `key`; None when that key is recorded already."""
        refusal = DeviceRefusal.record(facts, key=key, at=self.now())
        try:
            self.save(refusal)
        except IntegrityError:
            return None
        return refusal

    def refuse_upload(
        self,
        reason: str,
        *,
        validator_id: int,
        token_validator_id: int,
        token_id: str,
        epoch: int,
        seqs: Sequence[int],
    ) -> None:
        """Records an upload refused whole for `reason` (a stable code): the same batch retried
        is one record, so a device backing off and retrying does not grow the store per try."""
        first, last = (min(seqs), max(seqs)) if seqs else (0, 0)
        facts = RefusalFacts(
            RefusedRequest.UPLOAD.value,
            reason,
            validator_id=validator_id,
            token_validator_id=token_validator_id,
            token_id=token_id,
            epoch=epoch,
            first_seq=first,
            last_seq=last,
            taps=len(seqs),
        )
        key = f"upload/{reason}/{validator_id}/{token_id}/{epoch}/{first}/{last}/{len(seqs)}"
        self.record_refusal(facts, key=key)

    def refuse_revoked_token(self, token_validator_id: int, token_id: str) -> DomainError:
        """An upload with a validator's revoked token, refused before its body is read: why
        (the validator is revoked, or only this token was), recorded once an hour per token."""
        try:
            validator = self.get_validator(token_validator_id, fresh=True)
        except ValidatorNotFound:
            validator = None
        error: DomainError = (
            ValidatorRevoked(token_validator_id)
            if validator is not None and validator.revoked
            else DeviceTokenRevoked(token_validator_id)
        )
        window = int(self.now().timestamp()) // REVOKED_TOKEN_RECORD_WINDOW_S
        facts = RefusalFacts(
            RefusedRequest.UPLOAD.value,
            error.code,
            token_validator_id=token_validator_id,
            token_id=token_id,
        )
        self.record_refusal(facts, key=f"upload/{error.code}/{token_id}/{window}")
        return error
