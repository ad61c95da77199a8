"""The parking handheld's port to the backend: the three parking calls it makes.

The handheld talks to parking over HTTP only (`validators.http_parking`); unit tests pass a fake
(`tests/parking_backend_fake.py`). Calls fail as the validators' do (`validators.backend`):
`BackendUnavailable` when there is no usable answer now (a connection error, a timeout, a 5xx:
try again later) and `BackendRefused` when the backend answered no (a 4xx, with its problem code).
Bodies are the JSON of docs/parking-api.md, as plain dicts.
"""

from __future__ import annotations

from typing import Any, Protocol


class ParkingBackend(Protocol):
    def start_session(self, body: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """`POST /v1/parking/sessions`: the session started (or started before, for a retry)."""
        ...

    def end_session(
        self, session_id: str, body: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """`POST /v1/parking/sessions/{id}/end`: `{"session", "record"}`."""
        ...

    def enforcement(self, lot_id: str, plate: str) -> dict[str, Any]:
        """`GET /v1/parking/enforcement`: the plate's status in the lot and its open session."""
        ...
