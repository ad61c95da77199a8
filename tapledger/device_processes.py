"""Validator software run as processes of its own (`tapledger validator enrol` / `run`), driven
through its command line the way an integrator's supervisor would: codes written on stdin, the
JSON Lines of `--json` read back (decisions, the backend's verdicts), notes read from stderr.

Every wait here is for something the process prints, bounded by a named timeout; `DeviceFleet`
stops every process it started (SIGTERM, a bounded wait, then SIGKILL) however its block ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, TypeVar

# `tapledger validator`, in a process of the same interpreter and code: the device's own command
# group (`validators.cli`), which `tapledger` mounts as `validator`, started without the backend's
# imports, as a device image would run it (0.5 s to start instead of 2.5 s on a loaded laptop).
TAPLEDGER_VALIDATOR = (
    sys.executable,
    "-c",
    "from validators.cli import validator_app; validator_app(prog_name='tapledger validator')",
)
ENROL_TIMEOUT_S = 60.0
# From start to the first sync done; a cold interpreter on a loaded machine takes a few seconds.
DEVICE_START_TIMEOUT_S = 60.0
DECISION_TIMEOUT_S = 15.0
VERDICT_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0
# `validator run` says this on stderr once it has synced and reads its inputs.
RUNNING_NOTE = "validator running"
# Lines kept per stream, so a chatty device cannot grow the demo without bound.
LINES_KEPT_MAX = 10_000

T = TypeVar("T")


class DeviceFailed(Exception):
    """A device process did not do what the scene waited for, in time."""

    code = "device_failed"


class _Lines:
    """The lines one stream of a process printed, read in a thread; waits are on conditions."""

    def __init__(self, stream: IO[str], parse: Callable[[str], Any]) -> None:
        self.items: list[Any] = []
        self.ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream, parse), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str], parse: Callable[[str], Any]) -> None:
        for line in stream:
            with self._changed:
                if len(self.items) < LINES_KEPT_MAX:
                    self.items.append(parse(line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_for(self, found: Callable[[list[Any]], T | None], timeout_s: float) -> T | None:
        """`found(items)` once it is not None; None when the stream ended or time ran out."""
        result: T | None = None

        def ready() -> bool:
            nonlocal result
            result = found(self.items)
            return result is not None or self.ended

        with self._changed:
            self._changed.wait_for(ready, timeout_s)
        return result


def _json_or_text(line: str) -> dict[str, Any]:
    try:
        body = json.loads(line)
    except ValueError:
        return {"type": "text", "text": line}
    return body if isinstance(body, dict) else {"type": "text", "text": line}


class DeviceProcess:
    """One `validator run --json` process; `name` is how the scene speaks of it."""

    def __init__(self, name: str, command: Sequence[str]) -> None:
        self.name = name
        # The command is this module's own (`TAPLEDGER_VALIDATOR` and its options), never input.
        self.process = subprocess.Popen(  # noqa: S603
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._out = _Lines(self.process.stdout, _json_or_text)
        self._err = _Lines(self.process.stderr, str)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [item for item in list(self._out.items) if item.get("type") == kind]

    def notes(self) -> list[str]:
        return list(self._err.items)

    def wait_running(self) -> None:
        self.wait_note(RUNNING_NOTE, DEVICE_START_TIMEOUT_S)

    def wait_note(self, text: str, timeout_s: float) -> str:
        """The first stderr line holding `text` (a note, or a warning such as "upload failed")."""
        return self.wait_notes(text, 1, timeout_s)

    def wait_notes(self, text: str, count: int, timeout_s: float) -> str:
        """The `count`-th stderr line holding `text`, once it is there."""
        line: str | None = self._err.wait_for(
            lambda lines: next(iter([n for n in lines if text in n][count - 1 :]), None),
            timeout_s,
        )
        if line is None:
            raise self._failed(f"never said {text!r} {count} times")
        return line

    def present_code(self, code: str) -> dict[str, Any]:
        """Scans one QR code (a line on stdin); returns the gate's decision on it."""
        before = len(self.of_type("decision"))
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(code + "\n")
            self.process.stdin.flush()
        except OSError as error:
            raise self._failed(f"took no code ({error})") from None
        return self.wait_decision(before)

    def wait_decision(self, before: int) -> dict[str, Any]:
        """The decision after the first `before` ones, once it is printed."""
        decision: dict[str, Any] | None = self._out.wait_for(
            lambda items: next(
                iter([i for i in items if i.get("type") == "decision"][before:]), None
            ),
            DECISION_TIMEOUT_S,
        )
        if decision is None:
            raise self._failed("printed no decision")
        return decision

    def wait_verdicts(self, seqs: set[int]) -> list[dict[str, Any]]:
        """The backend's verdicts on the taps `seqs`, once every one of them is printed."""

        def all_there(items: list[Any]) -> list[dict[str, Any]] | None:
            verdicts = [i for i in items if i.get("type") == "verdict" and i.get("seq") in seqs]
            return verdicts if {v["seq"] for v in verdicts} >= seqs else None

        verdicts = self._out.wait_for(all_there, VERDICT_TIMEOUT_S)
        if verdicts is None:
            raise self._failed(f"printed no verdict on taps {sorted(seqs)}")
        return verdicts

    def stop(self, *, signalled: bool = False) -> int:
        """SIGTERM (unless `signalled` already), a bounded wait, then SIGKILL; returns the exit
        code. One SIGTERM only: a second one, while the device winds down, would find the
        default handler back in place and end it before its outbox is closed."""
        if self.process.poll() is None:
            if not signalled:
                self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(KILL_TIMEOUT_S)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode

    def _failed(self, what: str) -> DeviceFailed:
        code = self.process.poll()
        state = "running" if code is None else f"exited with {code}"
        tail = "\n".join(self.notes()[-5:])
        return DeviceFailed(f"{self.name} {what} ({state}); its last notes:\n{tail}")


