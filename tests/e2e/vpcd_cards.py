"""vpcd's two readers, and an emulated card moved between them, for the PC/SC end-to-end tier.

The card is a `tapledger card emulate --image …` process presented on one slot at a time. The
image file keeps the card's memory between emulator runs, so stopping the emulator on one slot
and starting it on the other carries the card from one gate's field to the next one's.
Import this module only after `require_pyscard()`: it reaches pyscard through `hardware.pcsc`.
"""

from __future__ import annotations

import queue
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from hardware.emulator.vpcd_slot import VpcdSlot, VpcdSlotError
from hardware.pcsc import PcscReader
from tests.e2e.conftest import server_env, tapledger_command
from tests.e2e.gate_processes import WIDE, printed_lines, stop, wait_for_line
from tests.e2e.metro_backend import CardFiles
from tests.services import in_ci, vpcd_address

# The two slots of vpcd: gate A reads the first, gate B the second.
SLOT_A, SLOT_B = 0, 1
# pcscd polls vpcd every 400 ms: a card that left is seen gone within a few polls.
SLOT_FREE_S = 5.0
# A torn card's emulator logs the tear at once; it stays out of the field for 1 s before it
# would come back, so the test stops it on that line, long before.
TEAR_LOGGED_S = 30.0
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


@contextmanager
def card_on(card: CardFiles, slot: VpcdSlot) -> Iterator[None]:
    """The card held in `slot`'s field until the block ends (then taken away)."""
    with _emulator(card, slot, None) as (process, _):
        yield
        assert process.poll() is None, "the card emulator died while the card was presented"


@contextmanager
def card_torn_from(card: CardFiles, slot: VpcdSlot, *, tear_after: int) -> Iterator[None]:
    """The card presented on `slot`, torn from the field after `tear_after` APDUs, and kept
    away: the emulator is stopped as soon as it logs the tear, before it could come back."""
    with _emulator(card, slot, tear_after) as (process, stderr):
        wait_for_line(stderr, TORN, TEAR_LOGGED_S, "the card emulator")
        stop(process)
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
            env=server_env(WIDE),
        )
        stack.callback(stop, process)
        assert process.stderr is not None
        yield process, printed_lines(process.stderr)
