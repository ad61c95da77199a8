"""The validators' own command line: `validator run`, the validator software as a process (see
`validators.device`). The product mounts it as `tapledger validator`.

QR codes arrive as lines on stdin (a handheld scanner types the code and Enter); cards through a
PC/SC reader with `--reader` (which reader a name means: `validators.reader_choice`). Each
decision is printed with its reason once the tap is in the outbox, as text or, with `--json`, as
JSON Lines with the backend's verdict on every uploaded tap (`validators.tap_printer`). In the
background the device syncs its trust and uploads the outbox. `--once` handles the input there
is (stdin to its end, or one card), uploads what is pending, and exits with one of the codes
below (`EXIT_*`).

`--kind parking-handheld` runs an attendant's parking handheld instead (`validators.handheld_cli`):
starts and ends of parking sessions typed on stdin, queued in its own outbox and sent to
parking over HTTP with an operator token.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.markup import escape

from hardware.reader import CardReader, ReaderError
from hardware.sam import SamError, SoftwareSam
from hardware.vpcd_listen import READER_PREFIX, VpcdListenReader, parse_listen_address
from ticketing.fares.loader import HANOI_FEED_DIR, load_feed
from ticketing.shared.access import TOKEN_MAX_CHARS
from ticketing.taps.domain.validator import VALIDATOR_ID_MAX
from validators.bus_stop import StopFile, StopSource, no_stop
from validators.card_passes import card_passes
from validators.card_station import CARD_WAIT_S, CardStation
from validators.device import DRAIN_ATTEMPTS_MAX, Device, Drained
from validators.enrol_cli import ENROL_HELP, enrol
from validators.enrolment import DEVICE_TOKEN_FILE, enrolled_validator_id
from validators.handheld_cli import run_handheld
from validators.handheld_printer import HandheldPrinter
from validators.handheld_protocol import USAGE as HANDHELD_USAGE
from validators.http_backend import HttpBackend
from validators.reader_choice import ReaderNotChosen, choose_reader
from validators.sync import SYNC_INTERVAL_S_DEFAULT, SYNC_INTERVAL_S_MAX, SYNC_INTERVAL_S_MIN
from validators.tap_printer import TapPrinter

# The exit codes of `validator run`, as its help and docs/architecture.md list them.
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_TAPS_PENDING = 3
EXIT_NO_CARD = 4
# With --once and a reader: how long to wait for the one card, by default and at most.
ONCE_CARD_WAIT_S = 30
CARD_WAIT_S_MAX = 3600
# With --once, failed uploads in a row before giving up: about 5 s of backoff, then exit 3.
ONCE_UPLOAD_ATTEMPTS_DEFAULT = 4
LOOP_STOP_TIMEOUT_S = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The main thread wakes this often, so a signal's handler runs promptly.
SIGNAL_POLL_S = 0.5
# After a card failure nobody expected, the card thread waits this long (or for the stop) before
# it waits for the next card, so a reader that fails at once every time does not spin a core.
CARD_FAULT_PAUSE_S = 1.0

# A lot's id as parking writes it (parking.schemas.CATALOGUE_ID_REGEX, at most 64 characters).
LOT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class Kind(StrEnum):
    """What the device is: a tap validator (a bus validator or a metro gate, as the backend
    registered it), or a parking attendant's handheld."""

    TAP = "tap"
    PARKING_HANDHELD = "parking-handheld"


RUN_HELP = (
    "Decides taps offline, keeps them in a durable outbox, and uploads them until acknowledged."
    "\n\n"
    "--reader NAME: the PC/SC reader whose name contains NAME (any case; a name given in full"
    " wins). When NAME fits several readers, the first of them with a card on it at start is"
    " used; when none holds a card, the run stops (exit 2) listing their full names: name one,"
    ' e.g. --reader "Virtual PCD 00 00".'
    "\n\n"
    "--reader vpcd-listen:HOST:PORT: no PC/SC; the validator listens on HOST:PORT and a card"
    " emulator connects to it as it would to vpcd (`tapledger card emulate --vpcd HOST:PORT`);"
    " PORT 0 takes a free port, said on stderr."
    "\n\n"
    '--json: stdout is one JSON object a line (JSON Lines): a "decision" per tap, a'
    ' "verdict" per uploaded tap with the backend\'s answer (status accepted, refused,'
    ' duplicate or seq_conflict; reason; tap_id; seq and epoch), "no_card" and, with --once,'
    ' a closing "summary"; notes go to stderr.'
    "\n\n"
    "Exit codes with --once: 0 every tap acknowledged by the backend; 2 bad options or no"
    f" reader to use; {EXIT_TAPS_PENDING} taps still wait in the outbox (the next run sends"
    f" them); {EXIT_NO_CARD} --reader was given and no card came within --card-wait-s (when"
    f" taps also wait, {EXIT_TAPS_PENDING} wins)."
    "\n\n"
    "With --kind parking-handheld: an attendant's parking handheld at --lot-id, whose device id"
    " is --validator-id and whose --token-file holds an operator token. It reads one command a"
    f" line on stdin until its end: {HANDHELD_USAGE}. Each start and end is written to the"
    " outbox (in --state-dir) with the device's next seq, then sent as handheld-<device>-<seq>;"
    " when the backend cannot be reached it stays queued and is sent again, in order, after the"
    " next line, every 15 s, and at the end (--upload-attempts; exit 3 while some wait). --json"
    " prints one JSON line per action with the backend's verdict."
)

