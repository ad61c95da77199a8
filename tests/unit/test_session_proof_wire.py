"""A card session's proof in JSON: one way there and back, and the API's schema accepts it."""

from __future__ import annotations

from uuid import uuid4

import pytest

from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.terminal import SessionProof
from tests.tap_media import CARD_SERIAL, bus_ride, personalised_card
from ticketing.taps.schemas import CardProofUpload, CardTapUpload

PROOF = SessionProof(
    serial=bytes.fromhex("0011223344556677"),
    level=KeyLevel(3),
    terminal_challenge=bytes(range(8)),
    card_challenge=bytes(range(8, 16)),
    counter=41,
    transcript=bytes.fromhex("00a1b2"),
    card_mac=bytes(range(16, 24)),
)


def test_a_proof_in_json_is_hex_without_the_serial_and_reads_back_the_same() -> None:
    wire = PROOF.to_wire()
    assert wire == {
        "level": 3,
        "terminal_challenge": "0001020304050607",
        "card_challenge": "08090a0b0c0d0e0f",
        "counter": 41,
        "transcript": "00a1b2",
        "card_mac": "1011121314151617",
    }
    assert SessionProof.from_wire(PROOF.serial, wire) == PROOF


def test_the_proof_of_a_real_bus_ride_passes_the_upload_schema_unchanged() -> None:
    proof = bus_ride(personalised_card(uuid4()), at=1_800_000_000, validator=1)
    upload = CardTapUpload.model_validate(
        {
            "medium": "card",
            "seq": 1,
            "tapped_at": 1_800_000_000,
            "device_decision": "accepted",
            "device_reason": "charged",
            "serial": CARD_SERIAL.hex(),
            "proof": proof.to_wire(),
        }
    )
    assert upload.to_tap().proof == proof


@pytest.mark.parametrize("field", ["terminal_challenge", "transcript", "card_mac"])
def test_a_proof_with_bytes_that_are_not_hex_is_refused(field: str) -> None:
    good = PROOF.to_wire()
    wire = {**good, field: "z" * len(str(good[field]))}  # type: ignore[literal-required]
    with pytest.raises(ValueError, match="non-hexadecimal"):
        SessionProof.from_wire(PROOF.serial, wire)
    with pytest.raises(ValueError, match="should match pattern"):
        CardProofUpload.model_validate(wire)
