"""Operators and lots from a file: the Hanoi defaults shipped with the package, or any file in
the same format (`docs/parking-api.md`, "Lots from a file")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parking.domain.catalogue import LotSpec, OpeningHours
from parking.domain.errors import InvalidLot
from parking.domain.tariff import VehicleClass

LOTS_FORMAT = "tapledger-parking-lots/1"
HANOI_DEFAULT_LOTS = Path(__file__).resolve().parents[1] / "lots" / "hanoi-default.json"
LOT_FILE_BYTES_MAX = 1_000_000


@dataclass(frozen=True)
class LotFile:
    operators: list[tuple[str, str]]
    lots: list[LotSpec]


def _minute(text: str) -> int:
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes)


def _lot(item: dict[str, Any]) -> LotSpec:
    hours = item.get("opening_hours")
    return LotSpec(
        lot_id=item["lot_id"],
        operator_id=item["operator_id"],
        name=item["name"],
        address=item["address"],
        lat=float(item["lat"]),
        lon=float(item["lon"]),
        opening_hours=None
        if hours is None
        else OpeningHours(_minute(hours["opens"]), _minute(hours["closes"])),
        capacity={VehicleClass(cls): int(n) for cls, n in item["capacity"].items()},
        table_id=item["table_id"],
    )


def load_lot_file(path: Path = HANOI_DEFAULT_LOTS) -> LotFile:
    """Reads a lots file; a malformed one is `InvalidLot` naming the file."""
    try:
        data = json.loads(path.read_bytes()[:LOT_FILE_BYTES_MAX])
        if data.get("format") != LOTS_FORMAT:
            raise InvalidLot(f"{path.name}: format must be {LOTS_FORMAT!r}")
        operators = [(op["operator_id"], op["name"]) for op in data["operators"]]
        lots = [_lot(item) for item in data["lots"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidLot(f"{path.name}: not a lots file ({error})") from None
    for lot in lots:
        lot.check()
    return LotFile(operators, lots)
