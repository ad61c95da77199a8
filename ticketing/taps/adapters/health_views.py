"""The fleet as staff see it: every registered validator, its latest health report, and flags.

One row per validator, made when it is registered and replaced by each newer report. The flags
are judged when read, against the limits below, so a device that stopped reporting turns stale
without any event:

- `stale`: no report for `HEALTH_STALE_S` (five syncs at the default interval);
- `offline`: no successful sync of its trust for `OFFLINE_S`, as its latest report says (its
  clock corrected by the offset it measured), or never one;
- `behind_deny_list`: when it last reported, it lacked a deny-list entry listed more than
  `DENY_LIST_GRACE_S` before (a card blocked a moment before a report is not held against it);
- `deep_outbox`: more than `OUTBOX_DEPTH_DEEP` taps waiting, or the oldest older than
  `OUTBOX_AGE_DEEP_S`;
- `clock_skewed`: its clock off the backend's by more than `CLOCK_SKEW_FLAG_MS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    exists,
    insert,
    select,
    update,
)

from ticketing.accounts.adapters.read_model import aware
from ticketing.cards.adapters.card_views import deny_list
from ticketing.shared.adapters.follower import FOLLOW_SECTION_MAX, Follower
from ticketing.taps.domain.validator import Validator
from ticketing.taps.domain.validator_health import (
    ETAG_MAX_CHARS,
    SOFTWARE_VERSION_MAX_CHARS,
    ValidatorHealthReport,
)

PROJECTION_NAME = "validator_health"
HEALTH_STALE_S = 300
OFFLINE_S = 900
DENY_LIST_GRACE_S = 30
OUTBOX_DEPTH_DEEP = 1_000
OUTBOX_AGE_DEEP_S = 900
# The tap path refuses a tap stamped further than this from its clock (DEVICE_CLOCK_SKEW_S_MAX).
CLOCK_SKEW_FLAG_MS = 30_000
# Validators read from the table at a time while a filtered listing fills its page.
FLEET_SCAN_CHUNK = 1_000
KIND_MAX_CHARS = 32

HealthFlag = Literal["stale", "offline", "behind_deny_list", "deep_outbox", "clock_skewed"]
HEALTH_FLAGS: tuple[HealthFlag, ...] = (
    "stale",
    "offline",
    "behind_deny_list",
    "deep_outbox",
    "clock_skewed",
)

metadata = MetaData()

validator_health = Table(
    "validator_health",
    metadata,
    Column("validator_id", BigInteger, primary_key=True),
    Column("kind", String(KIND_MAX_CHARS), nullable=False),
    Column("location", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=True),
    Column("sent_at_ms", BigInteger, nullable=True),
    Column("outbox_depth", BigInteger, nullable=True),
    Column("oldest_tap_age_s", BigInteger, nullable=True),
    Column("last_upload_at", BigInteger, nullable=True),
    Column("last_sync_at", BigInteger, nullable=True),
    Column("clock_offset_ms", BigInteger, nullable=True),
    Column("software_version", String(SOFTWARE_VERSION_MAX_CHARS), nullable=True),
    Column("keys_version", BigInteger, nullable=True),
    Column("keys_etag", String(ETAG_MAX_CHARS), nullable=True),
    Column("deny_version", BigInteger, nullable=True),
    Column("config_etag", String(ETAG_MAX_CHARS), nullable=True),
    # The report's arrival less the grace: deny-list entries listed before it count against it.
    Column("deny_cutoff_at", DateTime(timezone=True), nullable=True),
    Column("position", BigInteger, nullable=False),
)

_REPORT_FIELDS = (
    "sent_at_ms",
    "outbox_depth",
    "oldest_tap_age_s",
    "last_upload_at",
    "last_sync_at",
    "clock_offset_ms",
    "software_version",
    "keys_version",
    "keys_etag",
    "deny_version",
    "config_etag",
)


class HealthProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = (
        Validator.Registered.TOPIC,
        ValidatorHealthReport.HealthReported.TOPIC,
    )
    tables: tuple[Table, ...] = (validator_health,)

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        for e in events:
            if isinstance(e, Validator.Registered):
                conn.execute(
                    insert(validator_health).values(
                        validator_id=e.validator_id,
                        kind=e.kind,
                        location=e.location,
                        position=position,
                    )
                )
            elif isinstance(e, ValidatorHealthReport.HealthReported):
                self._report(conn, e, position)

    @staticmethod
    def _report(conn: Connection, e: Any, position: int) -> None:
        values = {name: getattr(e, name) for name in _REPORT_FIELDS}
        values.update(
            received_at=e.at,
            deny_cutoff_at=e.at - timedelta(seconds=DENY_LIST_GRACE_S),
            position=position,
        )
        row = validator_health.c
        # A report that arrives out of order (two workers) never replaces a newer one.
        conn.execute(
            update(validator_health)
            .where(row.validator_id == e.validator_id)
            .where((row.sent_at_ms.is_(None)) | (row.sent_at_ms < e.sent_at_ms))
            .values(**values)
        )


class HealthFollower(Follower):
    def __init__(self, app: Any, engine: Engine, *, section_size: int = FOLLOW_SECTION_MAX) -> None:
        super().__init__(app, engine, HealthProjection(), section_size=section_size)


@dataclass(frozen=True)
class FleetRow:
    validator_id: int
    kind: str
    location: int
    report: dict[str, Any] | None  # the latest report's fields and `received_at`; None if none
    flags: tuple[HealthFlag, ...]


@dataclass(frozen=True)
class FleetPage:
    rows: list[FleetRow]
    next_after: int | None  # pass back as `after` for the next page; None at the end


class HealthViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def fleet(
        self, *, now: datetime, after: int, limit: int, flag: HealthFlag | None = None
    ) -> FleetPage:
        """Validators with ids above `after`, in id order, with their flags; only those raising
        `flag` when given. A filtered page scans on until it is full or the fleet ends."""
        found: list[FleetRow] = []
        cursor = after
        while True:
            chunk = self._chunk(cursor)
            for record in chunk:
                cursor = int(record["validator_id"])
                row = _fleet_row(record, now)
                if flag is None or flag in row.flags:
                    found.append(row)
                    if len(found) == limit:
                        return FleetPage(found, cursor)
            if len(chunk) < FLEET_SCAN_CHUNK:
                return FleetPage(found, None)

    def _chunk(self, after: int) -> list[dict[str, Any]]:
        row = validator_health.c
        entry = deny_list.c
        lacks_entry = exists().where(
            entry.version > row.deny_version,
            entry.listed_at <= row.deny_cutoff_at,
            entry.until > row.received_at,
        )
        query = (
            select(validator_health, lacks_entry.label("behind"))
            .where(row.validator_id > after)
            .order_by(row.validator_id)
            .limit(FLEET_SCAN_CHUNK)
        )
        with self.engine.connect() as conn:
            return [r._asdict() for r in conn.execute(query)]


def _fleet_row(record: dict[str, Any], now: datetime) -> FleetRow:
    received = record["received_at"]
    report = None
    if received is not None:
        report = {name: record[name] for name in _REPORT_FIELDS}
        report["received_at"] = aware(received)
    return FleetRow(
        validator_id=int(record["validator_id"]),
        kind=str(record["kind"]),
        location=int(record["location"]),
        report=report,
        flags=flags_of(report, behind=bool(record["behind"]), now=now),
    )


def flags_of(
    report: dict[str, Any] | None, *, behind: bool, now: datetime
) -> tuple[HealthFlag, ...]:
    """The flags a validator raises at `now`, given its latest report (None: never reported)."""
    if report is None:
        return ("stale", "offline")
    flags: list[HealthFlag] = []
    received: datetime = report["received_at"]
    if (now - received).total_seconds() > HEALTH_STALE_S:
        flags.append("stale")
    offset_s = (report["clock_offset_ms"] or 0) / 1000
    last_sync = report["last_sync_at"]
    if last_sync is None or now.timestamp() - (last_sync - offset_s) > OFFLINE_S:
        flags.append("offline")
    if behind:
        flags.append("behind_deny_list")
    oldest = report["oldest_tap_age_s"]
    if report["outbox_depth"] > OUTBOX_DEPTH_DEEP or (
        oldest is not None and oldest > OUTBOX_AGE_DEEP_S
    ):
        flags.append("deep_outbox")
    offset_ms = report["clock_offset_ms"]
    if offset_ms is not None and abs(offset_ms) > CLOCK_SKEW_FLAG_MS:
        flags.append("clock_skewed")
    return tuple(flags)
