"""Staff's side of a device's life on the command line, beside the device's own commands under
`tapledger validator`: an enrolment code for a registered validator, and revocation. Like
`tapledger tokens`, they act on the store the settings name (the HTTP API does the same:
`POST /v1/validators/{id}/enrolment-codes`, `POST /v1/validators/{id}/revoke`).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tapledger.bootstrap import bootstrap
from ticketing.shared.domain.errors import DomainError
from ticketing.taps.domain.validator import VALIDATOR_ID_MAX

ValidatorIdArgument = Annotated[
    int, typer.Argument(min=1, max=VALIDATOR_ID_MAX, help="The registered validator's id")
]
console = Console(highlight=False)


def enrolment_code(validator_id: ValidatorIdArgument) -> None:
    """Makes a one-time enrolment code for a registered validator and prints it once: the
    device exchanges it with `tapledger validator enrol --code` before it expires."""
    container = bootstrap()
    try:
        code, issued = container.taps.issue_enrolment_code(validator_id)
    except DomainError as error:
        console.print(f"[red]{error}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        container.close()
    typer.echo(code)
    console.print(
        f"for validator {validator_id}; expires {issued.expires_at.isoformat(timespec='seconds')}",
        style="dim",
        soft_wrap=True,
    )


def revoke(validator_id: ValidatorIdArgument) -> None:
    """Revokes a validator: its tokens stop working (every server process at once on
    PostgreSQL; on the embedded store a running server refuses them within seconds) and its
    uploads are refused and recorded. A new enrolment code lets a device back in its place."""
    container = bootstrap()
    try:
        container.taps.revoke_validator(validator_id)
        tokens = container.tokens.revoke_device_tokens(validator_id)
    except DomainError as error:
        console.print(f"[red]{error}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        container.close()
    console.print(f"validator {validator_id} revoked; {tokens} valid tokens revoked")


def add_staff_commands(validator_app: typer.Typer) -> None:
    """Adds staff's commands to the device's `validator` group."""
    validator_app.command("enrolment-code")(enrolment_code)
    validator_app.command("revoke")(revoke)
