"""A day of money for clearing's tests: a rider tapping a phone at the 2A gates and on bus 01,
a parking session with a credit, and a debit under an id no writer uses."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from parking.domain.session import EndedBy
from tests.builders.journeys import BUS_01, GATE_IN_01, GATE_IN_09, GATE_OUT_12
from tests.builders.parking import MORNING, ParkingWorld
from ticketing.accounts.domain.commands import Debit
from ticketing.taps.application.ingestion import QrTap


class Rider:
    """The parking world's rider, tapping its phone at the 2A gates and on bus 01."""

    def __init__(self, world: ParkingWorld) -> None:
        self.world = world
        self.seq = 0

    def tap(self, validator_id: int, after_min: int) -> None:
        at = MORNING + timedelta(minutes=after_min)
        self.world.clock.now = at
        self.seq += 1
        code = self.world.phone.code(int(at.timestamp()) - 2, self.seq)
        upload = QrTap(self.seq, at, "accepted", "accepted", code)
        [result] = self.world.container.taps.ingest_batch(validator_id, [upload])
        assert result.status == "accepted", result
        self.world.container.catch_up()


def head(world: ParkingWorld) -> int:
    return world.container.ledger.recorder.max_notification_id() or 0


def a_day(world: ParkingWorld) -> UUID:
    """Metro 2A-01 to 2A-12, bus 01, bus 01 then 2A-09 to 2A-12 within a transfer, a parking
    session of an hour with a 5,000 credit, and a debit under an id no writer uses."""
    rider = Rider(world)
    rider.tap(GATE_IN_01, 0)
    rider.tap(GATE_OUT_12, 30)
    rider.tap(BUS_01, 120)
    rider.tap(BUS_01, 140)
    rider.tap(BUS_01, 300)
    rider.tap(BUS_01, 320)
    rider.tap(GATE_IN_09, 340)
    rider.tap(GATE_OUT_12, 360)
    world.clock.now = MORNING + timedelta(hours=7)
    session = world.start(hours=2).session
    world.clock.advance(3600)
    world.parking.ending.end(session.id, "end-1", EndedBy.APP)
    world.parking.records.credit(session.id, "c-1", 5_000, "meter fault")
    world.container.ledger.execute(Debit(world.account_id, "mystery-1", 1_000))
    return session.id