validator_app = typer.Typer(no_args_is_help=True, help="The software on a validator or a gate.")
validator_app.command("enrol", help=ENROL_HELP)(enrol)
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    # Reader names hold brackets ("[CL Reader]"): shown as they are, never read as markup.
    err.print(f"[red]{escape(message)}[/red]", soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _read_token(path: Path) -> str:
    try:
        token = path.read_text()[: TOKEN_MAX_CHARS + 2].strip()
    except OSError as error:
        raise _fail(f"--token-file: {error}") from None
    if not token or len(token) > TOKEN_MAX_CHARS:
        raise _fail(f"--token-file {path} does not hold one token of 1..{TOKEN_MAX_CHARS} chars")
    return token


def _open_reader(wanted: str) -> CardReader:
    if wanted.startswith(READER_PREFIX):
        return _listening_reader(wanted)
    from hardware.pcsc import PcscReader, list_readers  # pyscard is an optional extra

    try:
        return choose_reader(wanted, list_readers(), PcscReader)
    except ReaderNotChosen as error:
        raise _fail(str(error)) from None
    except ReaderError as error:  # no pcscd, or it failed while listing
        raise _fail(f"--reader: {error}") from None


def _listening_reader(wanted: str) -> CardReader:
    """`--reader vpcd-listen:HOST:PORT`: a reader that a card emulator connects to, as to vpcd
    (no pcscd needed; `hardware.vpcd_listen`). Its address is said on stderr, as PORT 0 means
    any free port."""
    try:
        reader = VpcdListenReader(*parse_listen_address(wanted))
    except (ValueError, ReaderError) as error:  # a bad address, or the port is taken
        raise _fail(f"--reader: {error}") from None
    err.print(f"card reader {escape(reader.name)}: a card emulator connects here", soft_wrap=True)
    return reader


def _on_error(what: str, error: Exception) -> None:
    code = getattr(error, "code", type(error).__name__)
    err.print(f"[yellow]{escape(f'{what} failed ({code}): {error}')}[/yellow]", soft_wrap=True)


def _on_stop_error(message: str) -> None:
    err.print(f"[yellow]{escape(message)}[/yellow]", soft_wrap=True)


def _read_qr_lines(
    device: Device, printer: TapPrinter, lines: TextIO, stop: threading.Event
) -> None:
    for line in lines:
        if stop.is_set():
            return
        if line.strip():
            printer.decision(device.gate.present_qr(line))
            device.wake.set()


def _serve_one_card(station: CardStation, printer: TapPrinter, wait_s: float) -> bool:
    """Serves the next card presented within `wait_s`; True when a decision was recorded.

    The station records every card failure as a refusal; what still raises here failed around
    it (the reader's wait, the outbox), and is reported rather than left to end the card thread.
    """
    try:
        decision = station.tap_once(wait_s)
    except Exception as error:  # the card thread must outlive any one card
        _on_error("card", error)
        raise _CardFault from error
    if decision is None:
        return False
    printer.decision(decision)
    return True


class _CardFault(Exception):
    """Serving one card failed outside the station's own handling (already reported)."""


def _serve_cards(
    station: CardStation, device: Device, printer: TapPrinter, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            if _serve_one_card(station, printer, CARD_WAIT_S):
                device.wake.set()
        except _CardFault:
            stop.wait(CARD_FAULT_PAUSE_S)


# Both default to what `validator enrol` kept in the state directory.
ValidatorIdOption = Annotated[
    int | None,
    typer.Option(min=1, max=VALIDATOR_ID_MAX, help="This device (default: as enrolled)"),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        help=f"A file holding this device's bearer token (default: {DEVICE_TOKEN_FILE} in"
        " --state-dir, where `validator enrol` keeps it)",
    ),
]


def _identity(
    state_dir: Path, validator_id: int | None, token_file: Path | None
) -> tuple[int, Path]:
    """The device's id and token file: as given, else as `validator enrol` kept them."""
    validator_id = validator_id or enrolled_validator_id(state_dir)
    if validator_id is None:
        raise _fail("--validator-id is needed: this --state-dir was never enrolled")
    return validator_id, token_file or state_dir / DEVICE_TOKEN_FILE


ReaderOption = Annotated[
    str | None,
    typer.Option(
        help="Validate cards on this PC/SC reader (its name or part of it), or on"
        " vpcd-listen:HOST:PORT (see above)"
    ),
]

UploadAttemptsOption = Annotated[
    int,
    typer.Option(
        min=1, max=DRAIN_ATTEMPTS_MAX, help="With --once or a handheld: failed sends before exit"
    ),
]
StopFileOption = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        help="A bus: the file where the driver's console or GPS unit keeps the stop the bus is"
        " at (a fare feed stop id, one line); each tap names it (default: the registered stop)",
    ),
]


