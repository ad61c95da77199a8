"""The demo's tap scene: validators upload the riders' QR taps, journeys are priced and posted."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rich.console import Console
from rich.table import Table

from tapledger.bootstrap import Container
from ticketing.taps.application.ingestion import QrTap
from ticketing.tl1.device import next_counter, sign_code

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
BUS_01_KIM_MA = 3001
GATE_CAT_LINH_IN = 3101
GATE_YEN_NGHIA_OUT = 3112
GATE_THAI_HA_OUT = 3103
METRO_2A_NETWORK = 2
BUS_NETWORK = 1
# The phone signs a code a moment before the gate reads it.
CODE_AGE_S = 2
# The validators upload once the last ride (an hour after the first tap) is over.
UPLOAD_AFTER_MIN = 60


@dataclass
class Phone:
    """A rider's phone with a registered virtual card."""

    key: ec.EllipticCurvePrivateKey
    certificate: bytes
    counter: int = 0

    def code(self, at: datetime) -> str:
        self.counter = next_counter(self.counter)
        return sign_code(
            certificate=self.certificate,
            device_private_key=self.key,
            generated_at=int(at.timestamp()) - CODE_AGE_S,
            counter=self.counter,
        )


@dataclass
class Uplink:
    """Each validator's outbox: its taps, numbered by its own sequence."""

    batches: dict[int, list[QrTap]] = field(default_factory=dict)

    def tap(self, validator_id: int, code: str, at: datetime) -> None:
        batch = self.batches.setdefault(validator_id, [])
        seq = len(batch) + 1
        batch.append(QrTap(seq, at, "accepted", "accepted", code))


def _register_validators(container: Container) -> None:
    taps = container.taps
    taps.register_validator(
        validator_id=BUS_01_KIM_MA,
        kind="bus",
        network_id=BUS_NETWORK,
        location=BUS_01_KIM_MA,
        stop_id="bus-kim-ma",
        route_id="01",
    )
    for validator_id, stop_id, direction in (
        (GATE_CAT_LINH_IN, "2A-01", "entry"),
        (GATE_YEN_NGHIA_OUT, "2A-12", "exit"),
        (GATE_THAI_HA_OUT, "2A-03", "exit"),
    ):
        taps.register_validator(
            validator_id=validator_id,
            kind="metro_gate",
            network_id=METRO_2A_NETWORK,
            location=validator_id,
            stop_id=stop_id,
            route_id="2A",
            direction=direction,
        )


def phone_for(container: Container, account_id: UUID) -> Phone:
    """A phone for the rider, with a virtual card registered to the account."""
    key = ec.generate_private_key(ec.SECP256R1())
    device_key = key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    card = container.cards.issue_virtual_card(account_id, device_key=device_key)
    return Phone(key, base64.b64decode(card.certificate_b64))


def taps_scene(
    container: Container,
    riders: dict[str, UUID],
    phones: dict[str, Phone],
    console: Console,
    pass_time: Callable[[timedelta], None],
) -> bool:
    """Lan's and Bà Hoa's phones tap; returns whether every journey was priced as the Hanoi feed
    says. `pass_time` moves the demo's clock on: the validators upload after the rides, not
    before them (a tap stamped later than its upload would be refused as a device clock running
    ahead)."""
    _register_validators(container)
    start = container.cards.now()
    lan, hoa = phones["Lan"], phones["Hoa"]
    uplink = Uplink()

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    uplink.tap(BUS_01_KIM_MA, lan.code(at(5)), at(5))  # Lan boards bus 01
    uplink.tap(BUS_01_KIM_MA, lan.code(at(25)), at(25))  # and taps off
    uplink.tap(GATE_CAT_LINH_IN, lan.code(at(35)), at(35))  # metro 2A within the hour
    uplink.tap(GATE_CAT_LINH_IN, hoa.code(at(36)), at(36))  # Bà Hoa, free as an elder
    uplink.tap(GATE_THAI_HA_OUT, hoa.code(at(41)), at(41))
    uplink.tap(GATE_YEN_NGHIA_OUT, lan.code(at(58)), at(58))
    forged = lan.code(at(59))
    uplink.tap(GATE_YEN_NGHIA_OUT, forged[:-8] + "00000000", at(59))  # a tampered code

    pass_time(timedelta(minutes=UPLOAD_AFTER_MIN))
    counts: dict[str, int] = {}
    for validator_id, batch in sorted(uplink.batches.items()):
        # The first upload's acknowledgement is lost; the validator sends the batch again.
        for _ in range(2):
            for result in container.taps.ingest_batch(validator_id, batch):
                key = result.status if not result.reason else f"{result.status} ({result.reason})"
                counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    console.print(f"  4 validators uploaded their batches twice: {summary}")

    container.catch_up()
    return _print_journeys(container, riders, console)


def _print_journeys(container: Container, riders: dict[str, UUID], console: Console) -> bool:
    table = Table(title="Journeys from the taps", title_justify="left")
    for column in ("rider", "legs", "status", "fare", "charged"):
        table.add_column(column, justify="right" if column in {"fare", "charged"} else "left")
    fares: dict[str, list[int | None]] = {}
    for name in ("Lan", "Hoa"):
        rows = sorted(container.journey_views.for_account(riders[name]), key=lambda r: str(r.legs))
        fares[name] = [row.fare_vnd for row in rows]
        for row in rows:
            legs = "; ".join(_leg_text(leg) for leg in row.legs)
            fare = "—" if row.fare_vnd is None else f"{row.fare_vnd:,}"
            table.add_row(name, legs, row.status, fare, f"{row.charged_vnd:,}")
    console.print(table)
    # Lan: bus 01 (10,000) + 2A end to end (15,000) - the 3,000 transfer discount, and the
    # morning's 2A to La Khê (13,000) then bus 01 twice (10,000 each); Bà Hoa: free.
    return fares == {"Lan": [22_000, 33_000], "Hoa": [0]}


def _leg_text(leg: dict[str, str]) -> str:
    return f"{leg.get('route_id', '')} {leg.get('from_stop_id', '?')}→{leg.get('to_stop_id', '?')}"
