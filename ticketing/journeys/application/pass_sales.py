"""Selling passes: a day or monthly pass product of the fare feed, bought for an account.

The price is the feed's price row for the account's rider category on the medium the sale is
made for; the ledger debits it under a transfer id derived from the account and the client's
purchase id, so a repeated request is one debit and finds the same pass. The debit comes first:
a crash before the pass is saved leaves a debit that the retry finds (the ledger answers the
first receipt) before it saves the pass, valid from the time of that first debit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Debit
from ticketing.fares.entitlements import pass_validity
from ticketing.fares.feed import FarePass, RouteScope
from ticketing.fares.journey_fares import rider_category_id
from ticketing.fares.matching import product_price
from ticketing.journeys.application.journeys import Journeys
from ticketing.journeys.domain.rider_passes import (
    PassNotSoldToRider,
    PassRouteInvalid,
    RiderPasses,
    UnknownPassProduct,
)
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require
from ticketing.shared.optimistic import save_with_retries

# Passes on an account are sold through the rider app or at a desk on the app's behalf.
PASS_SALE_MEDIUM_DEFAULT = "mobile_app"  # noqa: S105 (a fare medium, not a password)


@dataclass(frozen=True)
class Sale:
    held: dict[str, Any]  # the pass as `RiderPasses` holds it
    repeated: bool  # the purchase id had bought this pass already


def pass_transfer_id(account_id: UUID, purchase_id: str) -> str:
    """The debit's id: derived, so the same purchase of the same account is one debit."""
    return "pass:" + url_uuid5(f"/tapledger/passes/{account_id}/{purchase_id}").hex


class PassSales:
    """Use cases on an account's passes; they live in the `Journeys` application's store, where
    the journey follower reads them when it prices a ride."""

    def __init__(self, journeys: Journeys, ledger: Ledger) -> None:
        self.journeys = journeys
        self.ledger = ledger

    def held(self, account_id: UUID) -> list[dict[str, Any]]:
        """The account's passes, valid or recently ended, oldest first."""
        self.ledger.get_account(account_id)  # an unknown account is an error, not no passes
        passes = self.journeys.get_passes(account_id)
        return [] if passes is None else list(passes.passes)

    def buy(
        self,
        account_id: UUID,
        *,
        purchase_id: str,
        fare_product_id: str,
        route_id: str | None = None,
        fare_media_id: str = PASS_SALE_MEDIUM_DEFAULT,
    ) -> Sale:
        """Debits the pass's price and records the pass; the same purchase again is one effect."""
        feed = self.journeys.fares.feed
        product = feed.passes.get(fare_product_id)
        if product is None:
            raise UnknownPassProduct(fare_product_id)
        check_route(product, route_id, feed.route_networks)
        account = self.ledger.get_account(account_id)
        category = rider_category_id(account.rider_category)
        row = product_price(feed, fare_product_id, category, fare_media_id)
        if row is None or fare_media_id not in feed.fare_media:
            raise PassNotSoldToRider(fare_product_id, category, fare_media_id)
        require(row.amount_vnd > 0, "the feed sells no pass for nothing")
        transfer_id = pass_transfer_id(account_id, purchase_id)
        self.ledger.execute(
            Debit(account_id, transfer_id, row.amount_vnd, f"pass {fare_product_id}")
        )
        debit = self.ledger.get_transfer(transfer_id)
        require(debit is not None, "a debit just executed is stored")
        bought_at = debit.recorded_at if debit is not None else self.ledger.now()
        valid_from, valid_until = pass_validity(feed, fare_product_id, bought_at)

        def attempt() -> Sale:
            # A conflict means another sale for this account saved first: read again.
            passes = self.journeys.get_passes(account_id) or RiderPasses(account_id=account_id)
            repeated = passes.find(purchase_id) is not None
            held = passes.buy(
                purchase_id=purchase_id,
                fare_product_id=fare_product_id,
                route_id=route_id,
                valid_from=valid_from,
                valid_until=valid_until,
                price_vnd=row.amount_vnd,
                transfer_id=transfer_id,
                at=bought_at,
            )
            self.journeys.save(passes)
            return Sale(held, repeated)

        return save_with_retries(attempt, what="the account's passes")


def check_route(product: FarePass, route_id: str | None, route_networks: Any) -> None:
    if product.route_scope is RouteScope.ALL:
        if route_id is not None:
            raise PassRouteInvalid(product.fare_product_id, route_id)
        return
    if route_id is None or route_networks.get(route_id) not in product.network_ids:
        raise PassRouteInvalid(product.fare_product_id, route_id)
