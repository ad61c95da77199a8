"""The backend's tap refusal reasons: one enum, equal to every reason a verification can give."""

from __future__ import annotations

from ticketing.taps.domain.tap import DEVICE_CLOCK_SKEWED, CardRefusal, RefusalReason
from ticketing.tl1.verify import Decision


def test_the_refusal_reasons_are_the_qr_steps_the_card_proofs_and_the_device_clocks() -> None:
    qr = {decision.value for decision in Decision if decision is not Decision.ACCEPTED}
    card = {refusal.value for refusal in CardRefusal}
    assert {reason.value for reason in RefusalReason} == qr | card | {DEVICE_CLOCK_SKEWED}


def test_accepted_is_no_refusal_reason() -> None:
    assert Decision.ACCEPTED.value not in {reason.value for reason in RefusalReason}
