"""A fare_leg_join_rules.txt row naming a station (stops.txt location_type 1) matches legs that
alight or board at its platforms (parent_station), as the GTFS reference says."""

from __future__ import annotations

from tests.builders.fares import JOINED_RULES, engine, leg
from ticketing.fares.engine import FareEngine

# Two stations, each with platforms, as the reference models them: location_type 1 is a station,
# a platform names its station in parent_station.
STATIONS_WITH_PLATFORMS = (
    "stop_id,location_type,parent_station\n"
    "sA,,\nsC,,\nsD,,\n"
    "sB,1,\nsB_platform,0,sB\nsB_platform2,0,sB\n"
    "sB_other,1,\nsB_other_platform,,sB_other\n"
)


def stations_engine(join_from: str, join_to: str) -> FareEngine:
    return engine(
        fare_leg_rules=JOINED_RULES,
        stops=STATIONS_WITH_PLATFORMS,
        fare_leg_join_rules=(
            "from_network_id,to_network_id,from_stop_id,to_stop_id\n"
            f"rail,rail,{join_from},{join_to}\n"
        ),
    )


def test_join_rule_naming_stations_matches_legs_at_their_platforms() -> None:
    first = leg("r1", "sA", "sB_platform")
    second = leg("r1", "sB_other_platform", "sC", at=first.arrival)
    fare = stations_engine("sB", "sB_other").price([first, second])
    assert fare.total_vnd == 2500
    assert fare.legs[0].leg_indexes == (0, 1)


def test_join_rule_naming_a_station_does_not_match_another_stations_platform() -> None:
    first = leg("r1", "sA", "sB_platform")
    stays_in_sb = leg("r1", "sB_platform2", "sC", at=first.arrival)
    assert stations_engine("sB", "sB_other").price([first, stays_in_sb]).total_vnd == 4000


def test_join_rule_naming_a_platform_matches_that_platform_only() -> None:
    named = stations_engine("sB_platform", "sB_other_platform")
    first = leg("r1", "sA", "sB_platform")
    sibling = leg("r1", "sA", "sB_platform2")
    onward = leg("r1", "sB_other_platform", "sC", at=first.arrival)
    assert named.price([first, onward]).total_vnd == 2500
    assert named.price([sibling, onward]).total_vnd == 4000
