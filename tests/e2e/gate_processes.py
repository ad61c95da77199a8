"""Validators as processes of their own: `tapledger validator run --json` for one gate.

A gate reads cards on a PC/SC reader (`reader`), QR codes as lines on its stdin (`qr`), or both;
the test reads its JSON lines: a decision per tap and the backend's verdict on each upload. Every
wait is for a condition (a line the process prints), bounded by a named timeout; every process
is stopped with SIGTERM, then killed, whatever the test did.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.e2e.conftest import server_env, tapledger_command
from validators.device import OUTBOX_FILE
from validators.outbox import Outbox

# A gate starts (imports, syncs its config) and says it is running within this.
GATE_START_S = 60.0
# From a card entering a gate's field, or a code scanned, to the gate's decision line.
DECISION_WAIT_S = 30.0
# From a decision to the backend's verdict on that tap (the device uploads in the background).
VERDICT_WAIT_S = 30.0
STOP_WAIT_S = 15.0
RUNNING = "validator running"
# Wide, so that rich keeps each note and log record on one line.
WIDE = {"COLUMNS": "200"}


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within `STOP_WAIT_S`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_WAIT_S)


def printed_lines(stream: IO[str]) -> queue.Queue[str | None]:
    """What a process prints on `stream`, read by a thread; None once the stream ends."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for_line(
    lines: queue.Queue[str | None], wanted: str, wait_s: float, who: str
) -> list[str]:
    """Reads `lines` until one holds `wanted`; returns what was read, that line last."""
    deadline = time.monotonic() + wait_s
    read: list[str] = []
    while not read or wanted not in read[-1]:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            pytest.fail(f"{who} printed no {wanted!r} within {wait_s:g} s: {read}")
        if line is None:
            pytest.fail(f"{who} exited before printing {wanted!r}: {read}")
        read.append(line)
    return read


@dataclass
class GateProcess:
    """A running gate: its decisions, and the backend's verdicts on its uploads, by seq."""

    name: str
    process: subprocess.Popen[str]
    stdout: queue.Queue[str | None]
    verdicts: dict[int, dict[str, Any]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def show(self, code: str) -> dict[str, Any]:
        """A phone's code scanned at this gate (a line on its stdin); the gate's decision."""
        stdin = self.process.stdin
        assert stdin is not None, f"gate {self.name} reads no QR codes"
        stdin.write(code + "\n")
        stdin.flush()
        return self.decision()

    def decision(self, wait_s: float = DECISION_WAIT_S) -> dict[str, Any]:
        """The gate's next decision (the verdicts printed meanwhile are kept)."""
        before = len(self.decisions)
        self._read_until(lambda: len(self.decisions) > before, wait_s, "a decision")
        return self.decisions[before]

    def verdict(self, seq: int, wait_s: float = VERDICT_WAIT_S) -> dict[str, Any]:
        """The backend's verdict on the tap this gate recorded as `seq`."""
        self._read_until(lambda: seq in self.verdicts, wait_s, f"the verdict on seq {seq}")
        return self.verdicts[seq]

    def _read_until(self, done: Callable[[], bool], wait_s: float, what: str) -> None:
        deadline = time.monotonic() + wait_s
        while not done():
            try:
                line = self.stdout.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                pytest.fail(f"gate {self.name} printed no {what} within {wait_s:g} s")
            if line is None:
                pytest.fail(f"gate {self.name} exited ({self.process.poll()}) before {what}")
            printed = json.loads(line)
            if printed["type"] == "decision":
                self.decisions.append(printed)
            elif printed["type"] == "verdict":
                self.verdicts[printed["seq"]] = printed


@dataclass(frozen=True)
class GateSetup:
    """What every gate process of a test is given: the backend, the SAM's key file (for
    cards), and where the gates keep their state."""

    server_url: str
    sam_key_file: Path
    workdir: Path


@contextmanager
def gate_process(
    setup: GateSetup,
    validator_id: int,
    token_file: Path,
    *,
    reader: str | None = None,
    qr: bool = False,
) -> Iterator[GateProcess]:
    """`validator run` for `validator_id`, reading cards on `reader` and, with `qr`, codes on
    its stdin, until the block ends."""
    name = f"{validator_id}" + (f"@{reader}" if reader else "")
    command = [
        *tapledger_command(),
        *("validator", "run", "--server", setup.server_url),
        *("--validator-id", str(validator_id), "--token-file", str(token_file)),
        *("--state-dir", str(setup.workdir / f"gate-{validator_id}"), "--json"),
    ]
    if reader is not None:
        command += ["--reader", reader, "--sam-key-file", str(setup.sam_key_file)]
    if qr:
        command.append("--qr-stdin")
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if qr else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env(WIDE),
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        # With --json the notes go to stderr; "running" comes once the first sync is done.
        wait_for_line(printed_lines(process.stderr), RUNNING, GATE_START_S, f"gate {name}")
        yield GateProcess(name, process, printed_lines(process.stdout))
    finally:
        stop(process)


def taps_decided(setup: GateSetup, validator_id: int) -> int:
    """How many taps the gate recorded in its outbox (its last seq), read once it stopped."""
    outbox = Outbox(setup.workdir / f"gate-{validator_id}" / OUTBOX_FILE)
    try:
        return outbox.last_seq()
    finally:
        outbox.close()
