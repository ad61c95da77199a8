"""Which network each route belongs to, in either of the two forms the GTFS reference allows.

A feed gives each route's network in the `network_id` column of routes.txt, or in networks.txt
with route_networks.txt. The reference forbids the two files when routes.txt has the column,
since a route would then have two sources that could disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from ticketing.fares.errors import FeedError
from ticketing.fares.tables import Table

ROUTES_FILE = "routes.txt"
NETWORK_FILES = ("networks.txt", "route_networks.txt")

COLUMNS: dict[str, tuple[str, ...]] = {
    "networks.txt": ("network_id",),
    "route_networks.txt": ("network_id", "route_id"),
    ROUTES_FILE: ("route_id",),
}

# network_id -> network_name (empty when the feed names none), and route_id -> network_id.
Networks = tuple[dict[str, str], dict[str, str]]


def networks(tables: Mapping[str, Table]) -> Networks:
    routes = tables[ROUTES_FILE]
    if "network_id" in routes.columns:
        for name in NETWORK_FILES:
            # A file's columns are empty only when the feed does not have it.
            if tables[name].columns:
                raise FeedError(
                    name,
                    0,
                    "",
                    "must be left out when routes.txt has a network_id column: give each "
                    "route's network in routes.txt or in networks.txt and route_networks.txt",
                )
        return _from_routes(routes)
    return _from_network_files(tables["networks.txt"], tables["route_networks.txt"])


def _from_routes(routes: Table) -> Networks:
    """A network exists when a route names it; a route with an empty network_id has none."""
    route_networks: dict[str, str] = {}
    seen: set[str] = set()
    for row in routes:
        route_id = row.required("route_id")
        if route_id in seen:
            raise row.error("route_id", f"{route_id!r} is defined twice")
        seen.add(route_id)
        network_id = row.optional("network_id")
        if network_id is not None:
            route_networks[route_id] = network_id
    return dict.fromkeys(route_networks.values(), ""), route_networks


def _from_network_files(network_table: Table, route_table: Table) -> Networks:
    names: dict[str, str] = {}
    for row in network_table:
        network_id = row.required("network_id")
        if network_id in names:
            raise row.error("network_id", f"{network_id!r} is defined twice")
        names[network_id] = row.optional("network_name") or ""
    route_networks: dict[str, str] = {}
    for row in route_table:
        route_id = row.required("route_id")
        if route_id in route_networks:
            raise row.error("route_id", f"{route_id!r} is defined twice")
        network_id = row.required("network_id")
        if network_id not in names:
            raise row.error("network_id", f"{network_id!r} is not defined")
        route_networks[route_id] = network_id
    return names, route_networks
