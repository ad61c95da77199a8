"""What clearing reads of a parking aggregate: which kind it is and its operator.

A parking session, detail record or reservation names its operator once, in the event that
creates it (`ParkingSession.Started`, `ParkingDetailRecord.Sealed`, `Reservation.Booked`), and
no later event changes it; so that one event is all a parking movement's attribution needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parking.domain.record import ParkingDetailRecord
from parking.domain.reservation import Reservation
from parking.domain.session import ParkingSession

# The event creating each parking aggregate clearing attributes, and the aggregate's class.
CREATED_BY: Mapping[type[Any], type[Any]] = {
    ParkingSession.Started: ParkingSession,
    ParkingDetailRecord.Sealed: ParkingDetailRecord,
    Reservation.Booked: Reservation,
}
# The field of those events naming the operator.
OPERATOR_FIELDS = ("operator_id",)


@dataclass(frozen=True, slots=True)
class AggregateOperator:
    """A parking aggregate as clearing attributes it: its class and its operator."""

    kind: type[Any]
    operator_id: str
