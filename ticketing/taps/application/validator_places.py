"""Whether a validator's place can be priced: its stop and route checked against the fare feed.

A validator whose stop or route the feed does not know charges nobody: every tap on it is refused
`unknown_stop` or `unknown_route` by the fare engine, long after the device went into service.
Registration asks the feed first (`place_problems`), and refuses the place naming the field.

The feed says which network each route belongs to, but not whether it is a bus or a metro line;
what tells them apart is how the network is priced. A metro gate's entry and exit are priced
from station to station, so its network's fare leg rules name areas, and its stop must be in one
of them; a bus validator's network is priced per ride, with rules that name no area.
"""

from __future__ import annotations

from dataclasses import dataclass

from ticketing.fares.feed import Feed
from ticketing.fares.matching import stop_areas
from ticketing.shared.domain.errors import DomainError
from ticketing.taps.domain.validator import Direction, ValidatorKind


@dataclass(frozen=True)
class PlaceProblem:
    """A field of the registration that the fare feed refuses, and why."""

    field: str
    message: str


def check_place(feed: Feed, *, kind: str, stop_id: str, route_id: str, direction: str) -> None:
    """Raises `UnpricedPlace` when the feed cannot price taps at this place."""
    problems = place_problems(
        feed, kind=kind, stop_id=stop_id, route_id=route_id, direction=direction
    )
    if problems:
        raise UnpricedPlace(problems)


def place_problems(
    feed: Feed, *, kind: str, stop_id: str, route_id: str, direction: str
) -> list[PlaceProblem]:
    """What the feed finds wrong with a validator's place; empty when its taps can be priced.

    A parking handheld stands at a lot, which the fare feed does not price: it is not checked."""
    if kind not in (ValidatorKind.BUS, ValidatorKind.METRO_GATE):
        return []
    metro = kind == ValidatorKind.METRO_GATE
    problems: list[PlaceProblem] = []
    if metro and direction not in (Direction.ENTRY, Direction.EXIT):
        problems.append(
            PlaceProblem("direction", "a metro gate lets riders in or out: entry or exit")
        )
    if not stop_id:
        problems.append(PlaceProblem("stop_id", "a bus validator or a metro gate names its stop"))
    elif feed.stops and stop_id not in feed.stops:
        problems.append(PlaceProblem("stop_id", f"stop {stop_id!r} is not in the fare feed"))
    if not route_id:
        problems.append(PlaceProblem("route_id", "a bus validator or a metro gate names its route"))
        return problems
    network_id = feed.route_networks.get(route_id)
    if feed.route_networks and network_id is None:
        problems.append(PlaceProblem("route_id", f"route {route_id!r} is not in the fare feed"))
        return problems
    if network_id is not None:
        problems.extend(_kind_problems(feed, network_id, route_id, stop_id, metro=metro))
    return problems


def _kind_problems(
    feed: Feed, network_id: str, route_id: str, stop_id: str, *, metro: bool
) -> list[PlaceProblem]:
    areas = _priced_areas(feed, network_id)
    if metro and not areas:
        why = f"route {route_id!r} is in network {network_id!r}, priced per ride: not a metro line"
        return [PlaceProblem("route_id", why)]
    if not metro and areas:
        why = f"route {route_id!r} is in network {network_id!r}, priced by station: a metro line"
        return [PlaceProblem("route_id", why)]
    if metro and stop_id and not stop_areas(feed, stop_id) & areas:
        why = f"stop {stop_id!r} is no station of network {network_id!r}"
        return [PlaceProblem("stop_id", why)]
    return []


def _priced_areas(feed: Feed, network_id: str) -> frozenset[str]:
    """The areas the network's fare leg rules price between (none for a flat fare)."""
    areas: set[str] = set()
    for rule in feed.fare_leg_rules:
        if rule.network_id == network_id:
            areas.update(a for a in (rule.from_area_id, rule.to_area_id) if a is not None)
    return frozenset(areas)


class UnpricedPlace(DomainError):
    """A validator's place the fare feed cannot price; the message names each field and why."""

    code = "validator_place_unpriced"

    def __init__(self, problems: list[PlaceProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
