"""Fare feeds to load and fare rules to match, shared by the fare tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ticketing.fares.engine import FareEngine
from ticketing.fares.journey import Leg
from ticketing.fares.loader import load_feed

VALID = {
    "rider_categories.txt": (
        "rider_category_id,rider_category_name,is_default_fare_category\nadult,Adult,1\nkid,Kid,0\n"
    ),
    "fare_media.txt": "fare_media_id,fare_media_type\ncard,2\n",
    "networks.txt": "network_id\nbus\nrail\n",
    "route_networks.txt": "network_id,route_id\nbus,b1\n",
    "areas.txt": "area_id\nA\n",
    "stops.txt": "stop_id,parent_station\nsA,\n",
    "stop_areas.txt": "area_id,stop_id\nA,sA\n",
    "calendar.txt": (
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        "all,1,1,1,1,1,1,1,20250101,20251231\n"
    ),
    "timeframes.txt": (
        "timeframe_group_id,start_time,end_time,service_id\npeak,07:00:00,09:00:00,all\n"
    ),
    "fare_products.txt": (
        "fare_product_id,rider_category_id,fare_media_id,amount,currency\n"
        "single,,card,8000,VND\nsingle,kid,card,0,VND\nmonthly,,card,200000,VND\n"
    ),
    "fare_leg_rules.txt": (
        "leg_group_id,network_id,from_area_id,from_timeframe_group_id,fare_product_id\n"
        "g_bus,bus,A,peak,single\n"
    ),
    "fare_transfer_rules.txt": (
        "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,"
        "fare_transfer_type,fare_product_id\ng_bus,g_bus,-1,3600,1,0,\n"
    ),
    "fare_leg_join_rules.txt": "from_network_id,to_network_id,from_stop_id,to_stop_id\nbus,bus,,\n",
    "fare_passes.txt": "fare_product_id,pass_period,route_scope\nmonthly,month,all\n",
    "fare_pass_networks.txt": "fare_product_id,network_id\nmonthly,bus\n",
    "fare_caps.txt": (
        "cap_id,rider_category_id,cap_period,cap_amount,currency\nday,adult,day,30000,VND\n"
    ),
}


def with_changes(**files: str | None) -> dict[str, str]:
    texts = dict(VALID)
    for stem, text in files.items():
        if text is None:
            texts.pop(f"{stem}.txt")
        else:
            texts[f"{stem}.txt"] = text
    return texts


HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


MONDAY = datetime(2025, 6, 2, 8, 0, tzinfo=HANOI)


RIDE = timedelta(minutes=30)


NETWORK_OF_ROUTE = {"b1": "bus", "r1": "rail", "f1": "ferry"}


BASE = {
    "rider_categories.txt": (
        "rider_category_id,rider_category_name,is_default_fare_category\n"
        "adult,Adult,1\nsenior,Senior,0\n"
    ),
    "fare_media.txt": "fare_media_id,fare_media_type\ncard,2\napp,4\n",
    "networks.txt": "network_id\nbus\nrail\nferry\n",
    "route_networks.txt": "network_id,route_id\nbus,b1\nrail,r1\nferry,f1\n",
    "areas.txt": "area_id\nA\nB\nC\nD\n",
    "stops.txt": "stop_id,parent_station\nsA,\nsB,\nsC,\nsD,\nsB_platform,sB\nsB_other,\n",
    "stop_areas.txt": "area_id,stop_id\nA,sA\nB,sB\nC,sC\nD,sD\nB,sB_other\n",
    "fare_products.txt": (
        "fare_product_id,rider_category_id,fare_media_id,amount,currency\n"
        "p100,,,100,VND\np200,,,200,VND\np300,,,300,VND\np500,,,500,VND\n"
        "p1000,,,1000,VND\np1500,,,1500,VND\np2000,,,2000,VND\np2500,,,2500,VND\n"
        "p3000,,,3000,VND\np4000,,,4000,VND\nminus500,,,-500,VND\nminus9000,,,-9000,VND\n"
        "card_only,,card,700,VND\nsenior_free,,,1000,VND\nsenior_free,senior,,0,VND\n"
        "day_pass,,,3000,VND\n"
    ),
}


BUS_RAIL_FERRY_RULES = (
    "leg_group_id,network_id,fare_product_id\n"
    "g_bus,bus,p1000\ng_rail,rail,p2000\ng_ferry,ferry,p500\n"
)


def engine(**files: str) -> FareEngine:
    texts = dict(BASE)
    texts.update({f"{stem}.txt": text for stem, text in files.items()})
    return FareEngine(load_feed(texts))


def leg(
    route: str,
    origin: str = "sA",
    destination: str = "sB",
    at: datetime = MONDAY,
    *,
    duration: timedelta = RIDE,
    category: str = "adult",
    medium: str = "card",
) -> Leg:
    network = NETWORK_OF_ROUTE[route]
    return Leg(network, route, origin, destination, at, at + duration, category, medium)


CALENDAR = (
    "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
    "weekdays,1,1,1,1,1,0,0,20250101,20251231\n"
)


PEAK = "timeframe_group_id,start_time,end_time,service_id\npeak,07:00:00,09:00:00,weekdays\n"


PEAK_RULES = (
    "network_id,from_timeframe_group_id,to_timeframe_group_id,fare_product_id\n"
    "bus,peak,,p4000\nbus,,,p1500\n"
)


JOINED_RULES = (
    "network_id,from_area_id,to_area_id,fare_product_id\n"
    "rail,A,C,p2500\nrail,A,B,p2000\nrail,B,C,p2000\n"
)


PASS_FILES = {
    "fare_passes": "fare_product_id,pass_period,route_scope\nday_pass,day,all\n",
    "fare_pass_networks": "fare_product_id,network_id\nday_pass,bus\n",
}
