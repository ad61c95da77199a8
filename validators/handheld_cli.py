"""`tapledger validator run --kind parking-handheld`: the attendant's handheld from a terminal.

It reads the line protocol of `validators.handheld_protocol` on stdin until its end, queues each
start and end in the outbox and sends what is queued, oldest first, after each line. Every action
gets one line with the backend's verdict once it has one (and a `QUEUED` line before, when the
backend could not be reached); with `--json` each is one JSON object a line. At the end of the
input the queue is sent again, with a backoff, `--upload-attempts` times at most: exit 0 when every
action was answered, 3 when some wait in the outbox for the next run. While the attendant types
nothing, a thread sends what is queued every `RETRY_INTERVAL_S`, so a link that comes back
delivers the actions without waiting for the next line.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from rich.markup import escape

from validators.backend import BackendError, BackendRefused
from validators.handheld import Handheld, Replayed
from validators.handheld_outbox import HandheldOutbox, HandheldOutboxFull, StoredAction
from validators.handheld_printer import HandheldPrinter
from validators.handheld_protocol import (
    USAGE,
    BadLine,
    Check,
    End,
    Flush,
    Help,
    Scanned,
    Start,
    parse_line,
)
from validators.http_parking import HttpParkingBackend
from validators.uploader import BACKOFF_INITIAL_S, BACKOFF_MAX_S

HANDHELD_OUTBOX_FILE = "handheld.sqlite3"
EXIT_ACTIONS_PENDING = 3
# Replays in a row within one send: each answers up to a batch, so this bounds one line's work.
REPLAYS_PER_SEND_MAX = 20
# While no line comes, what is queued is sent again this often.
RETRY_INTERVAL_S = 15.0
RETRY_STOP_TIMEOUT_S = 10.0


class Terminal:
    """The handheld driven by lines: parses each, queues, sends, and prints what came of it."""

    def __init__(self, handheld: Handheld, printer: HandheldPrinter) -> None:
        self.handheld = handheld
        self._printer = printer
        self._scanned: str | None = None
        # One send at a time: the input's and the retry thread's never interleave their lines.
        self._sending = threading.Lock()

    def handle(self, line: str) -> None:
        try:
            command = parse_line(line)
        except BadLine as error:
            return self._printer.problem("line", error.code, str(error))
        if isinstance(command, Scanned):
            self._scanned = command.code
            self._printer.note("code scanned: `start <plate> <class> <hours>` to use it")
        elif isinstance(command, Help):
            self._printer.note(USAGE)
        elif isinstance(command, Flush):
            self.send()
        elif isinstance(command, Check):
            self._check(command.plate)
        elif isinstance(command, Start | End):
            self._queue(command)

    def send(self, just_queued: StoredAction | None = None) -> Replayed:
        """Replays the queue; says which actions stay queued, and why, when it stops short."""
        with self._sending:
            return self._send(just_queued)

    def keep_sending(self, stop: threading.Event, interval_s: float = RETRY_INTERVAL_S) -> None:
        """Sends what is queued every `interval_s` until `stop` is set."""
        while not stop.wait(interval_s):
            if self.handheld.outbox.pending_count():
                self.send()

    def _send(self, just_queued: StoredAction | None) -> Replayed:
        replayed = Replayed([], self.handheld.outbox.pending_count())
        for _ in range(REPLAYS_PER_SEND_MAX):
            replayed = self.handheld.replay()
            for verdict in replayed.verdicts:
                self._printer.verdict(verdict)
            if replayed.error is not None or not replayed.pending:
                break
        if replayed.error is None:
            return replayed
        if just_queued is not None and self._still_pending(just_queued):
            self._printer.queued(just_queued, replayed.error)
        if replayed.setup_refused:
            refused = escape(f"the backend refused this handheld: {replayed.error}")
            self._printer.note(f"[red]{refused}[/red]")
        return replayed

    def drain(self, attempts: int, sleep: Callable[[float], None] = time.sleep) -> Replayed:
        """Sends the queue until it is empty or `attempts` sends in a row found no backend."""
        replayed = self.send()
        failures = 1 if replayed.error is not None else 0
        while replayed.pending and failures < attempts and not replayed.setup_refused:
            ceiling = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (failures - 1))
            sleep(ceiling * (0.5 + random.random() / 2))  # noqa: S311 (a backoff's jitter)
            replayed = self.send()
            failures = failures + 1 if replayed.error is not None else 0
        return replayed

    def _queue(self, command: Start | End) -> None:
        try:
            if isinstance(command, End):
                action = self.handheld.end(command.plate)
            else:
                code = command.code or self._scanned
                if code is None:
                    message = "scan the rider's code (on the start line, or alone just before)"
                    return self._printer.problem("start", "code_missing", message)
                self._scanned = None  # a code pays for one start
                action = self.handheld.start(
                    command.plate, command.vehicle_class, command.minutes, code
                )
        except HandheldOutboxFull as error:
            return self._printer.problem(command.__class__.__name__.lower(), error.code, str(error))
        self.send(action)

    def _check(self, plate: str) -> None:
        # The queue goes first, so the answer counts the starts and ends typed before it.
        self.send()
        try:
            answer = self.handheld.check(plate)
        except BackendRefused as error:
            return self._printer.problem("check", error.problem_code, error.detail)
        except BackendError as error:
            return self._printer.check_failed(plate, error)
        self._printer.checked(plate, answer)

    def _still_pending(self, action: StoredAction) -> bool:
        stored = self.handheld.outbox.get(action.seq)
        return stored is not None and stored.verdict is None


def run_handheld(
    *,
    server: str,
    token: str,
    device_id: int,
    lot_id: str,
    state_dir: Path,
    printer: HandheldPrinter,
    attempts: int,
    lines: TextIO,
) -> int:
    """Runs the handheld over `lines` until their end; returns the exit code (0, or 3)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    outbox = HandheldOutbox(state_dir / HANDHELD_OUTBOX_FILE)
    backend = HttpParkingBackend(server, token)
    try:
        terminal = Terminal(Handheld(outbox, backend, device_id=device_id, lot_id=lot_id), printer)
        printer.note(f"handheld {device_id} at lot {lot_id}; {USAGE}; Ctrl-D to end")
        terminal.send()  # what an earlier run left queued goes first
        stop = threading.Event()
        retrying = threading.Thread(
            target=terminal.keep_sending, args=(stop,), name="handheld-retry", daemon=True
        )
        retrying.start()
        try:
            for line in lines:
                terminal.handle(line)
        except KeyboardInterrupt:
            printer.note("interrupted: what is queued stays in the outbox")
            attempts = 1
        finally:
            stop.set()
            retrying.join(RETRY_STOP_TIMEOUT_S)
        drained = terminal.drain(attempts)
        printer.note(
            f"{drained.pending} actions pending; last seq {outbox.last_seq()}"
            + (f"; last error: {drained.error}" if drained.pending and drained.error else "")
        )
        return EXIT_ACTIONS_PENDING if drained.pending else 0
    finally:
        backend.close()
        outbox.close()
