"""`tapledger rider`: a rider's phone in a terminal, for demos, field tests and support."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tapledger.rider.api import RiderApi, RiderApiError
from tapledger.rider.errors import WalletError
from tapledger.rider.keystore import DeviceKeyStore
from tapledger.rider.wallet import STATEMENT_LINES_MAX, Wallet
from ticketing.tl1.qr_image import render_terminal

DEFAULT_HOME = Path("var/rider")
TOKEN_ENV_VAR = "TAPLEDGER_RIDER_TOKEN"  # noqa: S105 (the variable's name, not a secret)
SHOW_COUNT_DEFAULT = 10
SHOW_COUNT_MAX = 1000
SHOW_INTERVAL_S_DEFAULT = 30.0
SHOW_INTERVAL_S_MIN = 1.0
# Validators refuse a code generated more than 60 s ago (spec/QR.md, step 10); a screen refreshed
# more slowly would show a code that goes stale before the next one appears.
SHOW_INTERVAL_S_MAX = 50.0
STATUS_LINES_DEFAULT = 10
API_SCHEMES = ("http", "https")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
EXIT_FAILED = 1

rider_app = typer.Typer(
    no_args_is_help=True, help="A rider's phone: a device key, a virtual card, QR codes to show."
)
out = Console()
err = Console(stderr=True)

HomeOption = Annotated[
    Path,
    typer.Option(
        "--home", file_okay=False, help="Where the device key and the wallet state are kept"
    ),
]


@rider_app.command()
def register(
    api: Annotated[
        str | None, typer.Option(help="The API's base URL; remembered after the first time")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV_VAR,
            help="The rider's API token; prefer the environment variable, since options show "
            "in the process list",
        ),
    ] = None,
    home: HomeOption = DEFAULT_HOME,
) -> None:
    """Makes this device's P-256 key (once) and gets a virtual card certificate for it.

    Stores the API URL and the token in HOME/wallet.json (mode 0600): later commands need neither.

    The private key stays in HOME/device-key.pem (mode 0600) and is never sent anywhere.
    """
    with _reported():
        store = DeviceKeyStore(home)
        state = store.load_state()
        api_url = (api or state.api_url).rstrip("/")
        secret = token or state.token.get_secret_value()
        if not api_url or not secret:
            raise WalletError(
                "missing_credentials", f"give --api and --token (or {TOKEN_ENV_VAR}) the first time"
            )
        _check_api_url(api_url)
        with RiderApi(api_url, secret) as client:
            wallet = Wallet(store, client)
            # Asked first so that a wrong token is refused before it is stored.
            principal = client.me()
            if principal.account_id is None:
                raise WalletError("not_a_rider_token", "the token is not a rider's token")
            if wallet.state.account_id not in (None, principal.account_id):
                wallet.forget_card()
            try:
                wallet.state.api_url = api_url
                wallet.state.token = SecretStr(secret)
            except ValidationError:
                raise WalletError("bad_credentials", "the API URL or token is too long") from None
            issued = wallet.register()
            store.save_state(wallet.state)
        verb = "registered" if issued else "already registered:"
        out.print(f"{verb} virtual card {wallet.state.card_id}")
        out.print(f"certificate valid for {_hours(wallet.seconds_left())}")
        out.print(f"device key and state in {home} (the token is stored there too, mode 0600)")


@rider_app.command()
def code(
    home: HomeOption = DEFAULT_HOME,
    text_only: Annotated[bool, typer.Option(help="Print the code's text without the QR")] = False,
) -> None:
    """Prints one fresh code: its TL1 text and, unless --text-only, the QR to scan."""
    with _reported(), _wallet(home) as wallet:
        _renew_if_due(wallet)
        text = wallet.code()
    typer.echo(text)
    if not text_only:
        _echo_qr(text)


@rider_app.command()
def show(
    home: HomeOption = DEFAULT_HOME,
    count: Annotated[
        int, typer.Option(min=1, max=SHOW_COUNT_MAX, help="How many codes to show")
    ] = SHOW_COUNT_DEFAULT,
    interval_s: Annotated[
        float,
        typer.Option(
            min=SHOW_INTERVAL_S_MIN, max=SHOW_INTERVAL_S_MAX, help="Seconds between codes"
        ),
    ] = SHOW_INTERVAL_S_DEFAULT,
) -> None:
    """Shows a fresh code every INTERVAL-S seconds, COUNT times; Ctrl-C stops.

    Renews the certificate when it is due, as the phone app does.
    """
    with _reported(), _wallet(home) as wallet:
        try:
            for index in range(count):
                if index:
                    time.sleep(interval_s)
                _renew_if_due(wallet)
                text = wallet.code()
                out.clear()
                _echo_qr(text)
                typer.echo(text)
                typer.echo(f"code {index + 1} of {count} for card {wallet.state.card_id}")
        except KeyboardInterrupt:
            typer.echo("stopped")


@rider_app.command()
def status(
    home: HomeOption = DEFAULT_HOME,
    lines: Annotated[
        int, typer.Option(min=1, max=STATEMENT_LINES_MAX, help="How many recent lines")
    ] = STATUS_LINES_DEFAULT,
) -> None:
    """The balance and recent activity of the rider's account."""
    with _reported(), _wallet(home) as wallet:
        result = wallet.status(lines)
    account = result.account
    balance = Table(title=f"account {account.id} ({account.status})")
    balance.add_column("available VND", justify="right", no_wrap=True)
    balance.add_column("posted VND", justify="right", no_wrap=True)
    balance.add_column("on hold VND", justify="right", no_wrap=True)
    balance.add_row(
        f"{account.available_vnd:,}", f"{account.posted_vnd:,}", f"{account.pending_vnd:,}"
    )
    out.print(balance)
    if not result.lines:
        out.print("no activity yet")
        return
    activity = Table(title="recent activity")
    activity.add_column("when", no_wrap=True)
    activity.add_column("what")
    activity.add_column("amount VND", justify="right", no_wrap=True)
    activity.add_column("available after", justify="right", no_wrap=True)
    for line in result.lines:
        activity.add_row(
            line.at.astimezone().strftime("%Y-%m-%d %H:%M"),
            escape(line.description or line.kind),
            f"{line.posted_delta_vnd:+,}",
            f"{line.available_after_vnd:,}",
        )
    out.print(activity)


