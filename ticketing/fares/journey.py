"""What the engine is asked to price (legs, the rider's entitlements) and its answer (a Fare)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from ticketing.fares.feed import CapPeriod, FareTransferType


@dataclass(frozen=True)
class Leg:
    """One ride between a boarding tap and an alighting tap. Times must be timezone-aware."""

    network_id: str
    route_id: str
    from_stop_id: str
    to_stop_id: str
    departure: datetime
    arrival: datetime
    rider_category_id: str
    fare_media_id: str


@dataclass(frozen=True)
class HeldPass:
    """A pass the rider holds: a pass product valid from `valid_from` up to `valid_until`, excluded.

    `route_id` names the route of a one-route pass and is None for any other pass.
    """

    fare_product_id: str
    valid_from: datetime
    valid_until: datetime
    route_id: str | None = None


@dataclass(frozen=True)
class Entitlements:
    """The rider's passes, and what the rider has paid so far in each cap period of the journey."""

    passes: tuple[HeldPass, ...] = ()
    spent_vnd: Mapping[CapPeriod, int] = field(default_factory=lambda: MappingProxyType({}))


NO_ENTITLEMENTS = Entitlements()


class Coverage(StrEnum):
    PAID = "paid"
    PASS = "pass"  # noqa: S105 (a travel pass, not a password)
    FREE_CATEGORY = "free_category"


@dataclass(frozen=True)
class LegCharge:
    """One effective fare leg: one leg, or several joined by a fare leg join rule."""

    leg_indexes: tuple[int, ...]
    leg_rule_id: str
    leg_group_id: str | None
    fare_product_id: str
    product_amount_vnd: int
    reference_amount_vnd: int | None  # what the default rider category pays for the same leg
    coverage: Coverage
    pass_product_id: str | None

    @property
    def payable_vnd(self) -> int:
        return 0 if self.coverage is Coverage.PASS else self.product_amount_vnd


@dataclass(frozen=True)
class TransferCharge:
    """A transfer rule applied between two fare legs (indexes into `Fare.legs`).

    `adjustment_vnd` is how much the transfer changes the sum of the legs' products: negative is a
    discount. Type 0 adds the transfer product and drops the to-leg's; type 1 adds it; type 2 on the
    first transfer of a sub-journey replaces both legs, later ones act as type 0.
    """

    from_leg: int
    to_leg: int
    transfer_rule_id: str
    fare_transfer_type: FareTransferType
    transfer_product_id: str | None
    transfer_amount_vnd: int
    adjustment_vnd: int


@dataclass(frozen=True)
class Fare:
    """A priced journey. `total_vnd` is what the rider pays; every other field says why."""

    total_vnd: int
    legs: tuple[LegCharge, ...]
    transfers: tuple[TransferCharge, ...]
    before_cap_vnd: int
    cap_id: str | None
    reference_total_vnd: int | None  # the default category's fare, with no pass and no cap

    @property
    def cap_reduction_vnd(self) -> int:
        return self.before_cap_vnd - self.total_vnd

    @property
    def transfer_discount_vnd(self) -> int:
        return -sum(t.adjustment_vnd for t in self.transfers)

    @property
    def is_free_category(self) -> bool:
        return bool(self.legs) and all(c.coverage is Coverage.FREE_CATEGORY for c in self.legs)
