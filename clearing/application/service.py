"""Clearing as the product builds it: the store, the line table, the files' directory and the
attribution of revenue, behind the use cases of `cycles.py`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application
from sqlalchemy import Engine

from clearing.adapters.cycle_files import DirectoryCycleFiles
from clearing.adapters.journey_reads import JourneyLegReads
from clearing.adapters.line_table import SqlLineStore
from clearing.adapters.parking_reads import ParkingOperatorReads
from clearing.adapters.terms_files import InvalidTerms
from clearing.application.cycles import ClearingCycles
from clearing.application.pass_revenue import PassEarning, PassNetworks, PassRides
from clearing.application.ports import RunLock
from clearing.application.revenue_lines import (
    AggregateSource,
    JourneySource,
    RevenueAttribution,
    StandaloneFare,
    parking_store_operators,
)
from clearing.application.store import ClearingStore
from clearing.domain.operators import OperatorMap
from clearing.domain.terms import SettlementTerms


def build_clearing(
    env: dict[str, str],
    *,
    ledger: Application[UUID],
    journeys: JourneySource,
    journey_log: Application[UUID],
    parking: AggregateSource,
    standalone_fare: StandaloneFare | None,
    operators: OperatorMap,
    terms: SettlementTerms,
    engine: Engine,
    files_root: Path,
    lock: RunLock,
    clock: Callable[[], datetime],
    pass_rides: PassRides | None = None,
    pass_networks: PassNetworks | None = None,
) -> ClearingCycles:
    """Clearing on these stores; passes are earned when both pass ports are given."""
    missing = sorted(set(operators.operators) - set(terms.operators))
    if missing:
        raise InvalidTerms(f"operators with no settlement terms: {', '.join(missing)}")
    lines = SqlLineStore(engine)
    passes = None
    if pass_rides is not None and pass_networks is not None:
        passes = PassEarning(operators, journeys, pass_rides, pass_networks, standalone_fare)
    return ClearingCycles(
        store=ClearingStore(env),
        ledger=ledger,
        journeys=journey_log,
        attribution=RevenueAttribution(
            operators=operators,
            journeys=journeys,
            parking_operator_of=parking_store_operators(parking),
            standalone_fare=standalone_fare,
            journey_batches=JourneyLegReads(journey_log),
            parking_batches=(
                ParkingOperatorReads(parking) if isinstance(parking, Application) else None
            ),
        ),
        terms=terms,
        lines=lines,
        files=DirectoryCycleFiles(files_root),
        lock=lock,
        clock=clock,
        passes=passes,
    )
