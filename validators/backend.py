"""The device's port to the backend: the five calls it makes, and the two ways they fail.

The HTTP adapter (`http_backend`) implements it with httpx; unit tests pass a fake. Bodies are
the JSON the backend documents in its OpenAPI, as plain dicts: the device reads a few fields and
stores the rest as received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Fetched:
    """A JSON answer and the ETag to send back as `If-None-Match` next time."""

    body: dict[str, Any]
    etag: str | None


@dataclass(frozen=True)
class TapAnswer:
    """The backend's answer for one uploaded tap."""

    seq: int
    status: str  # accepted | refused | duplicate | seq_conflict
    reason: str | None
    # The backend's id of the recorded tap (of the review record, for a seq_conflict).
    tap_id: str | None = None


class Backend(Protocol):
    """What a validator asks of the backend. Every call raises `BackendUnavailable` when there
    is no usable answer now (retry later) and `BackendRefused` when the backend says no."""

    def issuer_keys(self, etag: str | None) -> Fetched | None:
        """The issuer key set, or None when it still has `etag`."""
        ...

    def deny_list(self, since: int, *, wait_s: int = 0) -> dict[str, Any]:
        """The deny-list entries listed after version `since` (one page); with `wait_s`, a long
        poll: the backend answers as soon as an entry is listed, or empty after `wait_s`."""
        ...

    def config(self, validator_id: int, etag: str | None) -> Fetched | None:
        """The validator's registration and fares, or None when it still has `etag`."""
        ...

    def upload(
        self, validator_id: int, taps: Sequence[dict[str, Any]], *, epoch: int = 0
    ) -> list[TapAnswer]:
        """Uploads one batch of taps numbered in `epoch`; an answer per tap recorded (or
        recorded before, or kept for review when its number was taken)."""
        ...

    def report_health(self, validator_id: int, report: dict[str, Any]) -> int:
        """Sends the device's health report; returns the backend's clock (unix ms) as it
        answered, from which the device measures its clock offset."""
        ...


class BackendError(Exception):
    code = "backend_error"


class BackendUnavailable(BackendError):
    """No answer, a timeout, or a 5xx/429: nothing was decided, try again later."""

    code = "backend_unavailable"


class BackendRefused(BackendError):
    """The backend answered no (401, 403, 404, 422): the device's token or setup is wrong.

    Retrying cannot fix it, but the taps stay in the outbox until someone does."""

    code = "backend_refused"

    def __init__(self, status: int, problem_code: str, detail: str) -> None:
        super().__init__(f"{status} {problem_code}: {detail}")
        self.status = status
        self.problem_code = problem_code
        self.detail = detail
