"""Read a rate table from the JSON text of a tariff file, checking it whole.

Every problem is a `TariffFileInvalid` naming the file, the field as a path
(`versions[0].classes.car.periods[1].rule.tiers[0].amount_vnd`) and what is wrong. A table that
parses prices every stay it covers. The format is described in `docs/parking-tariffs.md`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parking.domain import limits
from parking.domain.errors import TariffFileInvalid
from parking.domain.tariff import (
    MINUTES_PER_DAY,
    NO_RESERVATION_FEES,
    BlockRule,
    ClassTariff,
    FlatRule,
    Period,
    RateTable,
    ReservationTerms,
    TariffVersion,
    Tier,
    VehicleClass,
)

FORMAT = "tapledger-parking-tariff/1"
CURRENCY = "VND"
VERSION_NUMBER_MAX = 1_000_000
TABLE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
TIME_OF_DAY_PATTERN = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class _At:
    """A value of the document and the path that leads to it, for error messages."""

    __slots__ = ("file", "path", "value")

    def __init__(self, file: str, path: str, value: object) -> None:
        self.file = file
        self.path = path
        self.value = value

    def fail(self, message: str) -> NoReturn:
        raise TariffFileInvalid(self.file, self.path, message)

    def fields(self, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, _At]:
        """The members of an object, each required one present and no unknown one."""
        if not isinstance(self.value, dict):
            self.fail("must be an object")
        for name in required:
            if name not in self.value:
                self.fail(f"field {name!r} is missing")
        for name in self.value:
            if name not in required and name not in optional:
                self.fail(f"unknown field {name!r}")
        prefix = f"{self.path}." if self.path else ""
        return {name: _At(self.file, prefix + name, item) for name, item in self.value.items()}

    def items(self, at_least: int, at_most: int) -> list[_At]:
        if not isinstance(self.value, list):
            self.fail("must be a list")
        if not at_least <= len(self.value) <= at_most:
            self.fail(f"must hold {at_least}..{at_most} items, not {len(self.value)}")
        return [_At(self.file, f"{self.path}[{i}]", item) for i, item in enumerate(self.value)]

    def integer(self, low: int, high: int) -> int:
        # `bool` is an `int` to Python; a tariff never means `true` VND.
        if type(self.value) is not int:
            self.fail("must be an integer (VND and minutes are whole numbers)")
        if not low <= self.value <= high:
            self.fail(f"{self.value} is outside {low}..{high}")
        return self.value

    def text(self, max_chars: int = limits.TEXT_MAX_CHARS) -> str:
        if not isinstance(self.value, str) or not 0 < len(self.value) <= max_chars:
            self.fail(f"must be a text of 1..{max_chars} characters")
        return self.value

    def instant(self) -> datetime:
        text = self.text(64)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not an ISO 8601 date and time")
        if parsed.utcoffset() is None:
            self.fail(f"{text!r} has no UTC offset: an instant needs one")
        return parsed

    def time_of_day(self) -> int:
        text = self.text(5)
        matched = TIME_OF_DAY_PATTERN.fullmatch(text)
        if matched is None:
            self.fail(f"{text!r} is not a local time HH:MM from 00:00 to 23:59")
        return int(matched[1]) * 60 + int(matched[2])


def parse_rate_table(text: str, file: str) -> RateTable:
    """Parse and check the JSON text of one tariff file; `file` names it in errors."""
    if len(text) > limits.TARIFF_FILE_BYTES_MAX:
        raise TariffFileInvalid(file, "", f"longer than {limits.TARIFF_FILE_BYTES_MAX} characters")
    try:
        document = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as error:
        raise TariffFileInvalid(file, "", f"field {error.args[0]!r} appears twice") from None
    except ValueError as error:
        raise TariffFileInvalid(file, "", f"not JSON: {error}") from None
    root = _At(file, "", document)
    fields = root.fields(
        ("format", "table_id", "name", "time_zone", "currency", "versions"), ("source",)
    )
    if fields["format"].value != FORMAT:
        fields["format"].fail(f"must be {FORMAT!r}")
    if fields["currency"].value != CURRENCY:
        fields["currency"].fail(f"must be {CURRENCY!r}: amounts are whole dong")
    table_id = fields["table_id"].text(limits.TABLE_ID_MAX_CHARS)
    if TABLE_ID_PATTERN.fullmatch(table_id) is None:
        fields["table_id"].fail("must be lower-case letters, digits and '-'")
    zone_name = fields["time_zone"].text(64)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        fields["time_zone"].fail(f"{zone_name!r} is not an IANA time zone")
    if "source" in fields:
        fields["source"].text(limits.NOTE_MAX_CHARS)
    versions = _versions(fields["versions"])
    return RateTable(table_id, fields["name"].text(), zone, versions)


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _versions(at: _At) -> tuple[TariffVersion, ...]:
    versions = tuple(_version(item) for item in at.items(1, limits.VERSIONS_MAX))
    for i, (before, after) in enumerate(pairwise(versions), start=1):
        where = _At(at.file, f"{at.path}[{i}]", None)
        if after.version <= before.version:
            where.fail("version numbers must increase")
        if before.valid_to != after.valid_from:
            where.fail("valid_from must be the previous version's valid_to: no gap, no overlap")
    return versions


def _version(at: _At) -> TariffVersion:
    fields = at.fields(("version", "valid_from", "valid_to", "classes"), ("note",))
    valid_from = fields["valid_from"].instant()
    valid_to = None if fields["valid_to"].value is None else fields["valid_to"].instant()
    if valid_to is not None and valid_to <= valid_from:
        fields["valid_to"].fail("must be after valid_from")
    classes = fields["classes"].fields((), tuple(VehicleClass))
    if not classes:
        fields["classes"].fail("must price at least one vehicle class")
    return TariffVersion(
        version=fields["version"].integer(1, VERSION_NUMBER_MAX),
        valid_from=valid_from,
        valid_to=valid_to,
        classes={VehicleClass(name): _class_tariff(item) for name, item in classes.items()},
        note=fields["note"].text(limits.NOTE_MAX_CHARS) if "note" in fields else "",
    )


def _class_tariff(at: _At) -> ClassTariff:
    fields = at.fields(("max_stay_minutes", "periods"), ("day_cap_vnd", "reservation"))
    max_stay_minutes = fields["max_stay_minutes"].integer(1, limits.STAY_LIMIT_MINUTES)
    cap = fields.get("day_cap_vnd")
    day_cap_vnd = None if cap is None else cap.integer(1, limits.TARIFF_AMOUNT_MAX_VND)
    periods = tuple(_period(item) for item in fields["periods"].items(1, limits.PERIODS_MAX))
    _check_periods_tile_the_day(fields["periods"], periods)
    ordered = tuple(sorted(periods, key=lambda period: period.from_minute))
    terms = _reservation_terms(fields["reservation"]) if "reservation" in fields else None
    return ClassTariff.of(
        ordered,
        timedelta(minutes=max_stay_minutes),
        day_cap_vnd,
        NO_RESERVATION_FEES if terms is None else terms,
    )


def _reservation_terms(at: _At) -> ReservationTerms:
    fields = at.fields(("free_cancel_minutes", "late_cancel_vnd", "no_show_vnd"))
    return ReservationTerms(
        free_cancel=timedelta(
            minutes=fields["free_cancel_minutes"].integer(0, limits.FREE_CANCEL_MINUTES_MAX)
        ),
        late_cancel_vnd=fields["late_cancel_vnd"].integer(0, limits.TARIFF_AMOUNT_MAX_VND),
        no_show_vnd=fields["no_show_vnd"].integer(0, limits.TARIFF_AMOUNT_MAX_VND),
    )


def _period(at: _At) -> Period:
    fields = at.fields(("name", "from", "to", "rule"))
    name = fields["name"].text(32)
    rule = _rule(fields["rule"])
    return Period(name, fields["from"].time_of_day(), fields["to"].time_of_day(), rule)


def _check_periods_tile_the_day(at: _At, periods: tuple[Period, ...]) -> None:
    if len({period.name for period in periods}) != len(periods):
        at.fail("period names must differ")
    if len(periods) == 1:
        if periods[0].from_minute != periods[0].to_minute:
            at.fail("a single period lasts all day: its from and to must be equal")
        return
    covered = 0
    for period in periods:
        if period.from_minute == period.to_minute:
            at.fail(f"period {period.name!r} is empty; only a single period may last all day")
        covered += (period.to_minute - period.from_minute) % MINUTES_PER_DAY
    starts = {period.from_minute for period in periods}
    if covered != MINUTES_PER_DAY or {period.to_minute for period in periods} != starts:
        at.fail("periods must cover the day exactly: each ends where another begins")


def _rule(at: _At) -> BlockRule | FlatRule:
    kind = at.fields(("kind",), ("tiers", "visit_blocks_max", "turns", "turn_vnd"))["kind"]
    parsers: dict[object, Callable[[_At], BlockRule | FlatRule]] = {
        "blocks": _block_rule,
        "flat": _flat_rule,
    }
    parser = parsers.get(kind.value)
    if parser is None:
        kind.fail("must be 'blocks' or 'flat'")
    return parser(at)


def _flat_rule(at: _At) -> FlatRule:
    fields = at.fields(("kind", "turns", "turn_vnd"))
    turns = fields["turns"].integer(1, limits.TURNS_MAX)
    turn_vnd = fields["turn_vnd"].integer(0, limits.TARIFF_AMOUNT_MAX_VND)
    plural = "turn" if turns == 1 else "turns"
    return FlatRule(turns, turn_vnd, f"{turns} {plural} of {turn_vnd:,} VND per visit")


def _block_rule(at: _At) -> BlockRule:
    fields = at.fields(("kind", "tiers"), ("visit_blocks_max",))
    cap = fields.get("visit_blocks_max")
    visit_blocks_max = None if cap is None else cap.integer(1, limits.TURNS_MAX)
    items = fields["tiers"].items(1, limits.TIERS_MAX)
    raw = [_raw_tier(item) for item in items]
    if raw[0][0] != 0:
        items[0].fail("the first tier must start at from_minute 0")
    tiers = []
    for i, (from_minute, block_minutes, amount_vnd) in enumerate(raw):
        next_from = raw[i + 1][0] if i + 1 < len(raw) else None
        if next_from is not None and next_from <= from_minute:
            items[i + 1].fail("from_minute must increase from tier to tier")
        if next_from is not None and (next_from - from_minute) % block_minutes:
            items[i].fail("a tier must hold a whole number of its blocks")
        label = f"{amount_vnd:,} VND per started {block_minutes} min"
        if next_from is not None:
            label += f" (minute {from_minute} to {next_from} of the stay)"
        elif from_minute:
            label += f" (from minute {from_minute} of the stay)"
        tiers.append(
            Tier(
                timedelta(minutes=from_minute),
                timedelta(minutes=block_minutes),
                amount_vnd,
                label,
            )
        )
    return BlockRule(tuple(tiers), visit_blocks_max)


def _raw_tier(at: _At) -> tuple[int, int, int]:
    fields = at.fields(("from_minute", "block_minutes", "amount_vnd"))
    return (
        fields["from_minute"].integer(0, limits.TIER_FROM_MINUTES_MAX),
        fields["block_minutes"].integer(1, limits.BLOCK_MINUTES_MAX),
        fields["amount_vnd"].integer(0, limits.TARIFF_AMOUNT_MAX_VND),
    )
