"""Passes held on a TLC1 card: which contract covers a ride here (docs/card-contracts.md).

A contract names its product as a u16 (spec/CARD.md, "Contract"); the fare feed names products
with text ids. `CARD_PRODUCT_IDS` is the one table between the two: a number, once given, keeps
its product for good, because cards already sold carry it. What a product covers (its networks,
one route or all) is read from the feed's pass extension (`fare_passes.txt`,
`fare_pass_networks.txt`), so the validator decides with the rules the backend prices with. A
product of the table that the feed does not list as a pass covers nothing.

A card's route field is a u16 and the feed's route ids are text, so a route is named on a card by
its id read as a decimal number ("18" is 18, "01" is 1); a route whose id is not a number cannot
be named there, and a one-route pass cannot cover it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hardware.tlc1.records import Contract
from ticketing.fares.feed import Feed, RouteScope

# Append only: never renumber or reuse a number (0 is an empty contract slot, never a product).
CARD_PRODUCT_IDS: Mapping[int, str] = MappingProxyType(
    {
        1: "metro_2a_day",
        2: "metro_3_day",
        3: "metro_2a_monthly",
        4: "metro_3_monthly",
        5: "bus_monthly_all_routes",
        6: "bus_monthly_one_route",
    }
)
CARD_ROUTE_MAX = 0xFFFF
ALL_ROUTES = 0  # a contract's route 0: every route of the networks the pass covers


@dataclass(frozen=True)
class CardPass:
    """A pass product a card contract may name, as the fare feed defines it."""

    product: int
    fare_product_id: str
    network_ids: frozenset[str]
    one_route: bool


def card_passes(feed: Feed) -> dict[int, CardPass]:
    """The products of `CARD_PRODUCT_IDS` that `feed` defines as passes, by card number."""
    passes = {}
    for product, fare_product_id in CARD_PRODUCT_IDS.items():
        fare_pass = feed.passes.get(fare_product_id)
        if fare_pass is None:
            continue
        passes[product] = CardPass(
            product,
            fare_product_id,
            fare_pass.network_ids,
            fare_pass.route_scope is RouteScope.ONE,
        )
    return passes


def card_route(route_id: str) -> int | None:
    """A feed route id as a card names it; None when a card cannot name it."""
    if not route_id.isdecimal() or not route_id.isascii():
        return None
    number = int(route_id)
    return number if 0 < number <= CARD_ROUTE_MAX else None


@dataclass(frozen=True)
class PassRules:
    """The passes that can cover a ride at one validator: those of its fare network."""

    passes: Mapping[int, CardPass] = field(default_factory=dict)
    route: int | None = None  # this validator's route as a card names it

    @classmethod
    def at(
        cls, passes: Mapping[int, CardPass], *, fare_network_id: str, route_id: str
    ) -> PassRules:
        here = {n: p for n, p in passes.items() if fare_network_id in p.network_ids}
        return cls(MappingProxyType(here), card_route(route_id))

    def __bool__(self) -> bool:
        """Whether any pass could cover a ride here; if none can, contracts are not read."""
        return bool(self.passes)

    def covers(self, contract: Contract, *, network_id: int, now: int) -> bool:
        """Whether `contract` is a valid pass of this card network covering a ride now, here."""
        if contract.is_empty or contract.network_id != network_id:
            return False
        card_pass = self.passes.get(contract.product)
        if card_pass is None:
            return False
        # Valid from its first second up to, not including, `valid_until` (EXTENSION.md).
        if not contract.valid_from <= now < contract.valid_until:
            return False
        if contract.route == ALL_ROUTES:
            return not card_pass.one_route
        return contract.route == self.route
