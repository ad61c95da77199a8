"""`tapledger card`: an emulated TLC1 card, presented to pcscd through vsmartcard's vpcd, and
the sealing of a SAM key file for `TAPLEDGER_SAM_KEY_FILE`."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from hardware.emulator.card import EmulatedCard
from hardware.emulator.image import CardImageError, ImageFile
from hardware.emulator.key_file import KeyFileError, master_keys_from_json
from hardware.emulator.vpcd import DEFAULT_HOST, DEFAULT_PORT, VpcdLink, parse_address
from hardware.sam import SamError, parse_key_file, read_key_file, seal_key_file
from hardware.tlc1.constants import SERIAL_BYTES
from tapledger.settings import Settings

DEFAULT_IMAGE_DIR = Path("var/cards")
EXIT_BAD_INPUT = 2
OWNER_ONLY = 0o600
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

card_app = typer.Typer(
    no_args_is_help=True, help="Emulated TLC1 transit cards (spec/CARD.md), and SAM key files."
)
out = Console()
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/red]")
    return typer.Exit(EXIT_BAD_INPUT)


@card_app.command()
def emulate(
    serial: Annotated[str, typer.Option(help="The card's serial: 16 hex characters")],
    keys: Annotated[
        Path,
        typer.Option(dir_okay=False, help='Master keys: {"1": hex32, "2": hex32, "3": hex32}'),
    ],
    image: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="The card's memory, kept between runs; created blank if absent "
            "(default var/cards/SERIAL.json)",
        ),
    ] = None,
    vpcd: Annotated[str, typer.Option(help="Where vpcd listens, HOST:PORT")] = (
        f"{DEFAULT_HOST}:{DEFAULT_PORT}"
    ),
    tear_after: Annotated[
        int | None,
        typer.Option(min=0, help="Tear the card from the field after N APDUs of each power-up"),
    ] = None,
) -> None:
    """Presents one card to pcscd's vpcd reader until Ctrl-C or SIGTERM."""
    try:
        serial_bytes = bytes.fromhex(serial)
    except ValueError:
        serial_bytes = b""
    if len(serial_bytes) != SERIAL_BYTES:
        raise _fail(f"--serial {serial!r} is not {2 * SERIAL_BYTES} hex characters")
    try:
        host, port = parse_address(vpcd)
        master_keys = master_keys_from_json(keys.read_text())
        image_file = ImageFile(image or DEFAULT_IMAGE_DIR / f"{serial_bytes.hex()}.json")
        card_image = image_file.load_or_create(serial_bytes)
    except (OSError, KeyFileError, CardImageError, ValueError) as error:
        raise _fail(str(error)) from None
    card = EmulatedCard.from_master_keys(
        master_keys, serial_bytes, image=card_image, store=image_file, tear_after=tear_after
    )
    tearing = f" · torn after {tear_after} APDUs" if tear_after is not None else ""
    out.print(
        f"card {serial_bytes.hex()} · purse {card_image.purse_vnd:,} VND · "
        f"{card_image.transaction_counter:,} sessions left · {image_file.path} · "
        f"vpcd {host}:{port}{tearing} · Ctrl-C to stop",
        soft_wrap=True,  # one line, however narrow the terminal
    )
    emulator_log = logging.getLogger("hardware.emulator")
    emulator_log.setLevel(logging.INFO)
    emulator_log.addHandler(RichHandler(console=err, show_path=False))
    _run_until_signalled(VpcdLink(card, host=host, port=port))


def _run_until_signalled(link: VpcdLink) -> None:
    stop = threading.Event()

    def request_stop(_signal_number: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    try:
        link.run(stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@card_app.command("seal-keys")
def seal_keys(
    plain: Annotated[Path, typer.Argument(dir_okay=False, help="A plain JSON SAM key file")],
    sealed: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write it sealed")],
) -> None:
    """Seals a SAM key file with TAPLEDGER_KEY_ENCRYPTION_KEY, for TAPLEDGER_SAM_KEY_FILE."""
    try:
        content = read_key_file(plain)
        parse_key_file(content)  # only a usable key file is worth sealing
    except (OSError, SamError) as error:
        raise _fail(f"{plain}: {error}") from None
    kek = Settings().key_encryption_key_bytes
    try:
        # Owner-only from the first byte, and never over an existing file.
        descriptor = os.open(sealed, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except OSError as error:
        raise _fail(f"{sealed}: {error} (a sealed key file is never overwritten)") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(seal_key_file(content, kek=kek) + b"\n")
    out.print(f"sealed {plain} into {sealed}", markup=False)
