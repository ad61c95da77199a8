"""The decision benchmark's measurement: presentation to decision on the device's own path.

For each medium and kind, a validator device stands as it does in the field: its `Gate` over
the real outbox file (`validators.outbox`, WAL, synchronous FULL, in a temp dir) and a `Trust`
holding the issuer keys and the validator's config. A timed decision is:

* **card**: `CardStation.tap_once()` with the card already in the field: the presence check,
  power on, `CardValidator` (every APDU and the SAM's MACs), power off, and `Gate.present_card`
  committing the tap to the outbox. The station first waits for the previous card to have left
  the field; here the reader's `wait_for_removal` answers at once, as the rider took it away
  between the two taps, so that wait costs nothing.
* **QR**: `Gate.present_qr(text)`: the TL1 verification and the outbox commit. The code is
  signed by the phone before the clock starts. Every rider is a new phone, so the gate verifies
  its certificate in full (no cache hit): the worst case.

A metro exit needs an entry first: on a card, the entry gate's tap (timed as a metro entry)
writes the entry event the exit gate then finds (`paid_at_entry`). A QR code carries no journey
state and the gate keeps none (the backend pairs entry and exit), so a QR exit is decided like
any code; the phone still shows its code at the entry gate first, as a rider does.

`loadtests/bench_decisions.py` runs it against pcscd and writes the figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardware.emulator.card import EmulatedCard
from hardware.emulator.image import CardImage
from hardware.reader import CardReader
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import COUNTER_BYTES, KeyLevel
from hardware.tlc1.crypto import KEY_BYTES
from hardware.tlc1.records import Environment
from hardware.tlc1.terminal import Terminal
from loadtests.latency import NS_PER_S, SAMPLES_MIN, BenchError, Measurement
from ticketing.tl1.device import sign_code
from ticketing.tl1.issuing import compress_p256, issue_certificate
from validators.card_desk import CardDesk
from validators.card_station import CardStation
from validators.card_validation import PASSBACK_WINDOW_S
from validators.device import OUTBOX_FILE
from validators.gate import Gate, GateDecision
from validators.outbox import Outbox
from validators.trust import Trust

NOW = 1_800_000_000
NETWORK_ID = 1
BUS_FARE_VND = 8_000
METRO_MAX_FARE_VND = 20_000
# Metro gates stand at two stations; the ride between them is shorter than METRO_RIDE_MAX_S.
ENTRY_LOCATION, EXIT_LOCATION, BUS_LOCATION = 40, 41, 32
RIDE_S = 900
# Each card tap is dated after the passback window, so none is refused as a passback.
CARD_STEP_S = PASSBACK_WINDOW_S + 1
RELOAD_VND = 15_000_000
BENCH_SERIAL = bytes.fromhex("00000000de0c0001")
# A real card allows 1,000 sessions; the bench card starts at the u24 maximum so no run runs out.
BENCH_COUNTER = (1 << (8 * COUNTER_BYTES)) - 1
WARMUP_DECISIONS = 5
QR_KEY_ID = 3
# TL1 allows a certificate 72 h; the QR clock moves 1 s a code, so ~250,000 codes fit.
QR_CERTIFICATE_LIFETIME_S = 72 * 3600
COUNTER_MODULUS = 1 << 16
BENCH_ACCOUNT = UUID("3c0e7a51-9d2f-4b6e-8a14-f5c7d9e1b2a3")
PHONE_NAMESPACE = UUID("d8b1f4e2-6a3c-4f7d-9e05-1b2c3d4e5f60")
KINDS = ("bus", "metro entry", "metro exit")
MEDIA = ("card", "qr")


@dataclass(frozen=True)
class Cell:
    medium: str
    kind: str
    measurement: Measurement
    reason: str  # the decision every timed tap of the cell ended with


class _Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


class _NoRemovalWait:
    """The station's reader, except that the rider takes the card away at once."""

    def __init__(self, reader: CardReader) -> None:
        self._reader = reader
        self.name = reader.name

    def is_card_present(self) -> bool:
        return self._reader.is_card_present()

    def wait_for_card(self, timeout_s: float) -> bool:
        return self._reader.wait_for_card(timeout_s)

    def wait_for_removal(self, timeout_s: float) -> bool:  # noqa: ARG002  (gone at once)
        return True

    def power_on(self) -> bytes:
        return self._reader.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        return self._reader.transmit(apdu)

    def power_off(self) -> None:
        self._reader.power_off()


