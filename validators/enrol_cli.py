"""`validator enrol`: the device's side of enrolment (`validators.enrolment`), as a command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ticketing.taps.domain.enrolment_code import CODE_INPUT_MAX_CHARS
from validators.backend import BackendError, BackendRefused
from validators.enrolment import DEVICE_TOKEN_FILE, StateOfAnotherValidator, enrol_device

EXIT_REFUSED = 2
EXIT_UNAVAILABLE = 3

ENROL_HELP = (
    "Exchanges a one-time enrolment code from staff for this device's own token, once. The"
    f" token is kept in --state-dir ({DEVICE_TOKEN_FILE}, readable by this user only), where"
    " `validator run --state-dir` reads it, with the validator's id and epoch; nothing is"
    " copied by hand. Exit 2 when the code is refused (used, expired, unknown), 3 when the"
    " backend cannot be reached."
)


def enrol(
    server: Annotated[str, typer.Option("--server", "--backend", help="The backend's base URL")],
    code: Annotated[str, typer.Option(help="The one-time enrolment code staff gave")],
    state_dir: Annotated[
        Path, typer.Option(file_okay=False, help="Where `validator run` keeps its state")
    ],
) -> None:
    err = Console(stderr=True, highlight=False)
    if not 0 < len(code) <= CODE_INPUT_MAX_CHARS:
        err.print(f"--code must be 1..{CODE_INPUT_MAX_CHARS} characters")
        raise typer.Exit(EXIT_REFUSED)
    try:
        enrolled = enrol_device(server, code, state_dir)
    except StateOfAnotherValidator as error:
        err.print(f"[red]{error}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED) from None
    except BackendRefused as error:
        err.print(f"[red]enrolment refused: {error}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED) from None
    except BackendError as error:
        err.print(f"[yellow]backend unavailable: {error}[/yellow]", soft_wrap=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    Console(highlight=False).print(
        f"enrolled as validator {enrolled.validator_id} in epoch {enrolled.epoch}; token in"
        f" {enrolled.token_file}",
        soft_wrap=True,
    )
