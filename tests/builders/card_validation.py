"""Smart cards validated at a card station: issued cards, purses and a counting reader."""

from __future__ import annotations

import json
from uuid import UUID

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.records import Environment, EventKind
from hardware.tlc1.terminal import Terminal
from tests.vectors import CARD_VECTORS_PATH
from validators.card_desk import CardDesk
from validators.card_validation import (
    TapPoint,
)

VECTORS = json.loads(CARD_VECTORS_PATH.read_text())


MASTER_KEYS = {KeyLevel(int(k)): bytes.fromhex(v) for k, v in VECTORS["master_keys"].items()}


SERIAL = bytes.fromhex(VECTORS["serial"])


NETWORK = 1


NOW = 1_795_000_000


BUS = TapPoint(
    network_id=NETWORK, location=32, validator=77, kind=EventKind.BUS_BOARDING, fare_vnd=8_000
)


# The dearest ride from the entry station, and the dearest ride ending at the exit station.
METRO_IN = TapPoint(
    network_id=NETWORK, location=1, validator=101, kind=EventKind.METRO_ENTRY, fare_vnd=19_000
)


class Counting(CardInReader):
    def __init__(self, card: EmulatedCard) -> None:
        super().__init__(card, "emulated", lost_card_errors=(CardTorn,))
        self.apdus = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.apdus += 1
        return super().transmit(apdu)


def terminal(card: EmulatedCard) -> tuple[Terminal, Counting]:
    reader = Counting(card)
    reader.power_on()
    return Terminal(reader, SoftwareSam(MASTER_KEYS)), reader


def issued_card(purse_vnd: int = 50_000, network_id: int = NETWORK) -> EmulatedCard:
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL)
    desk = CardDesk(terminal(card)[0])
    desk.personalise(
        Environment(
            network_id=network_id,
            issued_on=NOW - 86_400,
            rider_category=0,
            account_id=UUID("6f1c2b9e-3d4a-4b5c-8d7e-0123456789ab"),
        )
    )
    if purse_vnd:
        desk.reload(purse_vnd)
    return card


def purse(card: EmulatedCard) -> int:
    return CardDesk(terminal(card)[0]).purse()[1]
