"""Recording a validator's health report (one use case on the taps' application).

The report is stored in the taps' event store, beside the validators it is about, as one small
aggregate per report (`ticketing.taps.domain.validator_health` says why). The same report sent
twice (a device that lost the answer) is the same aggregate, stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eventsourcing.persistence import IntegrityError

from ticketing.taps.application.ingestion import TapIngestion
from ticketing.taps.domain.validator_health import ValidatorHealthReport


@dataclass(frozen=True)
class HealthFields:
    """What a device says about itself; see `ValidatorHealthReport.HealthReported`."""

    sent_at_ms: int
    outbox_depth: int
    oldest_tap_age_s: int | None
    last_upload_at: int | None
    last_sync_at: int | None
    clock_offset_ms: int | None
    software_version: str
    keys_version: int | None
    keys_etag: str | None
    deny_version: int
    config_etag: str | None


class ValidatorHealth:
    def __init__(self, taps: TapIngestion) -> None:
        self._taps = taps

    def now(self) -> datetime:
        return self._taps.now()

    def report(self, validator_id: int, fields: HealthFields) -> ValidatorHealthReport:
        """Records the report of a registered validator; raises `ValidatorNotFound` otherwise."""
        self._taps.get_validator(validator_id)
        report = ValidatorHealthReport.report(
            validator_id=validator_id, at=self._taps.now(), **vars(fields)
        )
        try:
            self._taps.save(report)
        except IntegrityError:
            stored: ValidatorHealthReport = self._taps.repository.get(report.id)
            return stored
        return report
