"""Ids derived from names must never change: stored aggregates are found by them."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from ticketing.accounts.domain.transfer import Transfer
from ticketing.cards.domain.issuer_keys import RING_ID
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.shared.domain.ids import url_uuid5
from ticketing.taps.domain.validator import Validator


@pytest.mark.parametrize(
    "name",
    ["", "/tapledger/issuer-key-ring", "/tapledger/transfers/fare-1", "/thẻ/vé/ü", "x" * 300],
)
def test_url_uuid5_names_the_ids_the_standard_library_names(name: str) -> None:
    assert url_uuid5(name) == uuid5(NAMESPACE_URL, name)
    assert url_uuid5(name).bytes == uuid5(NAMESPACE_URL, name).bytes


def test_the_ids_of_stored_aggregates_are_the_ones_they_were_stored_under() -> None:
    # Pinned from the standard library's uuid5 before the aggregates used the one helper.
    assert str(RING_ID) == "18196df5-a53a-56ab-af93-851acdc32d62"
    assert SmartCard.create_id("0011223344556677") == UUID("a3839a3a-810f-5d39-97d1-5345fa5d9934")
    assert SmartCard.create_id("0011223344556677".upper()) == SmartCard.create_id(
        "0011223344556677"
    )
    assert Transfer.create_id("fare-1") == UUID("b8b86710-51f8-5b88-a221-897d5e7a9faf")
    assert Validator.create_id(7) == UUID("aac66afa-b6e6-58e5-984f-ad9165a20857")
