"""The card-path benchmark: TLC1 validations through real pcscd to the card emulator.

The path measured is the product's: `CardValidator` → `Terminal` → `PcscReader` → pyscard →
pcscd → vpcd → TCP → `VpcdLink` → `EmulatedCard`, the card presented in one of vpcd's slots
(`hardware/emulator/vpcd_slot.py`). `loadtests/bench_card.py` runs it and writes the figures into
docs/benchmarks.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from uuid import UUID

from hardware.counting_reader import CountingReader
from hardware.emulator.card import EmulatedCard
from hardware.emulator.image import CardImage
from hardware.emulator.vpcd import DEFAULT_HOST, DEFAULT_PORT
from hardware.emulator.vpcd_slot import PresentedCard, VpcdSlot, presented_card
from hardware.invariants import require
from hardware.reader import SW_BYTES
from hardware.sam import SoftwareSam
from hardware.tlc1.commands import ReadRecord
from hardware.tlc1.constants import COUNTER_BYTES, KeyLevel, Sfi, Sw
from hardware.tlc1.crypto import KEY_BYTES
from hardware.tlc1.records import Environment, EventKind
from hardware.tlc1.terminal import Terminal
from loadtests.latency import NS_PER_S, BenchError, Measurement
from validators.card_desk import CardDesk
from validators.card_validation import PASSBACK_WINDOW_S, CardValidator, Outcome, TapPoint

# Slot 0 is the one `tapledger card emulate` and a developer use by default; stay off it.
BENCH_SLOT = 1

SECONDS_DEFAULT = 10.0
SECONDS_MIN = 1.0
SECONDS_MAX = 600.0
# --seconds is shared out: validations with the card connected, whole taps, lone APDUs.
VALIDATION_SHARE, TAP_SHARE, APDU_SHARE = 0.6, 0.2, 0.2
WARMUP_VALIDATIONS = 20

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
