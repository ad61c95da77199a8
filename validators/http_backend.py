"""The backend port over HTTP (httpx): bearer token, bounded timeouts, problem+json refusals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from validators.backend import BackendRefused, BackendUnavailable, Fetched, TapAnswer

# A validator's link is often a mobile modem: connect fast or give up, allow a slow batch.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
DETAIL_SHOWN_MAX_CHARS = 200
RETRYABLE_STATUSES = frozenset({408, 425, 429})


class HttpBackend:
    """`validators.backend.Backend` against a tapledger server at `base_url`."""

    def __init__(
        self, base_url: str, token: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        """`token` None: no bearer token, for the one call a device makes without one (its
        enrolment, `validators.enrolment`)."""
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/v1",
            headers={} if token is None else {"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def issuer_keys(self, etag: str | None) -> Fetched | None:
        return self._conditional("/issuer-keys", etag)

    def deny_list(self, since: int, *, wait_s: int = 0) -> dict[str, Any]:
        params = {"since": since, "wait_s": wait_s} if wait_s else {"since": since}
        # A long poll may take `wait_s` before the answer starts; the read timeout allows it.
        timeout = httpx.Timeout(READ_TIMEOUT_S + wait_s, connect=CONNECT_TIMEOUT_S)
        return json_object(self.send("GET", "/deny-list", params=params, timeout=timeout))

    def report_health(self, validator_id: int, report: dict[str, Any]) -> int:
        path = f"/validators/{validator_id}/health"
        answer = json_object(self.send("POST", path, json=report))
        server_time_ms = answer.get("server_time_ms")
        if type(server_time_ms) is not int:
            raise BackendUnavailable(f"{path}: the answer has no server_time_ms")
        return server_time_ms

    def config(self, validator_id: int, etag: str | None) -> Fetched | None:
        return self._conditional(f"/validators/{validator_id}/config", etag)

    def upload(
        self, validator_id: int, taps: Sequence[dict[str, Any]], *, epoch: int = 0
    ) -> list[TapAnswer]:
        body: dict[str, Any] = {"validator_id": validator_id, "taps": list(taps)}
        if epoch:
            body["epoch"] = epoch  # absent for epoch 0, which a backend before epochs takes
        answer = json_object(self.send("POST", "/taps/batch", json=body))
        return [
            TapAnswer(
                int(result["seq"]),
                str(result["status"]),
                result.get("reason"),
                None if result.get("tap_id") is None else str(result["tap_id"]),
            )
            for result in answer["results"]
        ]

    def _conditional(self, path: str, etag: str | None) -> Fetched | None:
        headers = {"If-None-Match": etag} if etag else {}
        response = self.send("GET", path, headers=headers)
        if response.status_code == httpx.codes.NOT_MODIFIED:
            return None
        return Fetched(json_object(response), response.headers.get("etag"))

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request under `/v1`; raises `BackendUnavailable` (no answer, 5xx, 408/425/429)
        or `BackendRefused` (any other 4xx, with its problem code)."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise BackendUnavailable(f"{method} {path}: {type(error).__name__}: {error}") from None
        status = response.status_code
        if status >= httpx.codes.INTERNAL_SERVER_ERROR or status in RETRYABLE_STATUSES:
            raise BackendUnavailable(f"{method} {path}: {status}")
        if status >= httpx.codes.BAD_REQUEST:
            code, detail = _problem(response)
            raise BackendRefused(status, code, detail)
        return response


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; anything else is no usable answer (`BackendUnavailable`)."""
    try:
        body = response.json()
    except ValueError:
        raise BackendUnavailable(f"{response.request.url.path}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise BackendUnavailable(f"{response.request.url.path}: the answer is not an object")
    return body


def _problem(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "http_error", response.text[:DETAIL_SHOWN_MAX_CHARS]
    if not isinstance(body, dict):
        return "http_error", str(body)[:DETAIL_SHOWN_MAX_CHARS]
    detail = str(body.get("detail", ""))[:DETAIL_SHOWN_MAX_CHARS]
    return str(body.get("code", "http_error")), detail
