"""The parking handheld's port over HTTP, on the validators' client (`validators.http_backend`):
the same bearer token, timeouts, and the same line between retryable and refused answers."""

from __future__ import annotations

from typing import Any

import httpx

from validators.http_backend import HttpBackend, json_object

IDEMPOTENCY_HEADER = "Idempotency-Key"


class HttpParkingBackend:
    """`validators.parking_backend.ParkingBackend` against a tapledger server at `base_url`."""

    def __init__(
        self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = HttpBackend(base_url, token, transport=transport)

    def close(self) -> None:
        self._http.close()

    def start_session(self, body: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        headers = {IDEMPOTENCY_HEADER: idempotency_key}
        response = self._http.send("POST", "/parking/sessions", json=body, headers=headers)
        return json_object(response)

    def end_session(
        self, session_id: str, body: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        headers = {IDEMPOTENCY_HEADER: idempotency_key}
        path = f"/parking/sessions/{session_id}/end"
        return json_object(self._http.send("POST", path, json=body, headers=headers))

    def enforcement(self, lot_id: str, plate: str) -> dict[str, Any]:
        params = {"lot_id": lot_id, "plate": plate}
        return json_object(self._http.send("GET", "/parking/enforcement", params=params))