def enrol_devices(server_url: str, codes: dict[Path, str]) -> None:
    """Runs `tapledger validator enrol` for each state directory and its code, side by side."""
    running = [
        (
            state_dir,
            subprocess.Popen(  # noqa: S603 (our own command, as above)
                [
                    *TAPLEDGER_VALIDATOR,
                    *("enrol", "--server", server_url, "--code", code),
                    *("--state-dir", str(state_dir)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for state_dir, code in codes.items()
    ]
    failures = []
    for state_dir, process in running:
        try:
            output, _ = process.communicate(timeout=ENROL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate(timeout=KILL_TIMEOUT_S)
        if process.returncode != 0:
            failures.append(f"{state_dir.name}: exit {process.returncode}: {output.strip()}")
    if failures:
        raise DeviceFailed("enrolment failed: " + "; ".join(failures))


class DeviceFleet:
    """The device processes of a scene; leaving the block stops every one of them."""

    def __init__(self) -> None:
        self.devices: list[DeviceProcess] = []
        self.exit_codes: dict[str, int] = {}

    def start(self, name: str, server_url: str, state_dir: Path, *extra: str) -> DeviceProcess:
        command = [
            *TAPLEDGER_VALIDATOR,
            *("run", "--server", server_url, "--state-dir", str(state_dir)),
            *("--qr-stdin", "--json", *extra),
        ]
        device = DeviceProcess(name, command)
        self.devices.append(device)
        return device

    def stop_all(self) -> None:
        # SIGTERM to each first, so they stop side by side rather than one after another.
        for device in self.devices:
            if device.process.poll() is None:
                device.process.terminate()
        for device in self.devices:
            self.exit_codes[device.name] = device.stop(signalled=True)
        self.devices = []

    def __enter__(self) -> DeviceFleet:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop_all()


@contextmanager
def unwinding_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM to this process raises `SystemExit` rather than ending it at
    once, so the blocks around it run their exits and stop the devices they started (a device
    process outlives its parent otherwise). Only the main thread can set a handler; elsewhere
    the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(number: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + number)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
