"""The demo's morning: top-ups, then Lan's rides tapped at validators on her phone.

Every movement of the morning is made by the writer the product uses for it (a top-up with the
provider's reference, a journey's hold, post and charges by the journeys' charger), so the day's
clearing cycle can say whose revenue each one is. The refusals (a forged callback, a rider
short of money, a blocked account) are ledger commands that leave no movement behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from rich.console import Console

from tapledger.bootstrap import Container
from tapledger.demo_clock import SimClock
from tapledger.demo_taps import BUS_NETWORK, METRO_2A_NETWORK, Phone
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Command, Debit, PlaceHold, TopUp
from ticketing.shared.domain.errors import DomainError
from ticketing.taps.application.ingestion import QrTap

METRO_2A_MAX_FARE_VND = 15_000
# The morning's validators: gates at Cát Linh (in) and La Khê (out), and a bus on route 01.
GATE_CAT_LINH = 3201
GATE_LA_KHE = 3210
BUS_01 = 3301


@dataclass(frozen=True)
class Step:
    """One command of the story through the ledger, printed ok (or a repeat) or refused."""

    ledger: Ledger
    console: Console

    def __call__(self, story: str, command: Command) -> None:
        try:
            receipt = self.ledger.execute(command)
        except DomainError as error:
            self.console.print(
                f"  [yellow]refused[/yellow] {story}: [bold]{error.code}[/bold] ({error})"
            )
            return
        note = " [dim](a repeat: nothing changed)[/dim]" if receipt.replayed else ""
        self.console.print(f"  [green]ok[/green] {story}{note}")


@dataclass
class Validators:
    """The morning's validators, online: each tap is uploaded as it is made."""

    container: Container
    clock: SimClock
    console: Console
    seqs: dict[int, int] = field(default_factory=dict)
    sent: dict[int, QrTap] = field(default_factory=dict)

    def register(self) -> None:
        taps = self.container.taps
        taps.register_validator(
            validator_id=BUS_01, kind="bus", network_id=BUS_NETWORK, location=BUS_01,
            stop_id="bus-kim-ma", route_id="01",
        )  # fmt: skip
        for validator_id, stop_id, direction in (
            (GATE_CAT_LINH, "2A-01", "entry"),
            (GATE_LA_KHE, "2A-10", "exit"),
        ):
            taps.register_validator(
                validator_id=validator_id, kind="metro_gate", network_id=METRO_2A_NETWORK,
                location=validator_id, stop_id=stop_id, route_id="2A", direction=direction,
            )  # fmt: skip

    def tap(self, story: str, validator_id: int, phone: Phone, account_id: UUID) -> None:
        """Taps the phone now, uploads the tap, and prints what it did to the account."""
        seq = self.seqs.get(validator_id, 0) + 1
        self.seqs[validator_id] = seq
        upload = QrTap(seq, self.clock.now, "accepted", "accepted", phone.code(self.clock.now))
        self.sent[validator_id] = upload
        self._upload(story, validator_id, upload, account_id)

    def resend(self, story: str, validator_id: int, account_id: UUID) -> None:
        """The validator sends its last tap again (its acknowledgement was lost)."""
        self._upload(story, validator_id, self.sent[validator_id], account_id)

    def _upload(self, story: str, validator_id: int, upload: QrTap, account_id: UUID) -> None:
        before = self.container.ledger.get_account(account_id)
        [result] = self.container.taps.ingest_batch(validator_id, [upload])
        self.container.catch_up()
        after = self.container.ledger.get_account(account_id)
        charged = before.posted_vnd - after.posted_vnd
        held = after.pending_vnd - before.pending_vnd
        moved = [
            f"charged {charged:,} VND" if charged else "",
            f"hold {held:+,} VND" if held else "",
        ]
        what = "; ".join(m for m in moved if m) or "nothing moved"
        self.console.print(f"  [green]{result.status}[/green] {story}: {what}")


def morning(
    container: Container,
    clock: SimClock,
    console: Console,
    lan_phone: Phone,
    riders: dict[str, UUID],
) -> None:
    step = Step(container.ledger, console)
    top_ups(step, riders, clock, console)
    validators = Validators(container, clock, console)
    validators.register()
    lan, minh = riders["Lan"], riders["Minh"]
    clock.advance(minutes=20)
    console.print(f"\n{clock.label()} metro line 2A, Cát Linh to La Khê, on Lan's phone")
    validators.tap("Lan enters at Cát Linh: the maximum fare held", GATE_CAT_LINH, lan_phone, lan)
    step(
        "Minh enters too, but 5,000 VND does not cover the maximum fare",
        PlaceHold(minh, "m2a-cl-0650-minh", METRO_2A_MAX_FARE_VND, 3600),
    )
    clock.advance(minutes=14)
    validators.tap("Lan exits at La Khê: the real fare posted", GATE_LA_KHE, lan_phone, lan)
    validators.resend("the gate sends the exit again", GATE_LA_KHE, lan)
    clock.advance(minutes=40)
    console.print(f"\n{clock.label()} buses")
    step("Minh rides route 32 (under 15 km): 8,000 VND", Debit(minh, "bus-32-0754-minh", 8_000))
    validators.tap("Lan boards bus 01", BUS_01, lan_phone, lan)
    clock.advance(minutes=20)
    validators.tap("Lan taps off bus 01", BUS_01, lan_phone, lan)
    _lost_phone(container, step, validators, lan_phone, lan, clock, console)


def top_ups(step: Step, riders: dict[str, UUID], clock: SimClock, console: Console) -> None:
    lan, minh, tuan = riders["Lan"], riders["Minh"], riders["Tuan"]
    console.print(f"\n{clock.label()} top-ups arrive from the payment provider")
    step("Lan tops up 200,000 VND", TopUp(lan, 200_000, "momo-7781"))
    step("the provider re-sends Lan's callback", TopUp(lan, 200_000, "momo-7781"))
    step("a forged callback reuses that reference", TopUp(lan, 900_000, "momo-7781"))
    step("Minh tops up 5,000 VND", TopUp(minh, 5_000, "vnpay-1203"))
    step("Tuấn tops up 100,000 VND", TopUp(tuan, 100_000, "bank-55120"))


def _lost_phone(
    container: Container,
    step: Step,
    validators: Validators,
    lan_phone: Phone,
    lan: UUID,
    clock: SimClock,
    console: Console,
) -> None:
    clock.advance(minutes=10)
    console.print(f"\n{clock.label()} a lost phone")
    container.ledger.block_account(lan, reason="phone reported lost")
    console.print("  [green]ok[/green] Lan reports her phone lost: the account is blocked")
    step("a bus validator charges Lan's account", Debit(lan, "bus-01-0835-lan", 8_000))
    container.ledger.unblock_account(lan)
    console.print("  [green]ok[/green] Lan's phone is found: the account is unblocked")
    clock.advance(minutes=15)
    validators.tap("Lan boards bus 01 again", BUS_01, lan_phone, lan)
    clock.advance(minutes=12)
    validators.tap("and taps off", BUS_01, lan_phone, lan)
    # The rest of the day's rides are more than an hour later: journeys of their own.
    clock.advance_to(10, 0)
