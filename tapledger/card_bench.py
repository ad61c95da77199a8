"""An emulated TLC1 card behind pcscd's vpcd driver, and the card-path benchmark that uses it.

    python -m tapledger.card_bench [--seconds N] [--vpcd HOST:PORT] [--slot N]  # JSON on stdout

The path measured is the product's: `Terminal` → `PcscReader` → pyscard → pcscd → vpcd → TCP →
`VpcdLink` → `EmulatedCard`. `loadtests/bench_card.py` runs this module as a program and writes
the figures into docs/benchmarks.md. It cannot import it: the import contract keeps `loadtests`
away from `hardware` and `validators`, indirect imports included, and this module needs both.

vpcd's slots: pcscd's vpcd driver listens on one TCP port per slot, the first slot's port plus
the slot's index, and names the reader of slot i "Virtual PCD 00 0i". A caller names the first
slot's address (as `tapledger card emulate --vpcd` does) and the index of the slot to use.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from uuid import UUID

from rich.console import Console

from hardware.emulator.card import EmulatedCard
from hardware.emulator.image import CardImage
from hardware.emulator.vpcd import (
    ABSENT_S_DEFAULT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    VpcdLink,
    parse_address,
)
from hardware.invariants import require
from hardware.pcsc import PcscReader, list_readers
from hardware.reader import SW_BYTES, CardReader, ReaderError
from hardware.sam import SoftwareSam
from hardware.tlc1.commands import ReadRecord
from hardware.tlc1.constants import COUNTER_BYTES, KeyLevel, Sfi, Sw
from hardware.tlc1.crypto import KEY_BYTES
from hardware.tlc1.records import Environment, EventKind
from hardware.tlc1.terminal import Terminal
from validators.card_desk import CardDesk
from validators.card_validation import PASSBACK_WINDOW_S, CardValidator, Outcome, TapPoint

VPCD_READER_NAME = "Virtual PCD"
# Slot 0 is the one `tapledger card emulate` and a developer use by default; stay off it.
BENCH_SLOT = 1
# pcscd polls vpcd for a card every 400 ms; these allow several polls and a slow CI machine.
SLOT_FREE_TIMEOUT_S = 3.0
CARD_SEEN_TIMEOUT_S = 5.0
LINK_STOP_TIMEOUT_S = 5.0

SECONDS_DEFAULT = 10.0
SECONDS_MIN = 1.0
SECONDS_MAX = 600.0
# --seconds is shared out: validations with the card connected, whole taps, lone APDUs.
VALIDATION_SHARE, TAP_SHARE, APDU_SHARE = 0.6, 0.2, 0.2
WARMUP_VALIDATIONS = 20
SAMPLES_MIN = 10
PERCENTILES = 100
PERCENTILE_P50, PERCENTILE_P99 = 50, 99
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
FIGURES_FORMAT = 1

BENCH_SERIAL = bytes.fromhex("00000000be4c0001")
BENCH_ACCOUNT = UUID("5e1f0c2a-7b3d-4c8e-9f10-b2a4c6d8e0f1")
NETWORK_ID = 1
NOW = 1_800_000_000
BUS = TapPoint(
    network_id=NETWORK_ID, location=32, validator=77, kind=EventKind.BUS_BOARDING, fare_vnd=8_000
)
# Each validation is dated one passback window after the last, so none is refused as a passback.
TAP_INTERVAL_S = PASSBACK_WINDOW_S + 1
# A real card allows 1,000 sessions; the bench card starts at the u24 maximum so no run runs out.
BENCH_COUNTER = (1 << (8 * COUNTER_BYTES)) - 1
# Reloaded whenever the purse cannot pay a fare, so it stays under PURSE_MAX_VND (16,777,215);
# enough for ~1,900 rides.
RELOAD_VND = 15_000_000


class VpcdSlotError(Exception):
    """The vpcd slot is missing, taken by another card, or never showed ours."""

    code = "vpcd_slot_unavailable"


class BenchError(Exception):
    """A measured transaction did not end as the benchmark needs (the figures would be wrong)."""

    code = "card_bench_failed"


@dataclass(frozen=True)
class VpcdSlot:
    """Slot `index` of the vpcd whose first slot listens on `host:first_port`."""

    host: str
    first_port: int
    index: int

    @property
    def port(self) -> int:
        return self.first_port + self.index

    def reader_name(self) -> str:
        """pcscd's name for this slot's reader; `VpcdSlotError` unless exactly one matches."""
        suffix = f" {self.index:02X}"
        names = [name for name in list_readers(VPCD_READER_NAME) if name.endswith(suffix)]
        if len(names) != 1:
            raise VpcdSlotError(
                f"pcscd lists {len(names)} readers named {VPCD_READER_NAME!r} ending {suffix!r} "
                f"(vpcd slot {self.index}, {self.host}:{self.port}); expected one"
            )
        return names[0]


@dataclass(frozen=True)
class PresentedCard:
    reader: PcscReader  # connected: the card is powered on
    card: EmulatedCard
    seen_after_s: float  # from starting the link until pcscd reported the card present


@contextmanager
def presented_card(
    card: EmulatedCard, slot: VpcdSlot, *, absent_s: float = ABSENT_S_DEFAULT
) -> Iterator[PresentedCard]:
    """`card` behind a `VpcdLink` on `slot`, in a background thread, and a reader connected to it.

    A tear (`card.tear_after`) makes vpcd see the card leave; the link brings it back after
    `absent_s`. On exit the reader is powered off and the link stopped.
    """
    reader = PcscReader(slot.reader_name())
    # Waits out the previous presentation's card, which pcscd notices gone at its next poll.
    if not reader.wait_for_removal(SLOT_FREE_TIMEOUT_S):
        raise VpcdSlotError(f"{reader.name} holds another card: something else uses this slot")
    stop = threading.Event()
    link = VpcdLink(card, host=slot.host, port=slot.port, absent_s=absent_s)
    thread = threading.Thread(target=link.run, args=(stop,), name=reader.name, daemon=True)
    started_s = time.monotonic()
    thread.start()
    try:
        if not reader.wait_for_card(CARD_SEEN_TIMEOUT_S):
            raise VpcdSlotError(
                f"{reader.name} showed no card {CARD_SEEN_TIMEOUT_S:g} s after ours"
            )
        seen_after_s = time.monotonic() - started_s
        reader.power_on()
        try:
            yield PresentedCard(reader, card, seen_after_s)
        finally:
            reader.power_off()
    finally:
        stop.set()
        thread.join(LINK_STOP_TIMEOUT_S)
    if thread.is_alive():
        raise VpcdSlotError(f"the vpcd link of {reader.name} did not stop")


class CountingReader:
    """A `CardReader` that counts the APDUs sent through it."""

    def __init__(self, reader: CardReader) -> None:
        self.inner = reader
        self.apdus = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def is_card_present(self) -> bool:
        return self.inner.is_card_present()

    def wait_for_card(self, timeout_s: float) -> bool:
        return self.inner.wait_for_card(timeout_s)

    def wait_for_removal(self, timeout_s: float) -> bool:
        return self.inner.wait_for_removal(timeout_s)

    def power_on(self) -> bytes:
        return self.inner.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        self.apdus += 1
        return self.inner.transmit(apdu)

    def power_off(self) -> None:
        self.inner.power_off()


@dataclass(frozen=True)
class Measurement:
    count: int
    elapsed_s: float  # wall time of the measured operations, reloads left out
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, latencies_ns: Sequence[int], elapsed_ns: int) -> Measurement:
        if len(latencies_ns) < SAMPLES_MIN:
            raise BenchError(f"{len(latencies_ns)} samples; too few for percentiles")
        cuts = statistics.quantiles(latencies_ns, n=PERCENTILES, method="inclusive")
        return cls(
            count=len(latencies_ns),
            elapsed_s=elapsed_ns / NS_PER_S,
            p50_ms=cuts[PERCENTILE_P50 - 1] / NS_PER_MS,
            p99_ms=cuts[PERCENTILE_P99 - 1] / NS_PER_MS,
            max_ms=max(latencies_ns) / NS_PER_MS,
        )


@dataclass(frozen=True)
class BenchSetup:
    """What the run was set to, so the figures' reader need not know this module's constants."""

    fare_vnd: int = BUS.fare_vnd
    reload_vnd: int = RELOAD_VND
    counter_start: int = BENCH_COUNTER
    warmup_validations: int = WARMUP_VALIDATIONS
    tap_interval_s: int = TAP_INTERVAL_S
    shares: tuple[float, float, float] = (VALIDATION_SHARE, TAP_SHARE, APDU_SHARE)


@dataclass(frozen=True)
class CardBenchFigures:
    reader: str
    vpcd: str
    card_seen_after_s: float
    apdus_per_validation: int
    reloads: int
    setup: BenchSetup
    validation: Measurement  # the card stays connected between validations
    tap: Measurement  # SCardConnect (power on) + validation + SCardDisconnect (unpower)
    apdu: Measurement  # one READ RECORD of the purse, outside any session

    def to_json(self) -> str:
        return json.dumps({"format": FIGURES_FORMAT, **asdict(self)})


class _Clock:
    def __init__(self, start: int) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


class _Bench:
    """One card, one terminal; each phase runs until its deadline."""

    def __init__(self, presented: PresentedCard, master_keys: dict[KeyLevel, bytes]) -> None:
        self.reader = presented.reader
        self.counting = CountingReader(presented.reader)
        terminal = Terminal(self.counting, SoftwareSam(master_keys))
        self.desk = CardDesk(terminal)
        self.clock = _Clock(NOW)
        self.validator = CardValidator(terminal, BUS, denied_serials=frozenset(), clock=self.clock)
        self.terminal = terminal
        self.reloads = 0
        self.apdus_per_validation = 0

    def prepare(self) -> None:
        environment = Environment(
            network_id=NETWORK_ID, issued_on=NOW, rider_category=0, account_id=BENCH_ACCOUNT
        )
        self.desk.personalise(environment)
        self._reload()
        for _ in range(WARMUP_VALIDATIONS):
            self._validate()

    def validations(self, seconds: float, *, connect_each: bool) -> Measurement:
        """`connect_each`: every validation is a whole tap, connecting and unpowering the card
        as a validator does for every rider; otherwise the card stays connected throughout."""
        if connect_each:
            self.reader.power_off()
        latencies_ns: list[int] = []
        reloads_ns = 0
        start_ns = time.perf_counter_ns()
        deadline_ns = start_ns + int(seconds * NS_PER_S)
        while (now_ns := time.perf_counter_ns()) < deadline_ns:
            if connect_each:
                self.reader.power_on()
            purse_after_vnd = self._validate()
            if connect_each:
                self.reader.power_off()
            done_ns = time.perf_counter_ns()
            latencies_ns.append(done_ns - now_ns)
            if purse_after_vnd < BUS.fare_vnd:
                self._reload(connect=connect_each)
                reloads_ns += time.perf_counter_ns() - done_ns
        elapsed_ns = time.perf_counter_ns() - start_ns - reloads_ns
        if connect_each:
            self.reader.power_on()
        return Measurement.of(latencies_ns, elapsed_ns)

    def apdu_round_trips(self, seconds: float) -> Measurement:
        self.terminal.select()
        apdu = ReadRecord(Sfi.PURSE, 1).apdu
        latencies_ns: list[int] = []
        start_ns = time.perf_counter_ns()
        deadline_ns = start_ns + int(seconds * NS_PER_S)
        while (now_ns := time.perf_counter_ns()) < deadline_ns:
            response = self.reader.transmit(apdu)
            latencies_ns.append(time.perf_counter_ns() - now_ns)
            if int.from_bytes(response[-SW_BYTES:], "big") != Sw.OK:
                raise BenchError(f"READ RECORD answered {response[-SW_BYTES:].hex().upper()}")
        return Measurement.of(latencies_ns, time.perf_counter_ns() - start_ns)

    def _validate(self) -> int:
        self.clock.now += TAP_INTERVAL_S
        apdus_before = self.counting.apdus
        result = self.validator.validate()
        if result.outcome is not Outcome.CHARGED or result.purse_after_vnd is None:
            raise BenchError(f"a validation ended {result.outcome.value}, not charged")
        self.apdus_per_validation = max(
            self.apdus_per_validation, self.counting.apdus - apdus_before
        )
        return result.purse_after_vnd

    def _reload(self, *, connect: bool = False) -> None:
        if connect:
            self.reader.power_on()
        self.desk.reload(RELOAD_VND)
        self.reloads += 1
        if connect:
            self.reader.power_off()


def _quiet(_phase: str) -> None:
    return None


def run_card_bench(
    seconds: float = SECONDS_DEFAULT,
    slot: VpcdSlot | None = None,
    *,
    progress: Callable[[str], None] = _quiet,
) -> CardBenchFigures:
    """Validations per second and p50/p99 latencies, whole taps, and the lone APDU round trip."""
    require(SECONDS_MIN <= seconds <= SECONDS_MAX, "the benchmark runs 1 s to 10 min")
    slot = slot or VpcdSlot(DEFAULT_HOST, DEFAULT_PORT, BENCH_SLOT)
    master_keys = {level: os.urandom(KEY_BYTES) for level in KeyLevel}  # this run's issuer
    image = replace(CardImage.blank(BENCH_SERIAL), transaction_counter=BENCH_COUNTER)
    card = EmulatedCard.from_master_keys(master_keys, BENCH_SERIAL, image=image)
    with presented_card(card, slot) as presented:
        bench = _Bench(presented, master_keys)
        progress("personalising, reloading, warming up")
        bench.prepare()
        progress(f"validations, the card connected: {seconds * VALIDATION_SHARE:g} s")
        validation = bench.validations(seconds * VALIDATION_SHARE, connect_each=False)
        progress(f"taps, connecting each time: {seconds * TAP_SHARE:g} s")
        tap = bench.validations(seconds * TAP_SHARE, connect_each=True)
        progress(f"READ RECORD round trips: {seconds * APDU_SHARE:g} s")
        apdu = bench.apdu_round_trips(seconds * APDU_SHARE)
    return CardBenchFigures(
        reader=presented.reader.name,
        vpcd=f"{slot.host}:{slot.port}",
        card_seen_after_s=presented.seen_after_s,
        apdus_per_validation=bench.apdus_per_validation,
        reloads=bench.reloads,
        setup=BenchSetup(),
        validation=validation,
        tap=tap,
        apdu=apdu,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The card-path benchmark; JSON on stdout.")
    parser.add_argument("--seconds", type=float, default=SECONDS_DEFAULT)
    parser.add_argument(
        "--vpcd", type=parse_address, default=(DEFAULT_HOST, DEFAULT_PORT), help="vpcd's first slot"
    )
    parser.add_argument("--slot", type=int, default=BENCH_SLOT)
    args = parser.parse_args(argv)
    if not SECONDS_MIN <= args.seconds <= SECONDS_MAX:
        parser.error(f"--seconds must be in {SECONDS_MIN:g}..{SECONDS_MAX:g}")
    if args.slot < 0:
        parser.error("--slot is a vpcd slot index, 0 or more")
    host, first_port = args.vpcd
    console = Console(stderr=True)  # stdout carries the JSON alone
    try:
        with console.status("starting") as status:
            figures = run_card_bench(
                args.seconds, VpcdSlot(host, first_port, args.slot), progress=status.update
            )
    except (VpcdSlotError, BenchError, ReaderError) as error:
        console.print(f"[red]{getattr(error, 'code', 'reader_error')}: {error}[/red]")
        raise SystemExit(1) from None
    sys.stdout.write(figures.to_json() + "\n")


if __name__ == "__main__":
    main()
