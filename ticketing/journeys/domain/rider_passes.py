"""The passes one rider's account holds: day and monthly passes bought from the fare feed.

One per account, id from the account id. A pass is bought once per purchase id: the purchase id
names the ledger debit that paid for it, so a repeated request finds the pass already held.
Validity is computed by the caller from the feed (EXTENSION.md) and stored as ISO strings, so
the state stays JSON-native. Passes that ended long ago are dropped from the state (their
events remain), which keeps the aggregate small for a rider who buys a day pass every day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "ticketing.RiderPasses"
# A pass stays in the state this long after it ended: a late tap of its last day still finds it.
PASS_KEPT_AFTER_END_S = 35 * 24 * 3600
# Passes held at once (valid or recently ended); the fare engine takes at most 64.
PASSES_HELD_MAX = 48
PURCHASE_ID_MAX_CHARS = 64


class RiderPasses(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Opened(Created):
        TOPIC = f"{TOPIC_PREFIX}.Opened"
        account_id: UUID

    class PassBought(Event):
        TOPIC = f"{TOPIC_PREFIX}.PassBought"
        purchase_id: str
        fare_product_id: str
        route_id: str | None
        valid_from: str
        valid_until: str
        price_vnd: int
        transfer_id: str
        at: datetime

    @staticmethod
    def create_id(account_id: UUID) -> UUID:
        return url_uuid5(f"/tapledger/rider-passes/{account_id}")

    @event(Opened)
    def __init__(self, account_id: UUID) -> None:
        self.account_id = account_id
        # Oldest first; each a dict of the PassBought fields but `at`.
        self.passes: list[dict[str, Any]] = []

    # Queries

    def find(self, purchase_id: str) -> dict[str, Any] | None:
        return next((p for p in self.passes if p["purchase_id"] == purchase_id), None)

    def valid_at(self, at: datetime) -> list[dict[str, Any]]:
        moment = _utc(at)
        return [p for p in self.passes if p["valid_from"] <= moment < p["valid_until"]]

    # Commands

    def buy(
        self,
        *,
        purchase_id: str,
        fare_product_id: str,
        route_id: str | None,
        valid_from: datetime,
        valid_until: datetime,
        price_vnd: int,
        transfer_id: str,
        at: datetime,
    ) -> dict[str, Any]:
        """Records a bought pass; the same purchase again returns the pass already held."""
        require(valid_from < valid_until, "a pass is valid for some time")
        require(price_vnd >= 0, "a pass price is never negative")
        held = self.find(purchase_id)
        if held is not None:
            if (held["fare_product_id"], held["route_id"]) != (fare_product_id, route_id):
                raise PassPurchaseConflict(purchase_id)
            return held
        live = [p for p in self.passes if p["valid_until"] > _utc(at)]
        if len(live) >= PASSES_HELD_MAX:
            raise TooManyPasses(self.account_id)
        self._bought(
            purchase_id=purchase_id,
            fare_product_id=fare_product_id,
            route_id=route_id,
            valid_from=_utc(valid_from),
            valid_until=_utc(valid_until),
            price_vnd=price_vnd,
            transfer_id=transfer_id,
            at=at,
        )
        bought = self.find(purchase_id)
        require(bought is not None, "a bought pass is held")
        return bought or {}

    @event(PassBought)
    def _bought(
        self,
        purchase_id: str,
        fare_product_id: str,
        route_id: str | None,
        valid_from: str,
        valid_until: str,
        price_vnd: int,
        transfer_id: str,
        at: datetime,
    ) -> None:
        # Pruning reads only the event's own time, so every replay keeps the same passes.
        horizon = _utc(at - timedelta(seconds=PASS_KEPT_AFTER_END_S))
        self.passes = [p for p in self.passes if p["valid_until"] > horizon]
        self.passes.append(
            {
                "purchase_id": purchase_id,
                "fare_product_id": fare_product_id,
                "route_id": route_id,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "price_vnd": price_vnd,
                "transfer_id": transfer_id,
            }
        )


def _utc(at: datetime) -> str:
    """Times in UTC ISO form, so that comparing the strings compares the moments."""
    require(at.tzinfo is not None, "pass times carry a timezone")
    return at.astimezone(UTC).isoformat()


class PassPurchaseConflict(DomainError):
    """The purchase id names an earlier purchase of another product or route."""

    code = "pass_purchase_conflict"

    def __init__(self, purchase_id: str) -> None:
        super().__init__(f"purchase {purchase_id[:64]!r} already bought a different pass")


class TooManyPasses(DomainError):
    code = "too_many_passes"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"account {account_id} already holds {PASSES_HELD_MAX} passes")


class UnknownPassProduct(DomainError):
    code = "unknown_pass_product"

    def __init__(self, fare_product_id: str) -> None:
        super().__init__(f"{fare_product_id[:64]!r} is not a pass product of the fare feed")


class PassNotSoldToRider(DomainError):
    code = "pass_not_sold_to_rider"

    def __init__(self, fare_product_id: str, rider_category: str, fare_media_id: str) -> None:
        super().__init__(
            f"pass {fare_product_id} is not sold to rider category {rider_category} "
            f"on medium {fare_media_id[:40]}"
        )


class PassRouteInvalid(DomainError):
    """A one-route pass needs a route of a network it covers; an all-routes pass takes none."""

    code = "pass_route_invalid"

    def __init__(self, fare_product_id: str, route_id: str | None) -> None:
        wanted = "needs one of its routes" if route_id is None else f"cannot be for {route_id!r}"
        super().__init__(f"pass {fare_product_id} {wanted[:80]}")