@contextmanager
def _wallet(home: Path) -> Iterator[Wallet]:
    store = DeviceKeyStore(home)
    state = store.load_state()
    token = state.token.get_secret_value()
    if not state.api_url or not token:
        raise WalletError("not_registered", "run `tapledger rider register` first")
    with RiderApi(state.api_url, token) as client:
        yield Wallet(store, client)


@contextmanager
def _reported() -> Iterator[None]:
    """Turns the wallet's and the API's typed errors into a message and exit status 1."""
    try:
        yield
    except (WalletError, RiderApiError) as error:
        _fail(error.code, error.detail)


def _fail(code: str, detail: str) -> NoReturn:
    err.print(f"[red]{escape(code)}[/red]: {escape(detail)}")
    raise typer.Exit(EXIT_FAILED)


def _renew_if_due(wallet: Wallet) -> None:
    # Codes are made offline, so a failed renewal only warns while the certificate still lives.
    try:
        wallet.renew_if_due()
    except RiderApiError as error:
        left_s = wallet.seconds_left()
        if left_s <= 0:
            _fail(error.code, f"the certificate has expired and renewing failed: {error.detail}")
        err.print(
            f"[yellow]could not renew the certificate ({escape(error.code)}); "
            f"it is valid for {_hours(left_s)}[/yellow]"
        )


def _echo_qr(text: str) -> None:
    # The QR sets its own colours (dark on light): kept even when writing to a pipe or a file,
    # since a symbol drawn in the reader's theme colours may come out inverted.
    typer.echo(render_terminal(text), color=True)


def _check_api_url(api_url: str) -> None:
    try:
        url = httpx.URL(api_url)
    except httpx.InvalidURL:
        raise WalletError("bad_api_url", "the API URL cannot be parsed") from None
    if url.scheme not in API_SCHEMES or not url.host:
        raise WalletError("bad_api_url", "the API URL must be http(s)://host[:port]")
    if url.scheme == "http" and url.host not in LOOPBACK_HOSTS:
        err.print("[yellow]the token will travel unencrypted over plain http[/yellow]")


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f} h"
