"""Copies of aggregates handed out by the batch memories: equal to the aggregate, sharing
nothing that could change, so a change to a copy never reaches the cached original."""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from parking.domain.occupancy import PlateAtLot
from parking.domain.session import ParkingSession
from ticketing.shared.aggregate_copies import fresh_copy

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _extended_session() -> ParkingSession:
    session = ParkingSession(
        start_id="start-1",
        fingerprint="f",
        lot_id="lot-a",
        operator_id="op",
        table_id="table",
        plate="29A12345",
        plate_display="29A-123.45",
        vehicle_class="car",
        account_id=uuid4(),
        started_by="attendant",
        started_at=AT,
        paid_until=AT + timedelta(hours=1),
        ends_by=AT + timedelta(hours=24),
        hold_id="hold-1",
        held_vnd=25_000,
    )
    session.extend("ext", "g", AT + timedelta(hours=2), "hold-2", 35_000, AT)
    session.collect_events()
    return session


def test_a_copy_has_the_state_deepcopy_gives() -> None:
    session = _extended_session()
    assert vars(fresh_copy(session)) == vars(deepcopy(session))
    assert type(fresh_copy(session)) is ParkingSession


def test_changing_a_copy_leaves_the_original_as_it_was() -> None:
    session = _extended_session()
    before = deepcopy(vars(session))
    copied = fresh_copy(session)
    copied.holds[0]["amount_vnd"] = 1
    copied.holds.append({"hold_id": "hold-3", "amount_vnd": 5})
    copied.extensions["other"] = "h"
    copied.end("end", "attendant", AT + timedelta(hours=2), 60_000, [{"fee_vnd": 60_000}])
    assert vars(session) == before
    assert copied.version == session.version + 1


def test_a_plate_copied_then_opened_leaves_the_plate_closed() -> None:
    plate = PlateAtLot("lot-a", "29A12345")
    plate.collect_events()
    copied = fresh_copy(plate)
    copied.open(uuid4(), AT)
    assert plate.session_id is None
    assert copied.session_id is not None
