"""The device's health report, sent to the backend on each sync (`POST /v1/validators/{id}/health`).

It says how far behind the device is: taps waiting in the outbox and the age of the oldest, when
an upload and a trust sync last succeeded, and which trust it decides with (issuer keys, deny
list, config). And how far its clock is off the backend's: the answer to each report carries the
backend's clock in milliseconds, and the device takes the midpoint of its own send and receive
times as the moment the backend read its clock (as NTP does, so the link's delay cancels out
when it is the same both ways). That offset is sent with the next report; the first report of
a run has none. A `Date` header would do too, but only to the second.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from validators.backend import Backend
from validators.outbox import Outbox
from validators.trust import Trust

PACKAGE = "tapledger"
MS_PER_S = 1000


def software_version() -> str:
    """The installed package's version, as the backend lists it per device."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


class HealthReporter:
    """Keeps what a report needs between syncs and sends it."""

    def __init__(
        self,
        backend: Backend,
        outbox: Outbox,
        *,
        validator_id: int,
        clock: Callable[[], float],
    ) -> None:
        self._backend = backend
        self._outbox = outbox
        self._validator_id = validator_id
        self._clock = clock
        self._version = software_version()
        self.last_upload_at: int | None = None
        self.clock_offset_ms: int | None = None

    def uploaded(self) -> None:
        """An upload was answered just now."""
        self.last_upload_at = int(self._clock())

    def report(self, trust: Trust) -> None:
        """Sends the report; raises the backend's errors (the next sync sends a new one)."""
        body = self.body(trust)
        sent_at = self._clock()
        body["sent_at_ms"] = round(sent_at * MS_PER_S)
        server_time_ms = self._backend.report_health(self._validator_id, body)
        received_at = self._clock()
        self.clock_offset_ms = round((sent_at + received_at) / 2 * MS_PER_S) - server_time_ms

    def body(self, trust: Trust) -> dict[str, Any]:
        now = int(self._clock())
        depth, oldest = self._outbox.backlog()
        keys_version = None if trust.keys is None else trust.keys.get("version")
        return {
            "outbox_depth": depth,
            "oldest_tap_age_s": None if oldest is None else max(0, now - oldest),
            "last_upload_at": self.last_upload_at,
            "last_sync_at": trust.synced_at,
            "clock_offset_ms": self.clock_offset_ms,
            "software_version": self._version,
            "keys_version": keys_version if type(keys_version) is int else None,
            "keys_etag": trust.keys_etag,
            "deny_version": trust.deny_version,
            "config_etag": trust.config_etag,
        }
