"""Rate tables the parking tariff tests share: the shipped Hanoi tables, and Dong Da's with a
hypothetical second version (new prices from 2026-01-01) for stays that cross a version change."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from parking.adapters.tariff_files import HANOI_DONG_DA, HANOI_IPARKING, load_rate_table
from parking.domain.tariff import RateTable
from parking.domain.tariff_format import parse_rate_table

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
NEW_YEAR_2026 = datetime(2026, 1, 1, tzinfo=HANOI)


@cache
def iparking() -> RateTable:
    return load_rate_table(HANOI_IPARKING)


@cache
def dong_da() -> RateTable:
    return load_rate_table(HANOI_DONG_DA)


def dong_da_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(HANOI_DONG_DA.read_text())
    return document


@cache
def dong_da_revised(change: datetime = NEW_YEAR_2026) -> RateTable:
    """Dong Da's table, superseded at `change` by a version charging 30,000/40,000/50,000 an
    hour (invented prices: a city revising its table)."""
    document = dong_da_document()
    first = document["versions"][0]
    second = json.loads(json.dumps(first))
    first["valid_to"] = change.isoformat()
    second["version"] = 2
    second["valid_from"] = change.isoformat()
    second["note"] = "hypothetical revision for tests"
    tiers = second["classes"]["car"]["periods"][0]["rule"]["tiers"]
    for tier, amount_vnd in zip(tiers, (30_000, 40_000, 50_000), strict=True):
        tier["amount_vnd"] = amount_vnd
    document["versions"].append(second)
    return parse_rate_table(json.dumps(document), "dong-da-revised.json")


def small_document() -> dict[str, Any]:
    """A valid table for rule and loader tests: cars pay 20,000 per started hour by day and
    10,000 per started hour by night, at most 6 night hours per night; a large vehicle pays a
    flat 100,000 per visit of the day."""
    return {
        "format": "tapledger-parking-tariff/1",
        "table_id": "test-street",
        "name": "A test street",
        "time_zone": "Asia/Ho_Chi_Minh",
        "currency": "VND",
        "versions": [
            {
                "version": 1,
                "valid_from": "2025-01-01T00:00:00+07:00",
                "valid_to": None,
                "classes": {
                    "car": {
                        "max_stay_minutes": 1440,
                        "periods": [
                            {
                                "name": "day",
                                "from": "06:00",
                                "to": "18:00",
                                "rule": {
                                    "kind": "blocks",
                                    "tiers": [
                                        {"from_minute": 0, "block_minutes": 60, "amount_vnd": 20000}
                                    ],
                                },
                            },
                            {
                                "name": "night",
                                "from": "18:00",
                                "to": "06:00",
                                "rule": {
                                    "kind": "blocks",
                                    "visit_blocks_max": 6,
                                    "tiers": [
                                        {"from_minute": 0, "block_minutes": 60, "amount_vnd": 10000}
                                    ],
                                },
                            },
                        ],
                    },
                    "large": {
                        "max_stay_minutes": 600,
                        "periods": [
                            {
                                "name": "day",
                                "from": "00:00",
                                "to": "00:00",
                                "rule": {"kind": "flat", "turns": 1, "turn_vnd": 100000},
                            }
                        ],
                    },
                },
            }
        ],
    }


def small_table() -> RateTable:
    return parse_rate_table(json.dumps(small_document()), "small.json")
