"""A feed may give each route's network in routes.txt (network_id) instead of networks.txt and
route_networks.txt, never in both forms at once (GTFS reference)."""

from __future__ import annotations

import pytest

from tests.builders.fares import with_changes
from ticketing.fares.errors import FeedError
from ticketing.fares.loader import load_feed

ROUTES_WITH_NETWORKS = "route_id,route_short_name,network_id\nb1,01,bus\nr1,2A,rail\nx1,X,\n"


def test_routes_may_give_each_routes_network_instead_of_the_network_files() -> None:
    feed = load_feed(with_changes(networks=None, route_networks=None, routes=ROUTES_WITH_NETWORKS))
    assert dict(feed.route_networks) == {"b1": "bus", "r1": "rail"}
    assert set(feed.networks) == {"bus", "rail"}
    assert feed.fare_leg_rules[0].network_id == "bus"


def test_routes_without_a_network_column_leave_networks_to_the_network_files() -> None:
    feed = load_feed(with_changes(routes="route_id,route_short_name\nb1,01\n"))
    assert dict(feed.route_networks) == {"b1": "bus"}


@pytest.mark.parametrize(
    ("changes", "forbidden"),
    [
        pytest.param({"route_networks": None}, "networks.txt", id="with-networks"),
        pytest.param({"networks": None}, "route_networks.txt", id="with-route-networks"),
        pytest.param({}, "networks.txt", id="with-both"),
    ],
)
def test_networks_in_routes_and_in_the_network_files_at_once_are_refused(
    changes: dict[str, str | None], forbidden: str
) -> None:
    with pytest.raises(FeedError, match=r"routes\.txt") as error:
        load_feed(with_changes(routes=ROUTES_WITH_NETWORKS, **changes))
    assert (error.value.file, error.value.row) == (forbidden, 0)


@pytest.mark.parametrize(
    ("routes", "row", "field"),
    [
        pytest.param("route_id,network_id\nb1,bus\nb1,rail\n", 3, "route_id", id="route-twice"),
        pytest.param("route_id,network_id\n,bus\n", 2, "route_id", id="route-without-id"),
    ],
)
def test_broken_routes_file_is_refused_naming_row_and_field(
    routes: str, row: int, field: str
) -> None:
    with pytest.raises(FeedError) as error:
        load_feed(with_changes(networks=None, route_networks=None, routes=routes))
    assert (error.value.file, error.value.row, error.value.field) == ("routes.txt", row, field)


def test_leg_rule_naming_a_network_no_route_has_is_refused() -> None:
    routes = "route_id,network_id\nr1,rail\n"
    with pytest.raises(FeedError) as error:
        load_feed(with_changes(networks=None, route_networks=None, routes=routes))
    assert (error.value.file, error.value.field) == ("fare_leg_rules.txt", "network_id")
