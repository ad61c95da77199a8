"""A scanned TL1 code read as a validator's tap is: verified by the backend's tap verifier
(signature, validity, deny list), and traced to the account its virtual card pays from."""

from __future__ import annotations

from datetime import datetime

from parking.domain.errors import CodeRefused
from parking.domain.ports import ScannedCode
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.taps.application.tap_verification import TapVerifier

# The verdict a verifier gives a code it cannot parse at all.
UNREADABLE_REASON = "malformed"


class TapVerifierCodes:
    def __init__(self, verifier: TapVerifier, cards: CardIssuer) -> None:
        self.verifier = verifier
        self.cards = cards

    def read(self, text: str, at: datetime) -> ScannedCode:
        verdict = self.verifier.verify_qr(text, at)
        if verdict.refusal_reason is not None:
            raise CodeRefused(verdict.refusal_reason)
        if verdict.card_id is None or verdict.counter is None:
            raise CodeRefused(UNREADABLE_REASON)
        card = self.cards.get_virtual_card(verdict.card_id)
        return ScannedCode(verdict.card_id, verdict.counter, card.account_id)