def issuer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(os.urandom(32))


def trust(kind: str, issuer_key: Ed25519PrivateKey) -> Trust:
    """A validator's synced trust: the issuer's key and its config as a bus or a metro gate."""
    metro = kind != "bus"
    location = {"bus": BUS_LOCATION, "metro entry": ENTRY_LOCATION}.get(kind, EXIT_LOCATION)
    fare = METRO_MAX_FARE_VND if metro else BUS_FARE_VND
    config: dict[str, Any] = {
        "validator": {
            "epoch": 0,
            "validator_id": location,
            "kind": "metro_gate" if metro else "bus",
            "network_id": NETWORK_ID,
            "location": location,
            "route_id": "2A" if metro else "32",
            "direction": "exit" if kind == "metro exit" else "entry",
        },
        "fare_network_id": "metro_2a" if metro else "bus_hn",
        "media": [
            {"medium": "card", "fare_media_id": "transit_card", "max_fare_vnd": fare},
            {"medium": "qr", "fare_media_id": "mobile_app", "max_fare_vnd": fare},
        ],
    }
    public = issuer_key.public_key().public_bytes_raw().hex()
    keys = {
        "version": 1,
        "keys": [{"key_id": QR_KEY_ID, "public_key": public, "valid_until": None}],
        "revoked": [],
    }
    return Trust(keys=keys, config=config, synced_at=NOW)


@contextmanager
def gates(
    kinds: tuple[str, ...], issuer_key: Ed25519PrivateKey, clock: _Clock
) -> Iterator[dict[str, Gate]]:
    """One device per kind, each with its own outbox file in a temp dir, as in the field."""
    with tempfile.TemporaryDirectory(prefix="tl-decisions-") as directory:
        outboxes: dict[str, Outbox] = {}
        try:
            for kind in kinds:
                state_dir = Path(directory) / kind.replace(" ", "-")
                state_dir.mkdir()
                outboxes[kind] = Outbox(state_dir / OUTBOX_FILE)
            yield {
                kind: Gate(outbox, trust(kind, issuer_key), clock=clock)
                for kind, outbox in outboxes.items()
            }
        finally:
            for outbox in outboxes.values():
                outbox.close()


def bench_card(
    master_keys: dict[KeyLevel, bytes] | None = None, serial: bytes = BENCH_SERIAL
) -> tuple[EmulatedCard, dict[KeyLevel, bytes]]:
    """A blank card of this run's issuer whose counter no run exhausts."""
    keys = master_keys or {level: os.urandom(KEY_BYTES) for level in KeyLevel}
    image = replace(CardImage.blank(serial), transaction_counter=BENCH_COUNTER)
    return EmulatedCard.from_master_keys(keys, serial, image=image), keys


class _CardRun:
    """Taps one card (its reader connected and powered off) at the stations of each kind."""

    def __init__(
        self,
        reader: CardReader,
        master_keys: dict[KeyLevel, bytes],
        gates: dict[str, Gate],
        clock: _Clock,
    ) -> None:
        self.reader = reader
        self.sam = SoftwareSam(master_keys)
        self.clock = clock
        self.stations = {
            kind: CardStation(_NoRemovalWait(reader), self.sam, gate, clock=clock)
            for kind, gate in gates.items()
        }

    def issue(self) -> None:
        self.reader.power_on()
        try:
            CardDesk(Terminal(self.reader, self.sam)).personalise(
                Environment(
                    network_id=NETWORK_ID,
                    issued_on=NOW,
                    rider_category=0,
                    account_id=BENCH_ACCOUNT,
                )
            )
        finally:
            self.reader.power_off()
        self.reload()

    def reload(self) -> None:
        self.reader.power_on()
        try:
            CardDesk(Terminal(self.reader, self.sam)).reload(RELOAD_VND)
        finally:
            self.reader.power_off()

    def tap(self, kind: str) -> tuple[int, GateDecision]:
        self.clock.now += RIDE_S if kind == "metro exit" else CARD_STEP_S
        started = time.perf_counter_ns()
        decision = self.stations[kind].tap_once(0)
        took = time.perf_counter_ns() - started
        if decision is None:
            raise BenchError("the station saw no card in the field")
        if not decision.accepted and decision.reason == "insufficient_purse":
            self.reload()
            return self.tap(kind)
        return took, decision


