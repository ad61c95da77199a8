"""The fleet scene's smart card: issued and loaded at the desk, then presented to the bus process.

The desk writes the card in process, as `tapledger.demo_smartcard` does. The bus validator runs
as a process and reads cards only through its reader port; here that reader is
`--reader vpcd-listen:127.0.0.1:0` (`hardware.vpcd_listen`), and the card emulator connects to it
from a thread of the demo exactly as it connects to vpcd, then leaves the field once the bus has
printed its decision.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.emulator.image import CardImage
from hardware.emulator.key_file import card_keys_from_master
from hardware.emulator.vpcd import VpcdLink
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.records import Environment
from hardware.tlc1.terminal import Terminal
from hardware.vpcd_listen import parse_listen_address
from tapledger.bootstrap import Container
from tapledger.device_processes import DEVICE_START_TIMEOUT_S, DeviceFailed, DeviceProcess
from ticketing.cards.domain.smart_card import CARD_NETWORK_ID_DEFAULT
from validators.card_desk import CardDesk

FLEET_CARD_SERIAL = "00000000000f1ee7"
CARD_RELOAD_VND = 50_000
LINK_STOP_TIMEOUT_S = 5.0
# From the card entering the field to the reader powering it off: a card session is ~8 APDUs.
CARD_SESSION_TIMEOUT_S = 15.0
# What `validator run` says on stderr once its listening reader is up (validators.cli).
READER_NOTE = "card reader vpcd-listen:"


def loaded_card(
    container: Container, account_id: UUID, master_keys: dict[KeyLevel, bytes]
) -> HandHeldCard:
    """A card issued to the account, personalised, and loaded from it at the desk."""
    serial = bytes.fromhex(FLEET_CARD_SERIAL)
    card = HandHeldCard(CardImage.blank(serial), card_keys_from_master(master_keys, serial))
    sam = SoftwareSam(master_keys)

    def desk() -> CardDesk:
        reader = CardInReader(card, "desk", lost_card_errors=(CardTorn,))
        reader.power_on()
        return CardDesk(Terminal(reader, sam))

    service = container.smart_cards
    account = container.ledger.get_account(account_id)
    service.issue(account_id, serial=FLEET_CARD_SERIAL, network_id=CARD_NETWORK_ID_DEFAULT)
    desk().personalise(
        Environment(
            network_id=CARD_NETWORK_ID_DEFAULT,
            issued_on=int(container.cards.now().timestamp()),
            rider_category=int(account.rider_category),
            account_id=account_id,
        )
    )
    service.start_reload(
        FLEET_CARD_SERIAL, reload_id="fleet-desk-1", amount_vnd=CARD_RELOAD_VND, purse_before_vnd=0
    )
    reloaded = desk().reload(CARD_RELOAD_VND)
    service.settle_reload(
        FLEET_CARD_SERIAL,
        reload_id="fleet-desk-1",
        purse_after_vnd=reloaded.purse_after_vnd,
        transaction_counter=reloaded.proof.counter,
    )
    return card


def reader_port(device: DeviceProcess) -> int:
    """The port the device's listening reader took (it was asked for any free one)."""
    note = device.wait_note(READER_NOTE, DEVICE_START_TIMEOUT_S)
    # "card reader vpcd-listen:HOST:PORT: ..." → "vpcd-listen:HOST:PORT"
    address = note[note.index(READER_NOTE) :].split()[2].rstrip(":")
    try:
        return parse_listen_address(address)[1]
    except ValueError as error:
        raise DeviceFailed(f"{device.name} named its reader oddly: {note!r}") from error


class HandHeldCard(EmulatedCard):
    """The emulated card in a rider's hand: it is taken away once the reader has powered it
    off, as a rider does at the beep. The validator prints its decision only once the card has
    left the field, so waiting for the printed decision first would hold it there in vain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unpowered = threading.Event()

    def power_off(self) -> None:
        super().power_off()
        self.unpowered.set()


def present_card(card: HandHeldCard, device: DeviceProcess, port: int) -> dict[str, Any]:
    """Holds the card to the device's reader until it is done with it; returns the decision."""
    before = len(device.of_type("decision"))
    card.unpowered.clear()
    with _in_the_field(card, port):
        if not card.unpowered.wait(CARD_SESSION_TIMEOUT_S):
            raise DeviceFailed(f"{device.name} never finished with the card")
    return device.wait_decision(before)


@contextmanager
def _in_the_field(card: EmulatedCard, port: int) -> Iterator[None]:
    stop = threading.Event()
    link = VpcdLink(card, host="127.0.0.1", port=port)
    thread = threading.Thread(target=link.run, args=(stop,), name="fleet-card", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()  # the card leaves the field
        thread.join(LINK_STOP_TIMEOUT_S)
