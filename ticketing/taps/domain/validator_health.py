"""A validator's health report: what the device says about itself on each sync.

Each report is its own small aggregate of one event, not an event on the `Validator`: a device
syncing every minute sends 1,440 reports a day, and the validator's stream would grow without
end (the tap path reads it; replaying costs ~25 µs an event). A report's id comes from the
validator and the device's own send time, so a report sent twice is stored once. The history is
the log of `HealthReported` events; the latest report per device is a projection
(`ticketing.taps.adapters.health_views`).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.ids import url_uuid5
from ticketing.taps.domain.validator import check_validator_id

TOPIC_PREFIX = "ticketing.ValidatorHealth"
# Bounds on what a device may say: a day's taps at a busy gate and then some, a week of age.
OUTBOX_DEPTH_MAX = 10_000_000
TAP_AGE_S_MAX = 365 * 24 * 3600
# A clock more than a day off is reported as a day off: the flag is raised either way.
CLOCK_OFFSET_MS_MAX = 24 * 3600 * 1000
SOFTWARE_VERSION_MAX_CHARS = 64
ETAG_MAX_CHARS = 128
VERSION_MAX = 2**63 - 1
UNIX_S_MAX = 2**40


class ValidatorHealthReport(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class HealthReported(Created):
        TOPIC = f"{TOPIC_PREFIX}.HealthReported"
        validator_id: int
        at: datetime  # the backend's clock when the report arrived
        sent_at_ms: int  # the device's clock when it sent the report (unix ms)
        outbox_depth: int
        oldest_tap_age_s: int | None
        last_upload_at: int | None  # device clock, unix s
        last_sync_at: int | None  # device clock, unix s
        clock_offset_ms: int | None  # device minus backend, as the device measured it
        software_version: str
        keys_version: int | None
        keys_etag: str | None
        deny_version: int
        config_etag: str | None

    @staticmethod
    def create_id(validator_id: int, sent_at_ms: int) -> UUID:
        return url_uuid5(f"/tapledger/validators/{validator_id}/health/{sent_at_ms}")

    @event(HealthReported)
    def __init__(
        self,
        validator_id: int,
        at: datetime,
        sent_at_ms: int,
        outbox_depth: int,
        oldest_tap_age_s: int | None,
        last_upload_at: int | None,
        last_sync_at: int | None,
        clock_offset_ms: int | None,
        software_version: str,
        keys_version: int | None,
        keys_etag: str | None,
        deny_version: int,
        config_etag: str | None,
    ) -> None:
        self.validator_id = validator_id
        self.received_at = at
        self.sent_at_ms = sent_at_ms
        self.outbox_depth = outbox_depth
        self.oldest_tap_age_s = oldest_tap_age_s
        self.last_upload_at = last_upload_at
        self.last_sync_at = last_sync_at
        self.clock_offset_ms = clock_offset_ms
        self.software_version = software_version
        self.keys_version = keys_version
        self.keys_etag = keys_etag
        self.deny_version = deny_version
        self.config_etag = config_etag

    @classmethod
    def report(
        cls,
        *,
        validator_id: int,
        at: datetime,
        sent_at_ms: int,
        outbox_depth: int,
        oldest_tap_age_s: int | None,
        last_upload_at: int | None,
        last_sync_at: int | None,
        clock_offset_ms: int | None,
        software_version: str,
        keys_version: int | None,
        keys_etag: str | None,
        deny_version: int,
        config_etag: str | None,
    ) -> ValidatorHealthReport:
        check_validator_id(validator_id)
        _check_range("sent_at_ms", sent_at_ms, 0, UNIX_S_MAX * 1000)
        _check_range("outbox_depth", outbox_depth, 0, OUTBOX_DEPTH_MAX)
        _check_optional("oldest_tap_age_s", oldest_tap_age_s, 0, TAP_AGE_S_MAX)
        _check_optional("last_upload_at", last_upload_at, 0, UNIX_S_MAX)
        _check_optional("last_sync_at", last_sync_at, 0, UNIX_S_MAX)
        _check_optional("keys_version", keys_version, 0, VERSION_MAX)
        _check_range("deny_version", deny_version, 0, VERSION_MAX)
        if clock_offset_ms is not None:
            clock_offset_ms = max(-CLOCK_OFFSET_MS_MAX, min(CLOCK_OFFSET_MS_MAX, clock_offset_ms))
        _check_text("software_version", software_version, SOFTWARE_VERSION_MAX_CHARS)
        for name, etag in (("keys_etag", keys_etag), ("config_etag", config_etag)):
            if etag is not None:
                _check_text(name, etag, ETAG_MAX_CHARS)
        return cls(
            validator_id=validator_id,
            at=at,
            sent_at_ms=sent_at_ms,
            outbox_depth=outbox_depth,
            oldest_tap_age_s=oldest_tap_age_s,
            last_upload_at=last_upload_at,
            last_sync_at=last_sync_at,
            clock_offset_ms=clock_offset_ms,
            software_version=software_version,
            keys_version=keys_version,
            keys_etag=keys_etag,
            deny_version=deny_version,
            config_etag=config_etag,
        )


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise InvalidHealthReport(f"{name} {value!r} is not within {low}..{high}")


def _check_optional(name: str, value: object, low: int, high: int) -> None:
    if value is not None:
        _check_range(name, value, low, high)


def _check_text(name: str, value: object, max_chars: int) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= max_chars or not value.isprintable():
        raise InvalidHealthReport(f"{name} is not printable text of 1..{max_chars} characters")


class InvalidHealthReport(DomainError):
    code = "invalid_health_report"