class _Phone:
    """A rider's phone with its issued certificate (made before any clock starts); each code
    it shows is new."""

    def __init__(self, issuer_key: Ed25519PrivateKey, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = issue_certificate(
            issuer_key,
            issuer_key_id=QR_KEY_ID,
            card_id=uuid5(PHONE_NAMESPACE, name),
            rider_category=0,
            flags=0,
            not_before=NOW - 3600,
            not_after=NOW - 3600 + QR_CERTIFICATE_LIFETIME_S,
            device_key=compress_p256(self.key.public_key()),
        )
        self.counter = 0

    def code(self, at: int) -> str:
        self.counter = (self.counter + 1) % COUNTER_MODULUS
        return sign_code(
            certificate=self.certificate,
            device_private_key=self.key,
            generated_at=at,
            counter=self.counter,
        )


def _qr_tap(gate: Gate, phone: _Phone, clock: _Clock) -> tuple[int, GateDecision]:
    clock.now += 1
    text = phone.code(int(clock.now))
    started = time.perf_counter_ns()
    decision = gate.present_qr(text)
    return time.perf_counter_ns() - started, decision


def _collect(
    seconds: float, kinds: tuple[str, ...], tap: Callable[[str], tuple[int, GateDecision]]
) -> dict[str, tuple[list[int], set[str], int]]:
    """Taps through `kinds` in turn until `seconds` pass; per kind the latencies, the reasons
    and the busy time (ns). Every decision must be an acceptance: a refusal would be timed for
    a shorter path than a rider's."""
    found: dict[str, tuple[list[int], set[str], int]] = {k: ([], set(), 0) for k in kinds}
    for _ in range(WARMUP_DECISIONS):
        for kind in kinds:
            tap(kind)
    deadline = time.perf_counter_ns() + int(seconds * NS_PER_S)
    # At least SAMPLES_MIN per kind, however busy the machine, so percentiles can be taken.
    while time.perf_counter_ns() < deadline or len(found[kinds[0]][0]) < SAMPLES_MIN:
        for kind in kinds:
            took, decision = tap(kind)
            if not decision.accepted:
                raise BenchError(f"a {kind} tap was refused: {decision.reason}")
            latencies, reasons, busy = found[kind]
            latencies.append(took)
            reasons.add(decision.reason)
            found[kind] = (latencies, reasons, busy + took)
    return found


def _cells(medium: str, found: dict[str, tuple[list[int], set[str], int]]) -> list[Cell]:
    return [
        Cell(medium, kind, Measurement.of(latencies, busy), "/".join(sorted(reasons)))
        for kind, (latencies, reasons, busy) in found.items()
    ]


def measure_card(
    reader: CardReader, master_keys: dict[KeyLevel, bytes], seconds: float
) -> list[Cell]:
    """`seconds` of bus taps, then `seconds` of metro entry + exit pairs, on the card behind
    `reader` (in the field, connected, powered off); the card is blank at the start."""
    clock = _Clock()
    with gates(KINDS, issuer(), clock) as by_kind:
        run = _CardRun(reader, master_keys, by_kind, clock)
        run.issue()
        found = _collect(seconds, ("bus",), run.tap)
        found |= _collect(seconds, ("metro entry", "metro exit"), run.tap)
    return _cells("card", found)


def measure_qr(seconds: float) -> list[Cell]:
    """`seconds` of bus codes, then `seconds` of metro entry + exit pairs. Each rider (a new
    phone) shows one code at a bus, or one at the entry gate and one at the exit gate, so no gate
    has its certificate cached: the worst case, verification in full."""
    clock = _Clock()
    issuer_key = issuer()
    with gates(KINDS, issuer_key, clock) as by_kind:
        riders = iter(range(1 << 62))
        phone = _Phone(issuer_key, "warm-up")

        def tap(kind: str) -> tuple[int, GateDecision]:
            nonlocal phone
            if kind != "metro exit":
                phone = _Phone(issuer_key, f"rider {next(riders)}")
            return _qr_tap(by_kind[kind], phone, clock)

        found = _collect(seconds, ("bus",), tap)
        found |= _collect(seconds, ("metro entry", "metro exit"), tap)
    return _cells("qr", found)