@validator_app.command("run", help=RUN_HELP)
def run(
    server: Annotated[str, typer.Option(help="The backend's base URL, e.g. http://host:8000")],
    state_dir: Annotated[
        Path, typer.Option(file_okay=False, help="Outbox and synced trust, kept between runs")
    ],
    validator_id: ValidatorIdOption = None,
    token_file: TokenFileOption = None,
    reader: ReaderOption = None,
    sam_key_file: Annotated[
        Path | None, typer.Option(dir_okay=False, help="The SAM's plain key file (with --reader)")
    ] = None,
    qr_stdin: Annotated[bool, typer.Option(help="Read scanned QR codes as lines on stdin")] = False,
    once: Annotated[
        bool, typer.Option(help="Handle the input there is, upload, and exit (codes above)")
    ] = False,
    card_wait_s: Annotated[
        int,
        typer.Option(
            min=1,
            max=CARD_WAIT_S_MAX,
            help=f"With --once and --reader: seconds to wait for the card (exit {EXIT_NO_CARD})",
        ),
    ] = ONCE_CARD_WAIT_S,
    sync_interval_s: Annotated[
        int, typer.Option(min=SYNC_INTERVAL_S_MIN, max=SYNC_INTERVAL_S_MAX, help="Sync period")
    ] = SYNC_INTERVAL_S_DEFAULT,
    upload_attempts: UploadAttemptsOption = ONCE_UPLOAD_ATTEMPTS_DEFAULT,
    plain: Annotated[bool, typer.Option(help="No colours: one plain line per decision")] = False,
    kind: Annotated[Kind, typer.Option(help="tap, or parking-handheld (see above)")] = Kind.TAP,
    lot_id: Annotated[str | None, typer.Option(help="parking-handheld: its lot")] = None,
    json_lines: Annotated[
        bool,
        typer.Option(
            "--json", help="JSON Lines on stdout: decisions and the backend's verdicts (above)"
        ),
    ] = False,
    stop_file: StopFileOption = None,
) -> None:
    """Decides taps offline, keeps them in a durable outbox, and uploads them until acknowledged."""
    validator_id, token_file = _identity(state_dir, validator_id, token_file)
    if kind is Kind.PARKING_HANDHELD:
        _run_handheld(
            server, validator_id, token_file, state_dir, lot_id, json_lines, plain, upload_attempts
        )
        return
    _check_tap_inputs(qr_stdin=qr_stdin, reader=reader, sam_key_file=sam_key_file)
    backend = HttpBackend(server, _read_token(token_file))
    printer = TapPrinter(plain=plain, json_lines=json_lines)
    stop = no_stop if stop_file is None else StopFile(stop_file, on_error=_on_stop_error)
    device = _device(backend, state_dir, validator_id, sync_interval_s, printer, stop)
    try:
        station = None
        if reader is not None and sam_key_file is not None:
            station = _card_station(reader, sam_key_file, device)
        if not device.sync() and device.trust.keys is None:
            err.print("[yellow]never synced: QR codes are refused until keys arrive[/yellow]")
        if once:
            _run_once(
                device,
                station,
                printer,
                qr_stdin=qr_stdin,
                attempts=upload_attempts,
                card_wait_s=card_wait_s,
            )
        else:
            _run_until_signalled(device, station, printer, qr_stdin=qr_stdin)
    finally:
        device.close()
        backend.close()


