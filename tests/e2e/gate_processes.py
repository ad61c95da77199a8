"""Metro gates and a card as processes of their own, for the PC/SC end-to-end tier.

Each gate is a `tapledger validator run --reader … --json` process on one of vpcd's two slots;
the card is a `tapledger card emulate --image …` process presented on one slot at a time. The
image file keeps the card's memory between emulator runs, so stopping the emulator on one slot
and starting it on the other carries the card from one gate's field to the next one's.

Every wait is for a condition (a JSON line the gate prints, a line the emulator logs), bounded
by a named timeout; every process is stopped with SIGTERM, then killed, whatever the test did.
Import this module only after `require_pyscard()`: it reaches pyscard through `hardware.pcsc`.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from hardware.emulator.vpcd_slot import VpcdSlot, VpcdSlotError
from hardware.pcsc import PcscReader
from tests.e2e.conftest import server_env, tapledger_command
from tests.e2e.metro_backend import CardFiles
from tests.services import in_ci, vpcd_address

# The two slots of vpcd: gate A reads the first, gate B the second.
SLOT_A, SLOT_B = 0, 1
# A gate starts (imports, syncs its config) and prints "validator running" within this.
GATE_START_S = 60.0
# From a card entering a gate's field to the gate's decision line, on a busy machine.
DECISION_WAIT_S = 30.0
# From a decision to the backend's verdict on that tap (the device uploads in the background).
VERDICT_WAIT_S = 30.0
# pcscd polls vpcd every 400 ms: a card that left is seen gone within a few polls.
SLOT_FREE_S = 5.0
# A torn card's emulator logs the tear at once; it stays out of the field for 1 s before it
# would come back, so the test stops it on that line, long before.
TEAR_LOGGED_S = 30.0
STOP_WAIT_S = 15.0
RUNNING = "validator running"
TORN = "torn from the field"


def vpcd_slots() -> tuple[VpcdSlot, VpcdSlot]:
    """vpcd's two slots, each free of any card; skipped on a laptop, a failure under CI."""
    host, first_port = vpcd_address()
    slots = (VpcdSlot(host, first_port, SLOT_A), VpcdSlot(host, first_port, SLOT_B))
    try:
        for slot in slots:
            if not PcscReader(slot.reader_name()).wait_for_removal(SLOT_FREE_S):
                raise VpcdSlotError(f"vpcd slot {slot.index} holds a card of someone else's")
    except VpcdSlotError as error:
        if in_ci():
            pytest.fail(f"{error}; under CI=true every tier must run", pytrace=False)
        pytest.skip(f"SKIPPED TIER: {error}")
    return slots


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_WAIT_S)


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """What a process prints on `stream`, read by a thread; None once the stream ends."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


@dataclass
class GateProcess:
    """A running gate: its decisions, and the backend's verdicts on its uploads, by seq."""

    name: str
    process: subprocess.Popen[str]
    stdout: queue.Queue[str | None]
    verdicts: dict[int, dict[str, Any]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def decision(self, wait_s: float = DECISION_WAIT_S) -> dict[str, Any]:
        """The gate's next decision (the verdicts printed meanwhile are kept)."""
        before = len(self.decisions)
        self._read_until(lambda: len(self.decisions) > before, wait_s, "a decision")
        return self.decisions[before]

    def verdict(self, seq: int, wait_s: float = VERDICT_WAIT_S) -> dict[str, Any]:
        """The backend's verdict on the tap this gate recorded as `seq`."""
        self._read_until(lambda: seq in self.verdicts, wait_s, f"the verdict on seq {seq}")
        return self.verdicts[seq]

    def _read_until(self, done: Any, wait_s: float, what: str) -> None:
        deadline = time.monotonic() + wait_s
        while not done():
            left_s = deadline - time.monotonic()
            try:
                line = self.stdout.get(timeout=max(left_s, 0.0))
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
    """What every gate process of a test is given: the backend, and the SAM's key file."""

    server_url: str
    sam_key_file: Path
    workdir: Path


@contextmanager
def gate_process(
    setup: GateSetup, validator_id: int, token_file: Path, slot: VpcdSlot
) -> Iterator[GateProcess]:
    """`validator run` for `validator_id` reading cards on `slot`, until the block ends."""
    name = f"{validator_id}@{slot.index}"
    command = [
        *tapledger_command(),
        *("validator", "run", "--server", setup.server_url),
        *("--validator-id", str(validator_id), "--token-file", str(token_file)),
        *("--state-dir", str(setup.workdir / f"gate-{validator_id}")),
        *("--reader", slot.reader_name(), "--sam-key-file", str(setup.sam_key_file), "--json"),
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env({"COLUMNS": "200"}),
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        _wait_for_line(_lines(process.stderr), RUNNING, GATE_START_S, f"gate {name}")
        yield GateProcess(name, process, _lines(process.stdout))
    finally:
        _stop(process)


def _wait_for_line(
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


@contextmanager
def card_on(card: CardFiles, slot: VpcdSlot, *, tear_after: int | None = None) -> Iterator[None]:
    """The card held in `slot`'s field until the block ends (then taken away)."""
    with _emulator(card, slot, tear_after) as (process, _):
        yield
        assert process.poll() is None, "the card emulator died while the card was presented"


@contextmanager
def card_torn_from(card: CardFiles, slot: VpcdSlot, *, tear_after: int) -> Iterator[None]:
    """The card presented on `slot`, torn from the field after `tear_after` APDUs, and kept
    away: the emulator is stopped as soon as it logs the tear, before it could come back."""
    with _emulator(card, slot, tear_after) as (process, stderr):
        _wait_for_line(stderr, TORN, TEAR_LOGGED_S, "the card emulator")
        _stop(process)
        yield


@contextmanager
def _emulator(
    card: CardFiles, slot: VpcdSlot, tear_after: int | None
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str | None]]]:
    command = [
        *tapledger_command(),
        *("card", "emulate", "--serial", card.serial.hex(), "--keys", str(card.keys)),
        *("--image", str(card.image), "--vpcd", f"{slot.host}:{slot.port}"),
    ]
    if tear_after is not None:
        command += ["--tear-after", str(tear_after)]
    with ExitStack() as stack:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Wide, so that rich keeps each log record on one line.
            env=server_env({"COLUMNS": "200"}),
        )
        stack.callback(_stop, process)
        assert process.stderr is not None
        yield process, _lines(process.stderr)
