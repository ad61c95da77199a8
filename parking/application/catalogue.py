"""Operators and lots: created by staff, read by every use case."""

from __future__ import annotations

from collections.abc import Mapping

from parking.application.store import ParkingStore
from parking.domain.catalogue import Lot, LotSpec, ParkingOperator, check_catalogue_id
from parking.domain.errors import LotNotFound, OperatorNotFound, UnknownRateTable
from parking.domain.ports import Clock
from parking.domain.tariff import RateTable
from ticketing.shared.optimistic import save_with_retries


class Catalogue:
    def __init__(self, store: ParkingStore, tables: Mapping[str, RateTable], clock: Clock) -> None:
        self.store = store
        self.tables = tables
        self.clock = clock

    def register_operator(self, operator_id: str, name: str) -> tuple[ParkingOperator, bool]:
        """The operator, and whether it is new; the same operator again is a repeat."""
        check_catalogue_id("operator_id", operator_id)

        def attempt() -> tuple[ParkingOperator, bool]:
            known: ParkingOperator | None = self.store.get_or_none(
                ParkingOperator.create_id(operator_id)
            )
            if known is not None:
                known.check_same(name)
                return known, False
            operator = ParkingOperator.register(operator_id, name, self.clock())
            self.store.save(operator)
            return operator, True

        return save_with_retries(attempt, what=f"parking operator {operator_id}")

    def operator(self, operator_id: str) -> ParkingOperator:
        check_catalogue_id("operator_id", operator_id)
        found: ParkingOperator | None = self.store.get_or_none(
            ParkingOperator.create_id(operator_id)
        )
        if found is None:
            raise OperatorNotFound(operator_id)
        return found

    def register_lot(self, spec: LotSpec) -> tuple[Lot, bool]:
        """The lot, and whether it is new; the same lot again is a repeat."""
        spec.check()
        self.operator(spec.operator_id)
        if spec.table_id not in self.tables:
            raise UnknownRateTable(spec.table_id)

        def attempt() -> tuple[Lot, bool]:
            known: Lot | None = self.store.get_or_none(Lot.create_id(spec.lot_id))
            if known is not None:
                known.check_same(spec)
                return known, False
            lot = Lot.register(spec, self.clock())
            self.store.save(lot)
            return lot, True

        return save_with_retries(attempt, what=f"parking lot {spec.lot_id}")

    def lot(self, lot_id: str) -> Lot:
        check_catalogue_id("lot_id", lot_id)
        found: Lot | None = self.store.get_or_none(Lot.create_id(lot_id))
        if found is None:
            raise LotNotFound(lot_id)
        return found

    def table(self, table_id: str) -> RateTable:
        table = self.tables.get(table_id)
        if table is None:
            raise UnknownRateTable(table_id)
        return table