def _check_tap_inputs(*, qr_stdin: bool, reader: str | None, sam_key_file: Path | None) -> None:
    if not qr_stdin and reader is None:
        raise _fail("nothing to read taps from: give --qr-stdin, --reader, or both")
    if reader is not None and sam_key_file is None:
        raise _fail("--reader needs --sam-key-file: a card session is opened with the SAM")


def _device(
    backend: HttpBackend,
    state_dir: Path,
    validator_id: int,
    sync_interval_s: int,
    printer: TapPrinter,
    stop: StopSource,
) -> Device:
    return Device(
        backend,
        state_dir,
        validator_id=validator_id,
        sync_interval_s=sync_interval_s,
        on_error=_on_error,
        on_answers=printer.verdicts,
        stop=stop,
    )


def _card_station(reader: str, sam_key_file: Path, device: Device) -> CardStation:
    try:
        sam = SoftwareSam.from_key_file(sam_key_file)
    except (OSError, SamError) as error:
        raise _fail(f"--sam-key-file {sam_key_file}: {error}") from None
    return CardStation(
        _open_reader(reader),
        sam,
        device.gate,
        clock=time.time,
        # The passes a card may hold, as the built-in fare feed defines them.
        passes=card_passes(load_feed(HANOI_FEED_DIR)),
        on_fault=_on_error,
    )


def _run_handheld(
    server: str,
    device_id: int,
    token_file: Path,
    state_dir: Path,
    lot_id: str | None,
    json_lines: bool,
    plain: bool,
    attempts: int,
) -> None:
    if lot_id is None or not LOT_ID_PATTERN.fullmatch(lot_id):
        raise _fail("--kind parking-handheld needs --lot-id: a lot's id (a-z, 0-9 and -)")
    code = run_handheld(
        server=server,
        token=_read_token(token_file),
        device_id=device_id,
        lot_id=lot_id,
        state_dir=state_dir,
        printer=HandheldPrinter(json_lines=json_lines, plain=plain),
        attempts=attempts,
        lines=sys.stdin,
    )
    if code:
        raise typer.Exit(code)


def _run_once(
    device: Device,
    station: CardStation | None,
    printer: TapPrinter,
    *,
    qr_stdin: bool,
    attempts: int,
    card_wait_s: float = ONCE_CARD_WAIT_S,
) -> None:
    never = threading.Event()
    if qr_stdin:
        _read_qr_lines(device, printer, sys.stdin, never)
    no_card = False
    if station is not None:
        with contextlib.suppress(_CardFault):  # reported; the taps there are still uploaded
            no_card = not _serve_one_card(station, printer, card_wait_s)
        if no_card:
            printer.no_card(card_wait_s)
    drained = device.drain(attempts_max=attempts)
    code = once_exit_code(drained, no_card=no_card)
    last_seq = device.outbox.last_seq()
    printer.summary(
        {
            "uploaded": drained.acknowledged,
            "pending": drained.pending,
            "held": drained.held,
            "last_seq": last_seq,
            "exit_code": code,
        },
        f"uploaded {drained.acknowledged} taps; {drained.pending} pending; last seq {last_seq}"
        + (f"; {drained.held} held until the validator is enrolled again" if drained.held else ""),
    )
    if code != EXIT_OK:
        raise typer.Exit(code)


def once_exit_code(drained: Drained, *, no_card: bool) -> int:
    """A `--once` run's exit code: taps left undelivered first, then a card that never came."""
    # Held taps are still in the outbox: the run has not delivered them.
    if drained.pending or drained.held:
        return EXIT_TAPS_PENDING
    if no_card:
        return EXIT_NO_CARD
    return EXIT_OK


def _run_until_signalled(
    device: Device, station: CardStation | None, printer: TapPrinter, *, qr_stdin: bool
) -> None:
    stop = threading.Event()

    def request_stop(_signal_number: int, _frame: FrameType | None) -> None:
        stop.set()
        device.wake.set()

    previous = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    workers = [threading.Thread(target=device.run, args=(stop,), name="sync-upload", daemon=True)]
    if station is not None:
        workers.append(
            threading.Thread(
                target=_serve_cards,
                args=(station, device, printer, stop),
                name="cards",
                daemon=True,
            )
        )
    if qr_stdin:
        # The scanner's thread is a daemon: a blocked read of stdin must not hold up the exit.
        workers.append(
            threading.Thread(
                target=_read_qr_lines,
                args=(device, printer, sys.stdin, stop),
                name="qr",
                daemon=True,
            )
        )
    printer.note("validator running; Ctrl-C to stop")
    try:
        for worker in workers:
            worker.start()
        while not stop.wait(SIGNAL_POLL_S):
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        workers[0].join(LOOP_STOP_TIMEOUT_S)
