"""Transfer rules between consecutive fare legs (fare_transfer_rules.txt).

The journey is walked leg by leg. A transfer either continues the current sub-journey (a rule
applies) or closes it (no rule: the legs are separate and the next leg pays its own product).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ticketing.fares.feed import (
    TRANSFER_COUNT_UNLIMITED,
    DurationLimitType,
    FareTransferRule,
    FareTransferType,
)
from ticketing.fares.journey import TransferCharge


@dataclass(frozen=True)
class PricedLeg:
    """What a transfer needs to know of a fare leg once its product is chosen."""

    leg_group_id: str | None
    amount_vnd: int
    departure: datetime
    arrival: datetime
    covered_by_pass: bool


# The price of a transfer product for the rider boarding the to-leg, or None if not sold to them.
TransferPrice = Callable[[str, int], int | None]


@dataclass
class _SubJourney:
    transfers: int = 0
    chain: tuple[str | None, str | None] | None = None  # the (from, to) groups of the last rule
    chain_start: int = 0  # the fare leg where consecutive uses of that rule began


def apply_transfers(
    rules: Sequence[FareTransferRule], legs: Sequence[PricedLeg], price: TransferPrice
) -> tuple[TransferCharge, ...]:
    listed_from = {r.from_leg_group_id for r in rules if r.from_leg_group_id is not None}
    listed_to = {r.to_leg_group_id for r in rules if r.to_leg_group_id is not None}
    sub = _SubJourney()
    charges: list[TransferCharge] = []
    for to_index in range(1, len(legs)):
        before, after = legs[to_index - 1], legs[to_index]
        candidates: list[FareTransferRule] = []
        if not (before.covered_by_pass or after.covered_by_pass):
            candidates = _by_groups(rules, before, after, listed_from, listed_to)
        candidates = _by_transfer_count(candidates, sub.transfers + 1)
        best: tuple[TransferCharge, int, tuple[str | None, str | None]] | None = None
        for rule in candidates:
            key = (rule.from_leg_group_id, rule.to_leg_group_id)
            start = sub.chain_start if sub.chain == key else to_index - 1
            if not _within_duration(rule, legs[start], after):
                continue
            charge = _charge(rule, to_index, legs, sub.transfers, price)
            if charge is not None and (
                best is None or charge.adjustment_vnd < best[0].adjustment_vnd
            ):
                best = (charge, start, key)
        if best is None:
            sub = _SubJourney()
            continue
        charges.append(best[0])
        sub = _SubJourney(sub.transfers + 1, best[2], best[1])
    return tuple(charges)


def _by_groups(
    rules: Sequence[FareTransferRule],
    before: PricedLeg,
    after: PricedLeg,
    listed_from: set[str],
    listed_to: set[str],
) -> list[FareTransferRule]:
    """An exact match on both groups wins; else an empty group means "every group not listed"."""
    from_group, to_group = before.leg_group_id, after.leg_group_id
    if from_group is None or to_group is None:
        return []
    exact = [r for r in rules if (r.from_leg_group_id, r.to_leg_group_id) == (from_group, to_group)]
    if exact:
        return exact
    return [
        r
        for r in rules
        if (
            r.from_leg_group_id == from_group
            or (r.from_leg_group_id is None and from_group not in listed_from)
        )
        and (
            r.to_leg_group_id == to_group
            or (r.to_leg_group_id is None and to_group not in listed_to)
        )
    ]


def _counted_limit(rule: FareTransferRule) -> float:
    if rule.transfer_count is None or rule.transfer_count == TRANSFER_COUNT_UNLIMITED:
        return float("inf")
    return float(rule.transfer_count)


def _by_transfer_count(rules: list[FareTransferRule], count: int) -> list[FareTransferRule]:
    """Of the rules with a transfer_count, keep the smallest count still covering this one."""
    counted = [r for r in rules if r.transfer_count is not None and _counted_limit(r) >= count]
    uncounted = [r for r in rules if r.transfer_count is None]
    if not counted:
        return uncounted
    smallest = min(_counted_limit(r) for r in counted)
    return uncounted + [r for r in counted if _counted_limit(r) == smallest]


def _within_duration(rule: FareTransferRule, first: PricedLeg, last: PricedLeg) -> bool:
    """The limit is inclusive: a transfer exactly `duration_limit` seconds later still counts."""
    if rule.duration_limit_s is None or rule.duration_limit_type is None:
        return True
    kind = rule.duration_limit_type
    starts_on_departure = kind in (
        DurationLimitType.DEPARTURE_TO_ARRIVAL,
        DurationLimitType.DEPARTURE_TO_DEPARTURE,
    )
    ends_on_departure = kind in (
        DurationLimitType.DEPARTURE_TO_DEPARTURE,
        DurationLimitType.ARRIVAL_TO_DEPARTURE,
    )
    start = first.departure if starts_on_departure else first.arrival
    end = last.departure if ends_on_departure else last.arrival
    return (end - start).total_seconds() <= rule.duration_limit_s


def _charge(
    rule: FareTransferRule,
    to_index: int,
    legs: Sequence[PricedLeg],
    transfers_so_far: int,
    price: TransferPrice,
) -> TransferCharge | None:
    amount = 0
    if rule.fare_product_id is not None:
        priced = price(rule.fare_product_id, to_index)
        if priced is None:
            return None
        amount = priced
    before, after = legs[to_index - 1], legs[to_index]
    kind = rule.fare_transfer_type
    if kind is FareTransferType.BOTH_LEGS_PLUS_TRANSFER:
        adjustment = amount
    elif kind is FareTransferType.TRANSFER_ONLY and transfers_so_far == 0:
        adjustment = amount - before.amount_vnd - after.amount_vnd
    else:
        adjustment = amount - after.amount_vnd
    return TransferCharge(
        from_leg=to_index - 1,
        to_leg=to_index,
        transfer_rule_id=rule.rule_id,
        fare_transfer_type=kind,
        transfer_product_id=rule.fare_product_id,
        transfer_amount_vnd=amount,
        adjustment_vnd=adjustment,
    )
