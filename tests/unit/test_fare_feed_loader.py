"""The feed loader refuses every broken feed with a `FeedError` naming the file, row and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders.fares import (
    VALID,
    with_changes,
)
from ticketing.fares.errors import FeedError
from ticketing.fares.loader import HANOI_FEED_DIR, load_feed


def test_valid_synthetic_feed_loads_with_every_file() -> None:
    feed = load_feed(VALID)
    assert feed.default_rider_category_id == "adult"
    assert feed.passes["monthly"].network_ids == frozenset({"bus"})
    assert feed.caps[0].cap_vnd == 30000
    assert not feed.leg_rules_have_priority


def test_hanoi_feed_loads_the_same_from_a_directory_and_from_a_mapping() -> None:
    texts = {path.name: path.read_text(encoding="utf-8") for path in HANOI_FEED_DIR.glob("*.txt")}
    assert load_feed(HANOI_FEED_DIR) == load_feed(texts)


def test_missing_directory_is_a_feed_error(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="is not a directory"):
        load_feed(tmp_path / "nowhere")


def test_required_file_missing_is_named() -> None:
    with pytest.raises(FeedError) as error:
        load_feed(with_changes(fare_leg_rules=None))
    assert (error.value.file, error.value.row) == ("fare_leg_rules.txt", 0)


@pytest.mark.parametrize(
    ("changes", "file", "row", "field"),
    [
        pytest.param(
            {"fare_products": "fare_product_id,amount\nsingle,8000\n"},
            "fare_products.txt",
            1,
            "currency",
            id="required-column-missing",
        ),
        pytest.param(
            {"fare_products": "fare_product_id,amount,currency\nsingle,8000\n"},
            "fare_products.txt",
            2,
            "",
            id="row-with-too-few-values",
        ),
        pytest.param(
            {"fare_products": "fare_product_id,rider_category_id,amount,currency\ns,ghost,1,VND\n"},
            "fare_products.txt",
            2,
            "rider_category_id",
            id="unknown-rider-category",
        ),
        pytest.param(
            {"fare_products": "fare_product_id,fare_media_id,amount,currency\ns,paper,1,VND\n"},
            "fare_products.txt",
            2,
            "fare_media_id",
            id="unknown-fare-medium",
        ),
        pytest.param(
            {"fare_products": "fare_product_id,amount,currency\nsingle,8000.00,VND\n"},
            "fare_products.txt",
            2,
            "amount",
            id="vnd-amount-with-decimals",
        ),
        pytest.param(
            {"fare_products": "fare_product_id,amount,currency\nsingle,8,USD\n"},
            "fare_products.txt",
            2,
            "currency",
            id="currency-not-vnd",
        ),
        pytest.param(
            {"fare_products": "fare_product_id,amount,currency\nsingle,1,VND\nsingle,2,VND\n"},
            "fare_products.txt",
            3,
            "fare_product_id",
            id="duplicate-product-key",
        ),
        pytest.param(
            {
                "rider_categories": "rider_category_id,rider_category_name,"
                "is_default_fare_category\n"
                "a,A,1\nb,B,1\n"
            },
            "rider_categories.txt",
            0,
            "is_default_fare_category",
            id="two-default-categories",
        ),
        pytest.param(
            {"fare_media": "fare_media_id,fare_media_type\ncard,5\n"},
            "fare_media.txt",
            2,
            "fare_media_type",
            id="fare-media-type-out-of-range",
        ),
        pytest.param(
            {"networks": "network_id\nbus\nbus\n"},
            "networks.txt",
            3,
            "network_id",
            id="duplicate-network",
        ),
        pytest.param(
            {"route_networks": "network_id,route_id\nbus,b1\nrail,b1\n"},
            "route_networks.txt",
            3,
            "route_id",
            id="route-in-two-networks",
        ),
        pytest.param(
            {"route_networks": "network_id,route_id\ntram,b1\n"},
            "route_networks.txt",
            2,
            "network_id",
            id="route-in-unknown-network",
        ),
        pytest.param(
            {"stop_areas": "area_id,stop_id\nA,sZ\n"},
            "stop_areas.txt",
            2,
            "stop_id",
            id="unknown-stop-in-area",
        ),
        pytest.param(
            {"stop_areas": "area_id,stop_id\nZ,sA\n"},
            "stop_areas.txt",
            2,
            "area_id",
            id="unknown-area",
        ),
        pytest.param(
            {"stops": "stop_id,parent_station\nsA,ghost\n"},
            "stops.txt",
            2,
            "parent_station",
            id="unknown-parent-station",
        ),
        pytest.param(
            {"stops": "stop_id,location_type\nsA,7\n"},
            "stops.txt",
            2,
            "location_type",
            id="location-type-out-of-range",
        ),
        pytest.param(
            {
                "stops": "stop_id,location_type,parent_station\nsA,1,\nsA_gate,2,sA\n",
                "fare_leg_join_rules": "from_network_id,to_network_id,from_stop_id,to_stop_id\n"
                "bus,bus,sA_gate,sA\n",
            },
            "fare_leg_join_rules.txt",
            2,
            "from_stop_id",
            id="join-at-a-station-entrance",
        ),
        pytest.param(
            {"fare_leg_rules": "network_id,fare_product_id\ntram,single\n"},
            "fare_leg_rules.txt",
            2,
            "network_id",
            id="leg-rule-unknown-network",
        ),
        pytest.param(
            {"fare_leg_rules": "network_id,from_area_id,fare_product_id\nbus,Z,single\n"},
            "fare_leg_rules.txt",
            2,
            "from_area_id",
            id="leg-rule-unknown-area",
        ),
        pytest.param(
            {"fare_leg_rules": "network_id,fare_product_id\nbus,ghost\n"},
            "fare_leg_rules.txt",
            2,
            "fare_product_id",
            id="leg-rule-unknown-product",
        ),
        pytest.param(
            {
                "fare_leg_rules": "network_id,to_timeframe_group_id,fare_product_id\n"
                "bus,night,single\n"
            },
            "fare_leg_rules.txt",
            2,
            "to_timeframe_group_id",
            id="leg-rule-unknown-timeframe",
        ),
        pytest.param(
            {
                "fare_leg_rules": "leg_group_id,network_id,fare_product_id\ng1,bus,single\n"
                "g2,bus,single\n"
            },
            "fare_leg_rules.txt",
            3,
            "fare_product_id",
            id="same-leg-rule-in-two-groups",
        ),
        pytest.param(
            {"fare_leg_rules": "network_id,fare_product_id,rule_priority\nbus,single,-1\n"},
            "fare_leg_rules.txt",
            2,
            "rule_priority",
            id="negative-rule-priority",
        ),
        pytest.param(
            {
                "timeframes": "timeframe_group_id,start_time,end_time,service_id\n"
                "peak,07:00:00,09:00:00,all\npeak,08:30:00,10:00:00,all\n"
            },
            "timeframes.txt",
            3,
            "start_time",
            id="overlapping-timeframes",
        ),
        pytest.param(
            {
                "timeframes": "timeframe_group_id,start_time,end_time,service_id\n"
                "peak,09:00:00,07:00:00,all\n"
            },
            "timeframes.txt",
            2,
            "end_time",
            id="timeframe-ends-before-it-starts",
        ),
        pytest.param(
            {
                "timeframes": "timeframe_group_id,start_time,end_time,service_id\n"
                "peak,07:00:00,25:00:00,all\n"
            },
            "timeframes.txt",
            2,
            "end_time",
            id="timeframe-after-24h",
        ),
        pytest.param(
            {
                "timeframes": "timeframe_group_id,start_time,end_time,service_id\n"
                "peak,07:00:00,,all\n"
            },
            "timeframes.txt",
            2,
            "end_time",
            id="timeframe-start-without-end",
        ),
        pytest.param(
            {
                "timeframes": "timeframe_group_id,start_time,end_time,service_id\n"
                "peak,07:00:00,09:00:00,holidays\n"
            },
            "timeframes.txt",
            2,
            "service_id",
            id="timeframe-unknown-service",
        ),
        pytest.param(
            {"calendar_dates": "service_id,date,exception_type\nall,20250230,1\n"},
            "calendar_dates.txt",
            2,
            "date",
            id="impossible-date",
        ),
        pytest.param(
            {
                "fare_transfer_rules": "from_leg_group_id,to_leg_group_id,fare_transfer_type\n"
                "g_bus,g_bus,0\n"
            },
            "fare_transfer_rules.txt",
            2,
            "transfer_count",
            id="same-groups-without-count",
        ),
        pytest.param(
            {
                "fare_transfer_rules": "from_leg_group_id,to_leg_group_id,transfer_count,"
                "fare_transfer_type\ng_bus,,2,0\n"
            },
            "fare_transfer_rules.txt",
            2,
            "transfer_count",
            id="count-on-different-groups",
        ),
        pytest.param(
            {
                "fare_transfer_rules": "from_leg_group_id,to_leg_group_id,transfer_count,"
                "fare_transfer_type\ng_bus,g_bus,0,0\n"
            },
            "fare_transfer_rules.txt",
            2,
            "transfer_count",
            id="transfer-count-zero",
        ),
        pytest.param(
            {
                "fare_transfer_rules": "from_leg_group_id,to_leg_group_id,transfer_count,"
                "duration_limit,fare_transfer_type\ng_bus,g_bus,1,600,0\n"
            },
            "fare_transfer_rules.txt",
            2,
            "duration_limit_type",
            id="limit-without-type",
        ),
        pytest.param(
            {
                "fare_transfer_rules": "from_leg_group_id,to_leg_group_id,transfer_count,"
                "duration_limit,duration_limit_type,fare_transfer_type\ng_bus,g_bus,1,600,4,0\n"
            },
            "fare_transfer_rules.txt",
            2,
            "duration_limit_type",
            id="limit-type-out-of-range",
        ),
        pytest.param(
            {
                "fare_transfer_rules": "from_leg_group_id,to_leg_group_id,fare_transfer_type\n"
                "g_ghost,,0\n"
            },
            "fare_transfer_rules.txt",
            2,
            "from_leg_group_id",
            id="unknown-leg-group",
        ),
        pytest.param(
            {
                "fare_transfer_rules": "from_leg_group_id,to_leg_group_id,transfer_count,"
                "fare_transfer_type\ng_bus,g_bus,1,3\n"
            },
            "fare_transfer_rules.txt",
            2,
            "fare_transfer_type",
            id="transfer-type-out-of-range",
        ),
        pytest.param(
            {
                "fare_leg_join_rules": "from_network_id,to_network_id,from_stop_id,to_stop_id\n"
                "bus,bus,sA,\n"
            },
            "fare_leg_join_rules.txt",
            2,
            "to_stop_id",
            id="join-from-stop-without-to-stop",
        ),
        pytest.param(
            {"fare_leg_join_rules": "from_network_id,to_network_id\nbus,tram\n"},
            "fare_leg_join_rules.txt",
            2,
            "to_network_id",
            id="join-unknown-network",
        ),
        pytest.param(
            {"fare_passes": "fare_product_id,pass_period,route_scope\nghost,month,all\n"},
            "fare_passes.txt",
            2,
            "fare_product_id",
            id="pass-unknown-product",
        ),
        pytest.param(
            {"fare_passes": "fare_product_id,pass_period,route_scope\nmonthly,year,all\n"},
            "fare_passes.txt",
            2,
            "pass_period",
            id="pass-period-unknown",
        ),
        pytest.param(
            {"fare_pass_networks": "fare_product_id,network_id\n"},
            "fare_pass_networks.txt",
            0,
            "fare_product_id",
            id="pass-covering-no-network",
        ),
        pytest.param(
            {"fare_pass_networks": "fare_product_id,network_id\nmonthly,tram\n"},
            "fare_pass_networks.txt",
            2,
            "network_id",
            id="pass-unknown-network",
        ),
        pytest.param(
            {"fare_caps": "cap_id,cap_period,cap_amount,currency\nday,day,0,VND\n"},
            "fare_caps.txt",
            2,
            "cap_amount",
            id="cap-amount-not-positive",
        ),
        pytest.param(
            {
                "fare_caps": "cap_id,rider_category_id,cap_period,cap_amount,currency\n"
                "day,ghost,day,1000,VND\n"
            },
            "fare_caps.txt",
            2,
            "rider_category_id",
            id="cap-unknown-category",
        ),
    ],
)
def test_broken_feed_is_refused_naming_file_row_and_field(
    changes: dict[str, str], file: str, row: int, field: str
) -> None:
    with pytest.raises(FeedError) as error:
        load_feed(with_changes(**changes))
    assert (error.value.file, error.value.row, error.value.field) == (file, row, field)
    assert file in str(error.value)


def test_same_interval_on_another_service_is_not_an_overlap() -> None:
    feed = load_feed(
        with_changes(
            calendar_dates="service_id,date,exception_type\nholiday,20250902,1\n",
            timeframes="timeframe_group_id,start_time,end_time,service_id\n"
            "peak,07:00:00,09:00:00,all\npeak,07:00:00,09:00:00,holiday\n",
        )
    )
    assert len(feed.timeframes["peak"]) == 2


def test_adjacent_timeframes_do_not_overlap() -> None:
    feed = load_feed(
        with_changes(
            timeframes="timeframe_group_id,start_time,end_time,service_id\n"
            "peak,07:00:00,09:00:00,all\npeak,09:00:00,24:00:00,all\n"
        )
    )
    assert [frame.end_s for frame in feed.timeframes["peak"]] == [9 * 3600, 24 * 3600]


def test_feed_error_has_a_stable_code() -> None:
    with pytest.raises(FeedError) as error:
        load_feed(with_changes(fare_products=None))
    assert error.value.code == "fare_feed_invalid"
