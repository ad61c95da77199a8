"""Parking's use cases over one store, built together; the product's composition root makes one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from parking.adapters.parking_views import ParkingFollower, ParkingViews
from parking.application.catalogue import Catalogue
from parking.application.ending import Ending
from parking.application.enforcement import Enforcement
from parking.application.records import Records
from parking.application.sessions import Sessions
from parking.application.store import ParkingStore
from parking.application.sweeper import Sweeper
from parking.domain.ports import Clock, CodeReader
from parking.domain.tariff import RateTable
from ticketing.accounts.application.ledger import Ledger


@dataclass
class Parking:
    store: ParkingStore
    catalogue: Catalogue
    sessions: Sessions
    ending: Ending
    records: Records
    enforcement: Enforcement
    views: ParkingViews
    follower: ParkingFollower
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
    ) -> Parking:
        store = ParkingStore(env)
        catalogue = Catalogue(store, tables, clock)
        sessions = Sessions(store, catalogue, ledger, codes, clock)
        ending = Ending(store, sessions, ledger, clock)
        views = ParkingViews(engine)
        return cls(
            store=store,
            catalogue=catalogue,
            sessions=sessions,
            ending=ending,
            records=Records(store, ledger, clock),
            enforcement=Enforcement(store, catalogue, clock),
            views=views,
            follower=ParkingFollower(store, engine),
            sweeper=Sweeper(ending, views, clock),
        )

    def close(self) -> None:
        self.store.close()
