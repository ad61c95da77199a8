"""The demo's smart-card scene: the desk personalises and reloads a card, a bus validates it.

The card is the TLC1 emulator, plugged straight into the terminal in process; the same code
drives a real reader through pcscd (`tapledger card emulate` puts this card behind vpcd).
"""

from __future__ import annotations

import os
from uuid import UUID

from rich.console import Console

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.records import Environment, EventKind
from hardware.tlc1.terminal import Terminal
from tapledger.bootstrap import Container
from ticketing.cards.domain.smart_card import CARD_NETWORK_ID_DEFAULT
from validators.card_desk import CardDesk
from validators.card_validation import CardValidator, Outcome, TapPoint

DEMO_SERIAL = bytes.fromhex("00000000000a2b3c")
NETWORK_ID = CARD_NETWORK_ID_DEFAULT
RELOAD_VND = 50_000
ROUTE_01 = TapPoint(
    network_id=NETWORK_ID, location=1, validator=101, kind=EventKind.BUS_BOARDING, fare_vnd=8_000
)
TEAR_AFTER_CLOSE = 6  # SELECT, OPEN, READ, DECREASE, APPEND, CLOSE: the ratifying READ is lost


def smart_card_scene(container: Container, account_id: UUID, console: Console) -> bool:
    """Returns whether every step ended as expected."""
    master_keys = {level: os.urandom(16) for level in KeyLevel}  # the demo issuer's SAM keys
    card = EmulatedCard.from_master_keys(master_keys, DEMO_SERIAL)
    sam = SoftwareSam(master_keys)

    def terminal() -> Terminal:
        reader = CardInReader(card, "desk", lost_card_errors=(CardTorn,))
        reader.power_on()
        return Terminal(reader, sam)

    serial = DEMO_SERIAL.hex()
    service = container.smart_cards
    account = container.ledger.get_account(account_id)
    service.issue(account_id, serial=serial, network_id=NETWORK_ID)
    now = int(container.cards.now().timestamp())
    CardDesk(terminal()).personalise(
        Environment(
            network_id=NETWORK_ID,
            issued_on=now,
            rider_category=int(account.rider_category),
            account_id=account_id,
        )
    )
    console.print(f"  [green]ok[/green] the ticket office personalises card {serial} for Tuấn")

    service.start_reload(serial, reload_id="desk-1", amount_vnd=RELOAD_VND, purse_before_vnd=0)
    reloaded = CardDesk(terminal()).reload(RELOAD_VND)
    outcome = service.settle_reload(
        serial,
        reload_id="desk-1",
        purse_after_vnd=reloaded.purse_after_vnd,
        transaction_counter=reloaded.proof.counter,
    )
    console.print(
        f"  [green]ok[/green] reload {RELOAD_VND:,} VND from the account to the card: "
        f"{outcome.value}, purse {reloaded.purse_after_vnd:,} VND"
    )

    def ride(at: int) -> Outcome:
        result = CardValidator(
            terminal(), ROUTE_01, denied_serials=frozenset(), clock=lambda: at
        ).validate()
        if result.proof is not None and result.purse_after_vnd is not None:
            service.record_session(
                serial, purse_vnd=result.purse_after_vnd, transaction_counter=result.proof.counter
            )
        return result.outcome

    first = ride(now + 600)
    console.print(f"  bus route 01, tap on: [bold]{first.value}[/bold]")
    card.tear_after = TEAR_AFTER_CLOSE
    torn = ride(now + 3600)
    card.tear_after = None
    retap = ride(now + 3605)
    purse = CardDesk(terminal()).purse()[1]
    console.print(
        f"  next ride, the card is pulled away just after paying: [bold]{torn.value}[/bold]; "
        f"the rider taps again: [bold]{retap.value}[/bold]; purse {purse:,} VND"
    )
    return (
        first is Outcome.CHARGED
        and torn is Outcome.CHARGED
        and retap is Outcome.RETAP_AFTER_TEAR
        and purse == RELOAD_VND - 2 * ROUTE_01.fare_vnd
    )
