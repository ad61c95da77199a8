"""How a journey is named, and how it names what it remembers beside ledger transfers: the purse
payment of a tap, and the card session a purse payment was proved by (neither moves money)."""

from __future__ import annotations

from uuid import UUID

from ticketing.shared.domain.ids import url_uuid5


def purse_transfer_id(tap_id: str) -> str:
    """How a journey remembers the purse payment of one tap (it moves no money on the ledger)."""
    return f"purse:{tap_id}"


# How a journey remembers the card session a purse payment was proved by (it moves no money).
CARD_PROOF_PREFIX = "card-proof:"


def card_proof_id(proof: str) -> str:
    return f"{CARD_PROOF_PREFIX}{proof}"


def journey_id(first_tap_id: UUID) -> UUID:
    return url_uuid5(f"/tapledger/journeys/{first_tap_id}")
