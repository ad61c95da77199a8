"""Parking's use cases over one store, built together; the product's composition root makes one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from parking.adapters.enforcement_index_memory import MemoryEnforcementIndex
from parking.adapters.parking_views import ParkingFollower, ParkingViews
from parking.adapters.reservation_views import ReservationViews
from parking.application.batches import ActionBatches
from parking.application.catalogue import Catalogue
from parking.application.ending import Ending
from parking.application.enforcement import Enforcement
from parking.application.index_upkeep import IndexFollower, IndexWriter
from parking.application.orphan_holds import OrphanHolds
from parking.application.records import Records
from parking.application.reservations import Reservations
from parking.application.sessions import Sessions
from parking.application.store import ParkingStore
from parking.application.sweeper import Sweeper
from parking.domain.enforcement_index import EnforcementIndex
from parking.domain.ports import Clock, CodeReader
from parking.domain.tariff import RateTable
from ticketing.accounts.adapters.read_model import LedgerReadModel
from ticketing.accounts.application.ledger import Ledger


@dataclass
class Parking:
    store: ParkingStore
    catalogue: Catalogue
    sessions: Sessions
    reservations: Reservations
    ending: Ending
    batches: ActionBatches
    records: Records
    enforcement: Enforcement
    views: ParkingViews
    reservation_views: ReservationViews
    follower: ParkingFollower
    index_follower: IndexFollower
    sweeper: Sweeper

    @classmethod
    def build(
        cls,
        env: dict[str, str],
        *,
        ledger: Ledger,
        codes: CodeReader,
        tables: Mapping[str, RateTable],
        engine: Engine,
        clock: Clock,
        index: EnforcementIndex | None = None,
    ) -> Parking:
        """Without an `index`, one in process memory (the embedded default: one process)."""
        store = ParkingStore(env)
        index = index if index is not None else MemoryEnforcementIndex()
        # Every commit's plate events reach the index before the use case returns.
        store.after_events.append(IndexWriter(index))
        catalogue = Catalogue(store, tables, clock)
        sessions = Sessions(store, catalogue, ledger, codes, clock)
        ending = Ending(store, sessions, ledger, clock)
        views = ParkingViews(engine)
        reservations = Reservations(store, sessions, ledger, clock)
        reservation_views = ReservationViews(engine)
        return cls(
            store=store,
            catalogue=catalogue,
            sessions=sessions,
            reservations=reservations,
            ending=ending,
            batches=ActionBatches(store, sessions, ending, ledger),
            records=Records(store, ledger, clock),
            enforcement=Enforcement(store, catalogue, clock, index),
            views=views,
            reservation_views=reservation_views,
            follower=ParkingFollower(store, engine),
            index_follower=IndexFollower(store, index),
            sweeper=Sweeper(
                ending,
                views,
                clock,
                reservations=reservations,
                reservation_views=reservation_views,
                orphan_holds=OrphanHolds(sessions, ledger, LedgerReadModel(engine), clock),
            ),
        )

    def close(self) -> None:
        self.store.close()
        self.enforcement.index.close()
