"""The backend's HTTP API as the rider's phone speaks it: `RiderApi`, the `RiderPort` over httpx.

Every way a call can fail (no answer, a refusal, a body the phone cannot read) comes out as one
`RiderApiError` with a stable `code`, so the command line has a single error to report.
"""

from __future__ import annotations

import base64
from types import TracebackType
from typing import TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from tapledger.rider.port import (
    AccountReply,
    CardReply,
    PrincipalReply,
    StatementLineReply,
    StatementReply,
)

CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 15.0
# Problem details are for people; an unexpected HTML error page is cut, not shown whole.
ERROR_DETAIL_MAX_CHARS = 500

Reply = TypeVar("Reply", bound=BaseModel)


class RiderApi:
    """The backend's HTTP API with a rider token; every failure is a `RiderApiError`."""

    def __init__(
        self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport,
        )

    def __enter__(self) -> RiderApi:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def me(self) -> PrincipalReply:
        return self._call("GET", "/v1/me", PrincipalReply)

    def issue_virtual_card(self, account_id: UUID, device_key: bytes) -> CardReply:
        body = {"device_key": base64.b64encode(device_key).decode("ascii")}
        return self._call("POST", f"/v1/accounts/{account_id}/virtual-cards", CardReply, body)

    def get_virtual_card(self, card_id: UUID) -> CardReply:
        return self._call("GET", f"/v1/virtual-cards/{card_id}", CardReply)

    def renew_virtual_card(self, card_id: UUID) -> CardReply:
        return self._call("POST", f"/v1/virtual-cards/{card_id}/renew", CardReply)

    def account(self, account_id: UUID) -> AccountReply:
        return self._call("GET", f"/v1/accounts/{account_id}", AccountReply)

    def statement(self, account_id: UUID, limit: int) -> list[StatementLineReply]:
        path = f"/v1/accounts/{account_id}/statement"
        return self._call("GET", path, StatementReply, params={"limit": limit}).lines

    def _call(
        self,
        method: str,
        path: str,
        reply: type[Reply],
        body: object | None = None,
        *,
        params: dict[str, int] | None = None,
    ) -> Reply:
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.TimeoutException as error:
            raise RiderApiError("timeout", f"no answer from the API: {error!r}", None) from None
        except httpx.TransportError as error:
            raise RiderApiError("unreachable", f"cannot reach the API: {error!r}", None) from None
        if response.is_error:
            raise RiderApiError.from_response(response)
        try:
            return reply.model_validate_json(response.content)
        except ValidationError as error:
            detail = f"{method} {path} answered an unexpected body: {error.error_count()} errors"
            raise RiderApiError("bad_response", detail, response.status_code) from None


class RiderApiError(Exception):
    """The API refused or could not be reached; `status` is None when nothing answered."""

    def __init__(self, code: str, detail: str, status: int | None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status

    @classmethod
    def from_response(cls, response: httpx.Response) -> RiderApiError:
        """From a problem+json body; a body without a `code` still gives a typed error."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            detail = str(body.get("detail", ""))[:ERROR_DETAIL_MAX_CHARS]
            return cls(body["code"], detail, status)
        return cls("http_error", f"HTTP {status}: {response.text[:ERROR_DETAIL_MAX_CHARS]}", status)
