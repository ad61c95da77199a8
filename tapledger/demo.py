"""`tapledger demo`: a simulated Hanoi day on the embedded default, end to end.

Every step goes through the same use cases the HTTP API calls (the ledger's, the cards', the
taps', parking's), on the demo's own clock; the demo then checks that the read models agree with
the accounts and that a rebuild reproduces them exactly.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from tapledger.bootstrap import Container, bootstrap
from tapledger.demo_cards import virtual_card_scene
from tapledger.demo_clearing import clearing_scene
from tapledger.demo_clock import HANOI, SimClock
from tapledger.demo_fleet import fleet_scene
from tapledger.demo_morning import morning
from tapledger.demo_parking import parking_scene
from tapledger.demo_smartcard import smart_card_scene
from tapledger.demo_taps import phone_for, taps_scene
from tapledger.settings import Settings
from ticketing.accounts.application.ledger import Ledger
from ticketing.shared.domain.rider import RiderCategory

STATEMENT_LINES_SHOWN = 12


def run_demo(console: Console, data_dir: Path | None = None, *, fleet: bool = True) -> None:
    """The day, its clearing cycle, then (with `fleet`) the live fleet scene, whose devices are
    processes on the wall clock (`tapledger.demo_fleet`); raises `typer.Exit(1)` when a check
    fails."""
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
        riders = _open_accounts(container.ledger, console)
        phones = {name: phone_for(container, riders[name]) for name in ("Lan", "Hoa")}
        morning(container, clock, console, phones["Lan"], riders)
        console.print(f"\n[bold]{clock.now.astimezone(HANOI):%H:%M}[/bold] a virtual card")
        cards_ok = virtual_card_scene(container, riders["Minh"], console)
        console.print(f"\n[bold]{clock.now.astimezone(HANOI):%H:%M}[/bold] a smart card")
        cards_ok &= smart_card_scene(container, riders["Tuan"], console)
        console.print(f"\n[bold]{clock.now.astimezone(HANOI):%H:%M}[/bold] taps through ingestion")
        cards_ok &= taps_scene(
            container, riders, phones, console, lambda d: clock.advance(seconds=d.total_seconds())
        )
        parking_ok = parking_scene(container, clock, riders, phones["Lan"], console)
        ok = _report(container, riders["Lan"], console) and cards_ok and parking_ok
        ok &= clearing_scene(container, clock, console, settings.data_dir.parent / "clearing")
    finally:
        container.close()
    if fleet:
        ok &= fleet_scene(console, settings.data_dir.parent / "fleet")
    if not ok:
        raise typer.Exit(1)


def _open_accounts(ledger: Ledger, console: Console) -> dict[str, UUID]:
    lan = ledger.open_account(rider_category=RiderCategory.REGULAR, display_name="Nguyễn Thị Lan")
    minh = ledger.open_account(rider_category=RiderCategory.PRIORITY, display_name="Trần Văn Minh")
    hoa = ledger.open_account(rider_category=RiderCategory.ELDERLY, display_name="Lê Thị Hoa")
    tuan = ledger.open_account(
        rider_category=RiderCategory.REGULAR, display_name="Phạm Quốc Tuấn", overdraft_vnd=10_000
    )
    console.print("opened 4 accounts: a regular rider, a student, an elderly rider, a driver")
    return {"Lan": lan.id, "Minh": minh.id, "Hoa": hoa.id, "Tuan": tuan.id}


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
