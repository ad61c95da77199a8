"""The `tapledger` command line."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated
from uuid import UUID

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from uvicorn.config import STARTUP_FAILURE

from tapledger.auth import TOKEN_ID_CHARS, TOKENS_LISTED_MAX, TokenConfigured, TokenNotFound
from tapledger.bootstrap import bootstrap
from tapledger.card_cli import card_app
from tapledger.clearing_cli import clearing_app
from tapledger.collector import tune_collector
from tapledger.fare_feed import FareFeedUnusable
from tapledger.http.workers import WORKERS_MAX, PortInUse
from tapledger.http.workers import serve as serve_workers
from tapledger.parking_cli import parking_app
from tapledger.rider.cli import rider_app
from tapledger.sam_key_file import SamKeyFileUnusable
from tapledger.settings import Settings
from tapledger.validator_staff_cli import add_staff_commands
from ticketing.accounts.application.hold_sweeper import sweep_expired_holds
from ticketing.shared.access import Role
from ticketing.shared.domain.errors import DomainError
from validators.cli import validator_app

app = typer.Typer(no_args_is_help=True, help="Transit fares and street parking on one account.")
projections = typer.Typer(no_args_is_help=True, help="Read models built from the event store.")
tokens = typer.Typer(no_args_is_help=True, help="API tokens.")
holds = typer.Typer(no_args_is_help=True, help="Holds on transport accounts.")
journeys = typer.Typer(no_args_is_help=True, help="Journeys built from taps.")
app.add_typer(projections, name="projections")
app.add_typer(tokens, name="tokens")
app.add_typer(holds, name="holds")
app.add_typer(journeys, name="journeys")
app.add_typer(rider_app, name="rider")
app.add_typer(card_app, name="card")
add_staff_commands(validator_app)
app.add_typer(validator_app, name="validator")
app.add_typer(parking_app, name="parking")
app.add_typer(clearing_app, name="clearing")
console = Console()
# Disagreements printed by `journeys reconcile`; the count says how many there are in all.
RECONCILE_SHOWN_MAX = 200


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=WORKERS_MAX, help="Worker processes, each with its own socket")
    ] = 1,
) -> None:
    """Serves the HTTP API (OpenAPI at /openapi.json)."""
    settings = Settings()
    # Create every table once, before any worker starts: concurrent DDL is unsafe.
    try:
        bootstrap(settings).close()
    except (FareFeedUnusable, SamKeyFileUnusable) as error:
        console.print(str(error), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    bind_host, bind_port = host or settings.host, port or settings.port
    config = uvicorn.Config(
        "tapledger.http.app:app_from_env",
        factory=True,
        host=bind_host,
        port=bind_port,
        log_level="info",
        access_log=settings.access_log,
        # Named, not left to "auto": the C event loop and HTTP parser, both installed with
        # uvicorn[standard]; a missing one fails the start instead of serving slower.
        loop="uvloop",
        http="httptools",
    )
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise typer.Exit(STARTUP_FAILURE)
        return
    try:
        status = serve_workers(config, bind_host, bind_port, workers)
    except PortInUse as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    raise typer.Exit(status)


@app.command()
def demo() -> None:
    """Runs a simulated day on the embedded default and prints what happened."""
    from tapledger.demo import run_demo

    run_demo(console)


@projections.command("rebuild")
def projections_rebuild() -> None:
    """Drops every read model and builds it again from the stored events."""
    container = bootstrap()
    try:
        for follower in container.followers:
            name = follower.projection.name
            with console.status(f"rebuilding the {name} read models"):
                applied = follower.rebuild()
            console.print(
                f"{name}: rebuilt from {applied:,} events; position {follower.position():,}"
            )
    finally:
        container.close()


@projections.command("run")
def projections_run() -> None:
    """Runs every follower (read models and journeys) until interrupted: on PostgreSQL, run
    this as its own process and start `serve` with TAPLEDGER_FOLLOW_IN_PROCESS=false, so the API
    workers spend no CPU on projections."""
    container = bootstrap()
    tune_collector()
    container.start_followers()
    console.print("following the event store; Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        container.close()


@tokens.command("create")
def tokens_create(
    role: Annotated[Role, typer.Option(help="admin, operator or rider")],
    account: Annotated[UUID | None, typer.Option(help="The rider's account")] = None,
    operator: Annotated[
        str | None, typer.Option(help="An operator token's scope: that operator's clearing")
    ] = None,
    label: Annotated[str, typer.Option(help="Who the token is for")] = "",
) -> None:
    """Issues an API token and prints it once."""
    container = bootstrap()
    try:
        if operator is not None and operator not in container.clearing.terms.operators:
            raise ValueError(f"clearing settles no operator {operator!r}")
        issued = container.tokens.issue(role, account_id=account, operator_id=operator, label=label)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    finally:
        container.close()
    typer.echo(issued.token)


@tokens.command("list")
def tokens_list(
    limit: Annotated[int, typer.Option(min=1, max=TOKENS_LISTED_MAX, help="Newest first")] = 50,
) -> None:
    """Lists tokens by id, without their secrets, revoked ones included."""
    container = bootstrap()
    try:
        found = container.tokens.tokens(limit=limit)
    finally:
        container.close()
    table = Table("role", "account / validator / operator", "label", "created", "revoked")
    # The id is what `tokens revoke` takes: never wrapped, so it can be copied whole.
    table.add_column("token id", no_wrap=True, min_width=TOKEN_ID_CHARS)
    for info in found:
        owner = info.account_id.hex if info.account_id else str(info.device_id or "")
        owner = owner or (info.operator_id or "")
        revoked = info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else ""
        created = info.created_at.isoformat(timespec="seconds")
        table.add_row(info.role.value, owner, info.label, created, revoked, info.token_id)
    console.print(table)


@tokens.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id, from `tokens list`")],
) -> None:
    """Revokes a token: every server process refuses it from the moment this returns (on
    PostgreSQL; on the embedded store a running server refuses it within seconds)."""
    container = bootstrap()
    try:
        revoked = container.tokens.revoke(token_id)
    except (TokenNotFound, TokenConfigured) as error:
        console.print(f"[red]{error}[/red]", markup=True, highlight=False)
        raise typer.Exit(2) from None
    finally:
        container.close()
    console.print(
        f"token {token_id} revoked" if revoked else f"token {token_id} was revoked already"
    )


@holds.command("expire")
def holds_expire() -> None:
    """Releases every pending hold past its expiry."""
    container = bootstrap()
    try:
        expired, refused = sweep_expired_holds(
            container.ledger, container.read_model, container.follower
        )
    finally:
        container.close()
    console.print(f"expired {expired} holds; {refused} refused")


@journeys.command("close-day")
def journeys_close_day(
    day: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The service day (04:00 to 04:00, Hanoi time); default: the last one ended",
        ),
    ] = None,
) -> None:
    """Charges every journey of an ended service day still open the maximum fare; closing a
    day again closes only journeys that arrived since."""
    container = bootstrap()
    try:
        closed_day, closed = container.close_ended_day(None if day is None else day.date())
    except DomainError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    finally:
        container.close()
    console.print(f"service day {closed_day}: closed {closed} journeys")


@journeys.command("reconcile")
def journeys_reconcile(
    account: Annotated[
        UUID | None, typer.Option(help="One account; default: every account")
    ] = None,
) -> None:
    """Checks that the ledger and the journeys agree: every transfer made under a journey's id
    is recorded by that journey, and every pending hold under one is its open hold. Exits 1
    listing each disagreement."""
    container = bootstrap()
    try:
        found = container.reconcile_journeys(account)
    finally:
        container.close()
    if not found:
        console.print("the ledger and the journeys agree")
        return
    table = Table("account", "journey", "mismatch", "transfer", "posted VND", "pending VND")
    for d in found[:RECONCILE_SHOWN_MAX]:
        table.add_row(
            d.account_id.hex,
            d.journey_id.hex,
            d.mismatch.value,
            d.transfer_id,
            str(d.posted_delta_vnd),
            str(d.pending_delta_vnd),
        )
    console.print(table)
    console.print(f"[red]{len(found)} disagreements[/red]")
    raise typer.Exit(1)


if __name__ == "__main__":
    app()
