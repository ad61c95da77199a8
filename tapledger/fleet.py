"""The validator fleet's parts of the composition root: health reports and the deny list's long
poll (docs/fleet.md), built beside the taps and cards they read."""

from __future__ import annotations

from typing import TypedDict

from ticketing.cards.adapters.card_views import CardViews
from ticketing.cards.application.deny_list_watch import DenyListWatch
from ticketing.cards.application.invalidation import InvalidationChannel
from ticketing.taps.adapters.health_views import HealthFollower, HealthViews
from ticketing.taps.application.ingestion import TapIngestion
from ticketing.taps.application.validator_health import ValidatorHealth


class FleetParts(TypedDict):
    validator_health: ValidatorHealth
    health_views: HealthViews
    health_follower: HealthFollower
    deny_list_watch: DenyListWatch


def fleet_parts(
    taps: TapIngestion, card_views: CardViews, invalidations: InvalidationChannel
) -> FleetParts:
    """The validator fleet's health (use case, views, follower) and the deny list's long poll,
    woken by the invalidation channel, as the `Container`'s fields of those names."""
    deny_list_watch = DenyListWatch(card_views.deny_list_head)
    invalidations.subscribe(deny_list_watch.on_invalidation)
    return FleetParts(
        validator_health=ValidatorHealth(taps),
        health_views=HealthViews(card_views.engine),
        health_follower=HealthFollower(taps, card_views.engine),
        deny_list_watch=deny_list_watch,
    )
