"""`tapledger parking`: operators and lots, the Hanoi defaults, and the sweeper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from parking.adapters.lot_files import HANOI_DEFAULT_LOTS, load_lot_file
from tapledger.bootstrap import bootstrap
from ticketing.shared.domain.errors import DomainError

EXIT_BAD_INPUT = 2

parking_app = typer.Typer(no_args_is_help=True, help="Street parking: operators, lots, sessions.")
console = Console()


def _fail(error: DomainError) -> typer.Exit:
    console.print(f"{error.code}: {error}", style="red", markup=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


@parking_app.command("add-operator")
def add_operator(
    operator_id: Annotated[str, typer.Argument(help="lower-case letters, digits and '-'")],
    name: Annotated[str, typer.Argument(help="the operator's name")],
) -> None:
    """Registers a parking operator (the same one again changes nothing)."""
    container = bootstrap()
    try:
        _, new = container.parking.catalogue.register_operator(operator_id, name)
    except DomainError as error:
        raise _fail(error) from None
    finally:
        container.close()
    console.print(f"operator {operator_id} {'registered' if new else 'already registered'}")


@parking_app.command("load-lots")
def load_lots(
    path: Annotated[
        Path, typer.Argument(dir_okay=False, help="a lots file (default: the Hanoi lots)")
    ] = HANOI_DEFAULT_LOTS,
) -> None:
    """Registers the operators and lots of a lots file; those already there are left as they
    are, and one registered with other fields is refused."""
    container = bootstrap()
    try:
        lot_file = load_lot_file(path)
        for operator_id, name in lot_file.operators:
            container.parking.catalogue.register_operator(operator_id, name)
        added = sum(container.parking.catalogue.register_lot(spec)[1] for spec in lot_file.lots)
    except DomainError as error:
        raise _fail(error) from None
    finally:
        container.close()
    console.print(f"{added} lots registered, {len(lot_file.lots) - added} already there")


@parking_app.command("lots")
def list_lots() -> None:
    """Lists the lots with their free places per class (after catching up)."""
    container = bootstrap()
    try:
        container.parking.follower.catch_up()
        table = Table("lot", "operator", "rate table", "free motorbike / car / large")
        for row in container.parking.views.lots():
            free = " / ".join(str(row.free[cls]) for cls in ("motorbike", "car", "large"))
            table.add_row(row.lot_id, row.operator_id, row.table_id, free)
    finally:
        container.close()
    console.print(table)


@parking_app.command("sweep")
def sweep() -> None:
    """Ends sessions left open past their maximum stay, settles interrupted ends and closes
    reservations nobody arrived for."""
    container = bootstrap()
    try:
        container.follower.catch_up()  # the ledger's holds, for the holds no session took up
        container.parking.follower.catch_up()
        report = container.parking.sweeper.sweep()
        container.parking.follower.catch_up()
    finally:
        container.close()
    console.print(
        f"ended {report.ended} overstayed sessions; settled {report.settled};"
        f" closed {report.no_shows} missed reservations;"
        f" released {report.released} holds no session took up"
    )
