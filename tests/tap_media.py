"""Media for tap tests: a phone signing TL1 codes, and a TLC1 card charged at a bus validator."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.records import Environment, EventKind
from hardware.tlc1.terminal import SessionProof, Terminal
from tests.vectors import CARD_VECTORS_PATH
from ticketing.tl1.device import sign_code
from validators.card_desk import CardDesk
from validators.card_validation import CardValidator, Outcome, TapPoint

VECTORS = json.loads(CARD_VECTORS_PATH.read_text())
MASTER_KEYS = {KeyLevel(int(k)): bytes.fromhex(v) for k, v in VECTORS["master_keys"].items()}
CARD_SERIAL = bytes.fromhex(VECTORS["serial"])
NETWORK = 1
BUS_FARE_VND = 8_000


@dataclass
class Phone:
    """A rider's phone: its P-256 key and the certificate the issuer gave it."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: bytes = b""

    @classmethod
    def new(cls) -> Phone:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )

    def certify(self, certificate_b64: str) -> None:
        self.certificate = base64.b64decode(certificate_b64)

    def code(self, generated_at: int, counter: int) -> str:
        return sign_code(
            certificate=self.certificate,
            device_private_key=self.private_key,
            generated_at=generated_at,
            counter=counter,
        )


def card_terminal(card: EmulatedCard) -> Terminal:
    reader = CardInReader(card, "emulated", lost_card_errors=(CardTorn,))
    reader.power_on()
    return Terminal(reader, SoftwareSam(MASTER_KEYS))


def personalised_card(
    account_id: UUID,
    *,
    purse_vnd: int = 50_000,
    issued_on: int = 1_700_000_000,
    serial: bytes = CARD_SERIAL,
) -> EmulatedCard:
    card = EmulatedCard.from_master_keys(MASTER_KEYS, serial)
    desk = CardDesk(card_terminal(card))
    desk.personalise(
        Environment(
            network_id=NETWORK, issued_on=issued_on, rider_category=0, account_id=account_id
        )
    )
    desk.reload(purse_vnd)
    return card


def bus_ride(card: EmulatedCard, *, at: int, validator: int) -> SessionProof:
    """Charges one bus fare on the card; returns the session proof the validator uploads."""
    point = TapPoint(
        network_id=NETWORK,
        location=32,
        validator=validator,
        kind=EventKind.BUS_BOARDING,
        fare_vnd=BUS_FARE_VND,
    )
    validation = CardValidator(
        card_terminal(card), point, denied_serials=frozenset(), clock=lambda: at
    ).validate()
    assert validation.outcome is Outcome.CHARGED
    assert validation.proof is not None
    return validation.proof
