"""`tapledger demo`: a simulated Hanoi day on the embedded default, end to end.

Every step goes through the same use cases the HTTP API calls (the ledger's, the cards', the
taps', parking's), on the demo's own clock; the demo then checks that the read models agree with
the accounts and that a rebuild reproduces them exactly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from tapledger.bootstrap import Container, bootstrap
from tapledger.demo_cards import virtual_card_scene
from tapledger.demo_clock import HANOI, SimClock
from tapledger.demo_parking import parking_scene
from tapledger.demo_smartcard import smart_card_scene
from tapledger.demo_taps import phone_for, taps_scene
from tapledger.settings import Settings
from ticketing.accounts.application.hold_sweeper import sweep_expired_holds
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Command, Debit, PlaceHold, PostHold, TopUp
from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.rider import RiderCategory

METRO_2A_MAX_FARE_VND = 15_000
METRO_ENTRY_HOLD_TTL_S = 4 * 3600
STATEMENT_LINES_SHOWN = 12


def run_demo(console: Console, data_dir: Path | None = None) -> None:
    settings = Settings(
        environment="local",
        data_dir=data_dir or Settings().data_dir / "demo",
        database_url=None,
        redis_url=None,
    )
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    clock = SimClock()
    container = bootstrap(settings, clock=clock)
    try:
        console.rule("[bold]tapledger demo[/bold]: one day on Hanoi's transport accounts")
        console.print(f"store: SQLite at {settings.sqlite_path}, hot state in process\n")
        riders = _morning(container, clock, console)
        console.print(f"\n[bold]{clock.now.astimezone(HANOI):%H:%M}[/bold] a virtual card")
        cards_ok = virtual_card_scene(container, riders["Minh"], console)
        console.print(f"\n[bold]{clock.now.astimezone(HANOI):%H:%M}[/bold] a smart card")
        cards_ok &= smart_card_scene(container, riders["Tuan"], console)
        console.print(f"\n[bold]{clock.now.astimezone(HANOI):%H:%M}[/bold] taps through ingestion")
        phones = {name: phone_for(container, riders[name]) for name in ("Lan", "Hoa")}
        cards_ok &= taps_scene(
            container, riders, phones, console, lambda d: clock.advance(seconds=d.total_seconds())
        )
        parking_ok = parking_scene(container, clock, riders, phones["Lan"], console)
        ok = _report(container, riders["Lan"], console) and cards_ok and parking_ok
    finally:
        container.close()
    if not ok:
        raise typer.Exit(1)


def _morning(container: Container, clock: SimClock, console: Console) -> dict[str, UUID]:
    """Runs the morning's story; returns the riders' accounts by first name."""
    riders = _open_accounts(container.ledger, console)
    step = _Step(container.ledger, console)
    _top_ups(step, riders, clock, console)
    _metro(step, riders, clock, console)
    _buses(step, riders, clock, console)
    _abandoned_entry_and_lost_phone(container, step, riders["Lan"], clock, console)
    return riders


@dataclass(frozen=True)
class _Step:
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


def _open_accounts(ledger: Ledger, console: Console) -> dict[str, UUID]:
    lan = ledger.open_account(rider_category=RiderCategory.REGULAR, display_name="Nguyễn Thị Lan")
    minh = ledger.open_account(rider_category=RiderCategory.PRIORITY, display_name="Trần Văn Minh")
    hoa = ledger.open_account(rider_category=RiderCategory.ELDERLY, display_name="Lê Thị Hoa")
    tuan = ledger.open_account(
        rider_category=RiderCategory.REGULAR, display_name="Phạm Quốc Tuấn", overdraft_vnd=10_000
    )
    console.print("opened 4 accounts: a regular rider, a student, an elderly rider, a driver")
    return {"Lan": lan.id, "Minh": minh.id, "Hoa": hoa.id, "Tuan": tuan.id}


def _top_ups(step: _Step, riders: dict[str, UUID], clock: SimClock, console: Console) -> None:
    lan, minh, tuan = riders["Lan"], riders["Minh"], riders["Tuan"]
    console.print(f"\n[bold]{clock.now:%H:%M}[/bold] top-ups arrive from the payment provider")
    step("Lan tops up 200,000 VND", TopUp(lan, 200_000, "momo-7781"))
    step("the provider re-sends Lan's callback", TopUp(lan, 200_000, "momo-7781"))
    step("a forged callback reuses that reference", TopUp(lan, 900_000, "momo-7781"))
    step("Minh tops up 5,000 VND", TopUp(minh, 5_000, "vnpay-1203"))
    step("Tuấn tops up 100,000 VND", TopUp(tuan, 100_000, "bank-55120"))


def _metro(step: _Step, riders: dict[str, UUID], clock: SimClock, console: Console) -> None:
    lan, minh = riders["Lan"], riders["Minh"]
    clock.advance(minutes=20)
    console.print(f"\n[bold]{clock.now:%H:%M}[/bold] metro line 2A, Cát Linh to Hà Đông")
    step(
        "Lan enters at Cát Linh: hold the maximum fare",
        PlaceHold(lan, "m2a-cl-0650-lan", METRO_2A_MAX_FARE_VND, METRO_ENTRY_HOLD_TTL_S),
    )
    step(
        "Minh enters too, but 5,000 VND does not cover the maximum fare",
        PlaceHold(minh, "m2a-cl-0650-minh", METRO_2A_MAX_FARE_VND, METRO_ENTRY_HOLD_TTL_S),
    )
    clock.advance(minutes=14)
    step(
        "Lan exits at La Khê: post the real fare, 11,000 VND",
        PostHold(lan, "m2a-cl-0650-lan", 11_000),
    )
    step("the gate retries the exit", PostHold(lan, "m2a-cl-0650-lan", 11_000))


def _buses(step: _Step, riders: dict[str, UUID], clock: SimClock, console: Console) -> None:
    lan, minh = riders["Lan"], riders["Minh"]
    clock.advance(minutes=10)
    console.print(f"\n[bold]{clock.now:%H:%M}[/bold] buses")
    step("Minh rides route 32 (under 15 km): 8,000 VND", Debit(minh, "bus-32-0714-minh", 8_000))
    step("Lan rides route 01: 8,000 VND", Debit(lan, "bus-01-0714-lan", 8_000, "route 01"))
    # Street parking is its own scene, on the parking context: tapledger/demo_parking.py.


def _abandoned_entry_and_lost_phone(
    container: Container, step: _Step, lan: UUID, clock: SimClock, console: Console
) -> None:
    ledger = container.ledger
    clock.advance(minutes=5)
    console.print(f"\n[bold]{clock.now:%H:%M}[/bold] an abandoned entry and a lost phone")
    step(
        "Lan enters at Thái Hà and never taps out",
        PlaceHold(lan, "m2a-th-0854-lan", METRO_2A_MAX_FARE_VND, 3600),
    )
    clock.advance(hours=2)
    expired, _ = sweep_expired_holds(ledger, container.read_model, container.follower)
    console.print(f"  [green]ok[/green] the sweeper released {expired} expired hold(s)")
    ledger.block_account(lan, reason="phone reported lost")
    console.print("  [green]ok[/green] Lan reports her phone lost: the account is blocked")
    step("a bus validator charges Lan's account", Debit(lan, "bus-01-1100-lan", 8_000))
    ledger.unblock_account(lan)
    console.print("  [green]ok[/green] Lan's new phone is bound: the account is unblocked")
    step("Lan rides again", Debit(lan, "bus-01-1130-lan", 8_000))


def _report(container: Container, lan_id: UUID, console: Console) -> bool:
    container.follower.catch_up()
    rows = container.read_model.list_balances(after=None, limit=50)
    table = Table(title="Balances (read model)", title_justify="left")
    for column in ("rider", "category", "status"):
        table.add_column(column)
    for column in ("posted", "pending", "available"):
        table.add_column(column, justify="right")
    agree = True
    # By opening time, then name: riders opened in the same instant print in one order.
    for row in sorted(rows, key=lambda r: (r["opened_at"], r["display_name"])):
        account = container.ledger.get_account(row["account_id"])
        same = (row["posted_vnd"], row["pending_vnd"]) == (account.posted_vnd, account.pending_vnd)
        agree &= same
        table.add_row(
            row["display_name"],
            RiderCategory(row["rider_category"]).name.lower(),
            row["status"],
            f"{row['posted_vnd']:,}",
            f"{row['pending_vnd']:,}",
            f"{row['available_vnd']:,}",
        )
    console.print()
    console.print(table)
    _print_statement(container, lan_id, console)
    before = container.read_model.dump()
    applied = container.follower.rebuild()
    identical = before == container.read_model.dump()
    console.print(f"read models agree with the accounts: {_verdict(agree)}")
    console.print(f"rebuilt from {applied} events, identical: {_verdict(identical)}")
    return agree and identical


def _print_statement(container: Container, account_id: UUID, console: Console) -> None:
    name = container.ledger.get_account(account_id).display_name
    page = container.read_model.statement(account_id, before_seq=None, limit=STATEMENT_LINES_SHOWN)
    table = Table(title=f"Statement: {name}, newest first", title_justify="left")
    for column in ("#", "time", "what", "reference", "posted Δ", "pending Δ", "available"):
        table.add_column(column)
    for line in page.lines:
        table.add_row(
            str(line["seq"]),
            f"{line['at'].astimezone(HANOI):%H:%M}",
            line["kind"],
            line["reference"],
            f"{line['posted_delta_vnd']:+,}",
            f"{line['pending_delta_vnd']:+,}",
            f"{line['available_after_vnd']:,}",
        )
    console.print(table)


def _verdict(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]NO[/red]"
